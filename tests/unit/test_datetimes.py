"""Loose datetime input becomes closed UTC intervals without gaps."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest

from stacfetch import ConfigurationError, parse_datetime
from stacfetch._model.datetimes import _canonical, instant_or_none, parse_instant
from stacfetch._model.types import Interval, format_instant

UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024", "2024-01-01T00:00:00Z/2024-12-31T23:59:59.999999Z"),
        ("2024-02", "2024-02-01T00:00:00Z/2024-02-29T23:59:59.999999Z"),
        ("2023-12", "2023-12-01T00:00:00Z/2023-12-31T23:59:59.999999Z"),
        ("2024-03-05", "2024-03-05T00:00:00Z/2024-03-05T23:59:59.999999Z"),
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00Z"),
        ("2024-01-01T10:00:00", "2024-01-01T10:00:00Z"),
        ("2024-01-01 10:00:00.5+00:00", "2024-01-01T10:00:00.500000Z"),
        ("2020/2021", "2020-01-01T00:00:00Z/2021-12-31T23:59:59.999999Z"),
        ("../2020-06-01T00:00:00Z", "../2020-06-01T00:00:00Z"),
        ("2020-06-01T00:00:00Z/..", "2020-06-01T00:00:00Z/.."),
        ("/2020-06-01T00:00:00Z", "../2020-06-01T00:00:00Z"),
        ("2020-06-01T00:00:00Z/", "2020-06-01T00:00:00Z/.."),
        (("2020-01-01", None), "2020-01-01T00:00:00Z/.."),
        ([None, "2020"], "../2020-12-31T23:59:59.999999Z"),
        (datetime(2020, 1, 1, 12), "2020-01-01T12:00:00Z"),
        (date(2020, 1, 1), "2020-01-01T00:00:00Z/2020-01-01T23:59:59.999999Z"),
        (
            (datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=-5))), "2020-01-02"),
            "2020-01-01T05:00:00Z/2020-01-02T23:59:59.999999Z",
        ),
    ],
)
def test_parse_datetime(value: object, expected: str) -> None:
    interval = parse_datetime(value)
    assert interval is not None
    assert interval.to_param() == expected


def test_none_means_no_filter() -> None:
    assert parse_datetime(None) is None


def test_end_rounds_nanoseconds_up_start_truncates() -> None:
    assert parse_instant("2024-01-01T00:00:00.0000005Z").microsecond == 0
    assert parse_instant("2024-01-01T00:00:00.0000005Z", end=True).microsecond == 1


def test_period_end_has_no_gap_to_next_period() -> None:
    year = parse_datetime("2024")
    nxt = parse_datetime("2025")
    assert year is not None
    assert nxt is not None
    assert year.end is not None
    assert nxt.start is not None
    assert nxt.start - year.end == timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("../..", "no bound"),
        ("/", "no bound"),
        ("2025/2024", "after end"),
        ("2024-13", "not a valid"),
        ("2024-02-30", "not a valid"),
        ("yesterday", "unrecognised"),
        ("2024-01-01/2024-02-01/2024-03-01", "exactly one"),
        ("", "empty"),
        (12345, "unsupported type"),
        (["2024"], "exactly two"),
        ([1, 2], "unsupported interval side"),
    ],
)
def test_bad_datetimes(value: object, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as info:
        parse_datetime(value)
    assert "datetime" in str(info.value)


def test_format_instant_roundtrip() -> None:
    value = datetime(2024, 5, 6, 7, 8, 9, 123, tzinfo=UTC)
    assert parse_instant(format_instant(value)) == value
    assert Interval(value, value).to_param() == "2024-05-06T07:08:09.000123Z"


# -- the C parser's fast path for item datetimes -----------------------------------------------
def _general(text: str) -> datetime | None:
    try:
        return parse_instant(text)
    except ConfigurationError:
        return None


def test_item_instants_by_the_fast_path_equal_the_general_parser() -> None:
    rnd = random.Random(7)
    texts = [
        "2024-13-01T00:00:00Z",  # month 13
        "2024-02-30T00:00:00Z",
        "2024-06-01T24:00:00Z",
        "2024-06-01T00:00:60Z",
        "2024-06-01t00:00:00Z",  # lower-case t: the general parser's
        "2024-06-01T00:00:00.12Z",
        "2024-06-01T00:00:00.1234567Z",
        "2024-06-01T00:00:00,123Z",
        "2024-06-01T0a:00:00Z",
        "2024-06-01T00:00:00.12aZ",
        "2024-06-01T00:00:00+00:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ]
    for _ in range(5000):
        frac = rnd.choice(["", f".{rnd.randrange(1000):03d}", f".{rnd.randrange(10**6):06d}"])
        texts.append(
            f"{rnd.randint(1, 9999):04d}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 31):02d}"
            f"T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}{frac}Z"
        )
    fast = 0
    for text in texts:
        expected = _general(text)
        assert instant_or_none(text) == expected, text
        fast += _canonical(text) is not None
    assert fast > 4000  # most of them took the fast path
    assert _canonical("2024-06-01t00:00:00Z") is None
    assert _canonical("2024-13-01T00:00:00Z") is None
    assert instant_or_none("2024-06-01T00:00:00.1234567Z") == datetime(
        2024, 6, 1, 0, 0, 0, 123456, tzinfo=timezone.utc
    )
