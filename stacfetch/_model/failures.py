"""The FailureCollector: what a run could not get, one record per failed chunk.

A failed chunk is recorded here and the rest of the run goes on: one failure never
crashes the pipeline. Records are also logged through the standard :mod:`logging` module
(logger ``stacfetch``) at WARNING level; requests in records are already redacted.

:func:`failure_table_html` is the one HTML rendering of failed chunks: the collector's own
notebook repr and the display's live failure widget
(:class:`~stacfetch._display.failure_table.FailureTableWidget`) both draw it.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .events import FailureRecord

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_ROWS", "FailureCollector", "failure_table_html"]

logger = logging.getLogger("stacfetch")

MAX_ROWS = 50
"""Rows shown by a failure table; the rest are counted (``to_dataframe()`` has them all)."""

_TABLE_COLUMNS = (
    "entry",
    "interval",
    "bbox",
    "status",
    "error",
    "attempts",
    "items delivered",
    "last seen (UTC)",
)

_COLUMNS = (
    "entry_key",
    "catalog_url",
    "collection_id",
    "chunk_id",
    "interval",
    "filters",
    "method",
    "url",
    "body",
    "status_code",
    "error_type",
    "message",
    "attempts",
    "first_time",
    "last_time",
    "items_delivered",
)


class FailureCollector:
    """Collects :class:`~stacfetch.FailureRecord` s; iterable, sized, and shown as a table.

    Example:
        >>> fc = FailureCollector()
        >>> len(fc), bool(fc)
        (0, False)
        >>> fc.to_dataframe().shape[0]
        0
    """

    def __init__(self) -> None:
        self._records: list[FailureRecord] = []

    def add(self, record: FailureRecord) -> None:
        """Add a record and log it at WARNING level."""
        self._records.append(record)
        logger.warning(
            "chunk failed: %s interval=%s status=%s %s: %s (attempts=%d, items delivered=%d)",
            record.entry_key,
            record.interval,
            record.status_code,
            record.error_type,
            record.message,
            record.attempts,
            record.items_delivered,
        )

    def clear(self) -> None:
        """Forget every record (used before a retry re-runs the failed chunks)."""
        self._records.clear()

    def remove_chunks(self, chunk_ids: set[str]) -> None:
        """Drop the records of the given chunk ids (they were retried successfully)."""
        self._records = [r for r in self._records if r.chunk_id not in chunk_ids]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[FailureRecord]:
        return iter(list(self._records))

    def __getitem__(self, index: int) -> FailureRecord:
        return self._records[index]

    def __bool__(self) -> bool:
        return bool(self._records)

    def __repr__(self) -> str:
        entries = sorted({r.entry_key for r in self._records})
        return f"<FailureCollector: {len(self)} failed chunk(s) in {len(entries)} entry(ies)>"

    @property
    def chunks(self) -> list[Any]:
        """The failed :class:`~stacfetch.Chunk` s, ready to be re-run."""
        return [r.chunk for r in self._records if r.chunk is not None]

    def to_records(self) -> list[dict[str, Any]]:
        """The records as plain dicts (JSON-friendly, no chunk objects)."""
        return [{name: getattr(r, name) for name in _COLUMNS} for r in self._records]

    def to_dataframe(self) -> pd.DataFrame:
        """The records as a :class:`pandas.DataFrame` (one row per failed chunk).

        Example:
            >>> list(FailureCollector().to_dataframe().columns)[:3]
            ['entry_key', 'catalog_url', 'collection_id']
        """
        import pandas as pd

        frame: pd.DataFrame = pd.DataFrame(self.to_records(), columns=list(_COLUMNS))
        for col in ("first_time", "last_time"):
            frame[col] = pd.to_datetime(frame[col], unit="s", utc=True)
        return frame

    def _repr_html_(self) -> str:
        return failure_table_html(self._records, retry_hint=True)


def failure_table_html(
    records: Iterable[FailureRecord], *, max_rows: int = MAX_ROWS, retry_hint: bool = False
) -> str:
    """The HTML table of failed chunks, as notebooks show it (collector and widget alike).

    Columns: entry, interval, bbox (only when a record's search has a spatial filter: the
    tile of a spatially split chunk), status, error (shortened; the full text on hover),
    attempts, items delivered, last seen (UTC). The interval cell carries ``data-entry``,
    ``data-chunk`` and ``data-interval``, like the timeline's segments. At most ``max_rows``
    rows, the rest counted; ``retry_hint`` adds a pointer to ``ing.retry_failed()``.

    Example:
        >>> r = FailureRecord(entry_key="u#c", catalog_url="u", collection_id="c",
        ...     chunk_id="ab", interval="2024-01-01/2024-02-01", filters={"bbox": [0, 0, 1.5, 1]},
        ...     method="POST", url="u/search", body={}, status_code=503,
        ...     error_type="HTTPStatusError", message="503 <Service Unavailable>", attempts=4,
        ...     first_time=0.0, last_time=1.0, items_delivered=10)
        >>> out = failure_table_html([r])
        >>> out.count("<tr>"), "&lt;Service Unavailable&gt;" in out, "0, 0, 1.5, 1" in out
        (2, True, True)
        >>> failure_table_html([])
        "<div class='stacfetch-failures-empty'><b>stacfetch</b>: no failed chunks.</div>"
    """
    records = list(records)
    if not records:
        return "<div class='stacfetch-failures-empty'><b>stacfetch</b>: no failed chunks.</div>"
    shown = records[:max_rows]
    areas = [_area(r.filters) for r in shown]
    spatial = any(a is not None for a in areas)
    columns = [c for c in _TABLE_COLUMNS if spatial or c != "bbox"]
    cell = "padding:2px 8px;text-align:left;vertical-align:top"
    head = "".join(f"<th style='{cell}'>{name}</th>" for name in columns)
    rows = []
    for r, area in zip(shown, areas, strict=True):
        error = f"{r.error_type}: {r.message}"
        short = error if len(error) <= 160 else error[:159] + "…"
        last = datetime.fromtimestamp(r.last_time, timezone.utc).strftime("%H:%M:%S")
        # the interval cell carries what the timeline's red segments carry, for tests and tools
        tds = [
            f"<td style='{cell}'>{html.escape(r.collection_id or r.entry_key)}</td>",
            f"<td style='{cell}' class='stacfetch-failure-interval' "
            f"data-entry='{html.escape(r.entry_key, quote=True)}' "
            f"data-chunk='{html.escape(r.chunk_id, quote=True)}' "
            f"data-interval='{html.escape(r.interval or '', quote=True)}'>"
            f"{html.escape(r.interval or '(whole search)')}</td>",
        ]
        if spatial:
            tds.append(f"<td style='{cell}' class='stacfetch-failure-bbox'>{area or ''}</td>")
        tds += [
            f"<td style='{cell}'>{'' if r.status_code is None else r.status_code}</td>",
            f"<td style='{cell}'><span title='{html.escape(error, quote=True)}'>"
            f"{html.escape(short)}</span></td>",
            f"<td style='{cell}'>{r.attempts}</td>",
            f"<td style='{cell}'>{r.items_delivered:,}</td>",
            f"<td style='{cell}'>{last}</td>",
        ]
        rows.append("<tr>" + "".join(tds) + "</tr>")
    more = len(records) - len(shown)
    tail = (
        f"<div>… and {more:,} more; <code>ing.failures.to_dataframe()</code> lists them all.</div>"
        if more > 0
        else ""
    )
    noun = "chunk" if len(records) == 1 else "chunks"
    hint = "; run <code>ing.retry_failed()</code> to fetch them again" if retry_hint else ""
    return (
        f"<div><b>{len(records):,} failed {noun}</b>{hint}</div>"
        "<table class='stacfetch-failure-table' style='border-collapse:collapse;"
        f"font-size:90%'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        f"</table>{tail}"
    )


def _area(filters: dict[str, Any]) -> str | None:
    """The ``bbox`` filter as text, else the bounds of an ``intersects`` geometry (escaped)."""
    bbox = filters.get("bbox")
    if isinstance(bbox, (list, tuple)) and bbox:
        return html.escape(", ".join(_number(v) for v in bbox))
    geometry = filters.get("intersects")
    if not isinstance(geometry, dict):
        return None
    xs: list[float] = []
    ys: list[float] = []
    stack: list[Any] = [geometry.get("coordinates")]
    stack += [g.get("coordinates") for g in geometry.get("geometries") or () if isinstance(g, dict)]
    while stack:
        value = stack.pop()
        if not isinstance(value, (list, tuple)) or not value:
            continue
        if all(isinstance(v, (int, float)) for v in value) and len(value) >= 2:
            xs.append(float(value[0]))
            ys.append(float(value[1]))
        else:
            stack.extend(value)
    if not xs:
        return None
    bounds = ", ".join(_number(v) for v in (min(xs), min(ys), max(xs), max(ys)))
    return f"<span title='bounds of the intersects geometry'>≈ {bounds}</span>"


def _number(value: Any) -> str:
    """A coordinate as short text: ``1``, ``1.5``, ``7.123457`` (6 decimals at most)."""
    if isinstance(value, float):
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return str(value)
