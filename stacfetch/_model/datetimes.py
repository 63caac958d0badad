"""Pure parsing of loose datetime input into closed UTC intervals.

Accepted (as pystac-client does, but without its ``23:59:59`` gap):

- ``None``: no datetime filter.
- a :class:`~datetime.datetime` (naive means UTC): one instant.
- a :class:`~datetime.date`: that whole day.
- RFC 3339 strings, with ``Z``, offsets, a space instead of ``T``, any number of fraction digits.
- partial strings ``"2024"``, ``"2024-03"``, ``"2024-03-05"``: the whole period, ending at its
  last microsecond (``2024-12-31T23:59:59.999999Z``), so nothing stamped in the period is lost
  and nothing of the next period is taken.
- intervals ``"a/b"`` with open ends ``"../b"``, ``"a/.."`` (or an empty side), and 2-sequences
  ``(a, b)`` whose sides are any of the above or ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .errors import ConfigurationError
from .types import UTC, Interval

__all__ = ["DatetimeLike", "instant_or_none", "parse_datetime", "parse_instant"]


DatetimeLike = str | datetime | date | Sequence[str | datetime | date | None] | None

_FULL = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)
_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_OPEN = {"", ".."}
MICROSECOND = timedelta(microseconds=1)
"""The resolution of STAC datetimes here (and of Arrow timestamps: ``us``)."""


def _bad(field: str, value: object, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"{field}: {why} (got {value!r}); use RFC 3339 such as '2024-01-01T00:00:00Z', "
        "a date or period such as '2024', '2024-03' or '2024-03-05', or an interval 'a/b' "
        "with '..' for an open end"
    )


def _parse_offset(text: str | None) -> timezone:
    if text is None or text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _period_end(year: int, month: int | None, day: int | None) -> datetime:
    if day is not None and month is not None:
        nxt = datetime(year, month, day, tzinfo=UTC) + timedelta(days=1)
    elif month is not None:
        nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    else:
        nxt = datetime(year + 1, 1, 1, tzinfo=UTC)
    return nxt - MICROSECOND


def parse_instant(
    value: str | datetime | date, *, end: bool = False, field: str = "datetime"
) -> datetime:
    """Parse one side of an interval into an aware UTC datetime.

    With ``end=True`` a partial value means the last microsecond of its period, and a fraction
    finer than microseconds rounds up, so the bound never excludes an item of the period.

    Example:
        >>> parse_instant("2024-03", end=True).isoformat()
        '2024-03-31T23:59:59.999999+00:00'
        >>> parse_instant("2025-03-11 04:42:31.719576+01:00").isoformat()
        '2025-03-11T03:42:31.719576+00:00'
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return _period_end(value.year, value.month, value.day) if end else start
    if not isinstance(value, str):
        raise _bad(field, value, "expected a string, datetime or date")
    text = value.strip()
    try:
        full = _FULL.match(text)
        if full:
            y, mo, d, h, mi, s, frac, off = full.groups()
            micro = 0
            if frac:
                micro = int((frac + "000000")[:6])
                if end and frac[6:].strip("0"):
                    micro += 1
            out = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=UTC)
            out = out.replace(tzinfo=_parse_offset(off)) + timedelta(microseconds=micro)
            return out.astimezone(UTC)
        part = _PARTIAL.match(text)
        if part:
            y, mo, d = part.groups()
            year, month, day = int(y), int(mo) if mo else None, int(d) if d else None
            start = datetime(year, month or 1, day or 1, tzinfo=UTC)
            return _period_end(year, month, day) if end else start
    except ValueError as exc:  # e.g. month 13, day 32, offset hours 25
        raise _bad(field, value, f"not a valid date or time ({exc})") from None
    raise _bad(field, value, "unrecognised datetime")


def _is_partial(value: object) -> bool:
    return (isinstance(value, date) and not isinstance(value, datetime)) or (
        isinstance(value, str) and _PARTIAL.match(value.strip()) is not None
    )


def parse_datetime(value: DatetimeLike | Any, *, field: str = "datetime") -> Interval | None:
    """Normalise loose datetime input into a closed UTC :class:`~stacfetch.Interval`.

    Returns ``None`` when there is no datetime filter. Raises
    :class:`~stacfetch.ConfigurationError` naming ``field`` for anything invalid, including
    an inverted interval and ``../..`` (leave the filter out to fetch everything).

    Example:
        >>> parse_datetime("2024").to_param()
        '2024-01-01T00:00:00Z/2024-12-31T23:59:59.999999Z'
        >>> parse_datetime("../2020-06-01T12:00:00+02:00").to_param()
        '../2020-06-01T10:00:00Z'
    """
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        if isinstance(value, datetime):
            instant = parse_instant(value, field=field)
            return Interval(instant, instant)
        return Interval(parse_instant(value, field=field), parse_instant(value, end=True))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise _bad(field, value, "empty string")
        if "/" in text:
            parts = text.split("/")
            if len(parts) != 2:
                raise _bad(field, value, "an interval has exactly one '/'")
            sides: list[object] = [p.strip() for p in parts]
        elif _is_partial(text):
            sides = [text, text]
        else:
            instant = parse_instant(text, field=field)
            return Interval(instant, instant)
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        if len(value) != 2:
            raise _bad(field, value, "a sequence must hold exactly two items (start, end)")
        sides = [value[0], value[1]]
    else:
        raise _bad(field, value, f"unsupported type {type(value).__name__}")

    bounds: list[datetime | None] = []
    for i, side in enumerate(sides):
        if side is None or (isinstance(side, str) and side.strip() in _OPEN):
            bounds.append(None)
        elif isinstance(side, (str, datetime, date)):
            bounds.append(parse_instant(side, end=i == 1, field=field))
        else:
            raise _bad(field, value, f"unsupported interval side {side!r}")
    start, stop = bounds
    if start is None and stop is None:
        raise ConfigurationError(
            f"{field}: {value!r} has no bound on either side; to fetch every item, leave "
            f"{field} out (None) instead"
        )
    if start is not None and stop is not None and start > stop:
        raise ConfigurationError(
            f"{field}: start {start.isoformat()} is after end {stop.isoformat()} in {value!r}; "
            "swap them"
        )
    return Interval(start, stop)


def instant_or_none(value: Any) -> datetime | None:
    """``value`` parsed as an RFC 3339 instant, or None when it is not one (an item's
    ``datetime`` may be null, missing or malformed: it then tells nothing).

    Example:
        >>> instant_or_none("2024-06-01T00:00:00Z"), instant_or_none(None), instant_or_none("x")
        (datetime.datetime(2024, 6, 1, 0, 0, tzinfo=datetime.timezone.utc), None, None)
    """
    if not isinstance(value, str):
        return None
    canonical = _canonical(value)
    if canonical is not None:
        return canonical
    try:
        return parse_instant(value)
    except ConfigurationError:
        return None


def _canonical(text: str) -> datetime | None:
    """The instant of ``YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z`` (what nearly every API sends) by
    the C parser: called once per item to check where the server put it, it is most of that
    check's cost otherwise. None for any other form (the general parser decides those)."""
    if (
        len(text) not in (20, 24, 27)
        or text[-1] != "Z"
        or text[10] != "T"
        or text[13] != ":"
        or text[16] != ":"
        or (len(text) > 20 and text[19] != ".")
    ):
        return None
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return None
