"""The FailureCollector: what a run could not get, one record per failed chunk.

A failed chunk is recorded here and the rest of the run goes on: one failure never
crashes the pipeline. Records are also logged through the standard :mod:`logging` module
(logger ``stacfetch``) at WARNING level; requests in records are already redacted.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .events import FailureRecord

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FailureCollector"]

logger = logging.getLogger("stacfetch")

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
        if not self._records:
            return "<p><b>stacfetch</b>: no failed chunks.</p>"
        head = "".join(
            f"<th>{h}</th>"
            for h in ("entry", "interval", "status", "error", "attempts", "items", "last seen")
        )
        rows = []
        for r in self._records:
            last = datetime.fromtimestamp(r.last_time, timezone.utc).strftime("%H:%M:%S")
            cells = (
                r.collection_id or r.entry_key,
                r.interval or "",
                "" if r.status_code is None else str(r.status_code),
                f"{r.error_type}: {r.message}",
                str(r.attempts),
                str(r.items_delivered),
                last,
            )
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        return (
            f"<p><b>stacfetch</b>: {len(self)} failed chunk(s); "
            "run <code>ing.retry_failed()</code> to fetch them again.</p>"
            f"<table class='stacfetch-failures'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


def replace_chunk(record: FailureRecord, chunk: Any) -> FailureRecord:
    """A copy of ``record`` holding ``chunk`` (records are frozen)."""
    return dataclasses.replace(record, chunk=chunk)
