"""Plain, frozen, picklable descriptions of work: entries, intervals and chunks.

A :class:`Chunk` is everything a worker (a coroutine here, a process or a Dask task elsewhere)
needs to fetch one slice of a search: the entry (catalog + collection), a closed datetime
interval (either end may be open) and the search filters, frozen as canonical JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

__all__ = ["Chunk", "Entry", "Interval", "format_instant"]

UTC = timezone.utc


def format_instant(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with ``Z``; microseconds only when set.

    Example:
        >>> format_instant(datetime(2024, 1, 1, tzinfo=UTC))
        '2024-01-01T00:00:00Z'
        >>> format_instant(datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
        '2024-12-31T23:59:59.999999Z'
    """
    value = value.astimezone(UTC)
    spec = "microseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


@dataclasses.dataclass(frozen=True, order=True)
class Interval:
    """A closed datetime interval ``[start, end]``; ``None`` means an open end (``..``).

    Both ends are timezone-aware UTC datetimes. A single instant has ``start == end``.

    Example:
        >>> iv = Interval(datetime(2024, 1, 1, tzinfo=UTC), None)
        >>> iv.to_param()
        '2024-01-01T00:00:00Z/..'
    """

    start: datetime | None
    end: datetime | None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"Interval.{name} must be timezone-aware")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"Interval start {self.start} is after end {self.end}")

    @property
    def is_instant(self) -> bool:
        """True for a single instant (``start == end``)."""
        return self.start is not None and self.start == self.end

    @property
    def is_bounded(self) -> bool:
        """True when both ends are set."""
        return self.start is not None and self.end is not None

    def to_param(self) -> str | None:
        """The STAC ``datetime`` parameter: ``a/b``, ``../b``, ``a/..``, one instant, or None."""
        if self.start is None and self.end is None:
            return None
        if self.is_instant:
            assert self.start is not None
            return format_instant(self.start)
        start = format_instant(self.start) if self.start else ".."
        end = format_instant(self.end) if self.end else ".."
        return f"{start}/{end}"

    def contains(self, value: datetime) -> bool:
        """Whether ``value`` lies in the closed interval.

        Example:
            >>> iv = Interval(None, datetime(2024, 1, 1, tzinfo=UTC))
            >>> iv.contains(datetime(1990, 1, 1, tzinfo=UTC))
            True
        """
        if self.start is not None and value < self.start:
            return False
        return not (self.end is not None and value > self.end)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One matrix entry: a collection in a catalog (or a ``source_file`` in file mode).

    Example:
        >>> Entry("https://example.com/stac", "sentinel-2-l2a").key
        'https://example.com/stac#sentinel-2-l2a'
    """

    catalog_url: str | None
    collection_id: str | None
    source_file: str | None = None

    @property
    def key(self) -> str:
        """A stable, human-readable identifier of the entry."""
        if self.source_file:
            return f"file:{self.source_file}"
        return f"{self.catalog_url}#{self.collection_id}"

    @property
    def label(self) -> str:
        """Short name for progress bars: the collection id or the file pattern."""
        return self.collection_id or self.source_file or "?"


@dataclasses.dataclass(frozen=True)
class Chunk:
    """A plain, picklable slice of work: one entry, one interval, frozen filters.

    ``filters_json`` holds the search filters other than ``datetime`` and ``collections``
    (bbox, intersects, query, filter, ids, sortby...) as canonical JSON, so chunks hash, compare
    and pickle cheaply. ``ids`` restricts the chunk to given item ids (used by ``ids`` searches).

    Example:
        >>> entry = Entry("https://x/stac", "c1")
        >>> c = Chunk.make(entry, Interval(None, None), {"bbox": [0, 0, 1, 1]})
        >>> c.filters
        {'bbox': [0, 0, 1, 1]}
        >>> len(c.chunk_id)
        16
    """

    entry: Entry
    interval: Interval
    filters_json: str = "{}"
    parent_id: str | None = None
    sequential: bool = False
    """Page this chunk's search to its end and never split it (searches with ``max_items``,
    and the last resort when the server's filtering disagrees with every split)."""
    attempt: int = 0
    """Bumped when the same search runs again after a split of it proved wrong."""

    @classmethod
    def make(
        cls,
        entry: Entry,
        interval: Interval,
        filters: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        sequential: bool = False,
    ) -> Chunk:
        """Build a chunk, freezing ``filters`` as canonical (sorted-key) JSON."""
        text = orjson.dumps(dict(filters or {}), option=orjson.OPT_SORT_KEYS).decode()
        return cls(entry, interval, text, parent_id, sequential)

    @property
    def filters(self) -> dict[str, Any]:
        """The frozen filters as a new dict."""
        value: dict[str, Any] = orjson.loads(self.filters_json)
        return value

    @property
    def chunk_id(self) -> str:
        """A stable 16-hex-digit id from the entry, the interval and the filters."""
        text = f"{self.entry.key}|{self.interval.to_param()}|{self.filters_json}"
        if self.sequential:
            text += "|sequential"
        if self.attempt:
            text += f"|attempt={self.attempt}"
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (for manifests and other processes); see :meth:`from_dict`.

        Example:
            >>> c = Chunk.make(Entry("https://x", "c1"), Interval(None, None))
            >>> Chunk.from_dict(c.to_dict()) == c
            True
        """
        return {
            "catalog_url": self.entry.catalog_url,
            "collection_id": self.entry.collection_id,
            "source_file": self.entry.source_file,
            "start": format_instant(self.interval.start) if self.interval.start else None,
            "end": format_instant(self.interval.end) if self.interval.end else None,
            "filters": self.filters_json,
            "parent_id": self.parent_id,
            "sequential": self.sequential,
            "attempt": self.attempt,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        """Rebuild a chunk from :meth:`to_dict` output."""

        def parse(value: str | None) -> datetime | None:
            if value is None:
                return None
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)

        entry = Entry(data["catalog_url"], data["collection_id"], data.get("source_file"))
        interval = Interval(parse(data["start"]), parse(data["end"]))
        return cls(
            entry,
            interval,
            data.get("filters") or "{}",
            data.get("parent_id"),
            bool(data.get("sequential", False)),
            int(data.get("attempt", 0)),
        )

    def with_interval(self, interval: Interval) -> Chunk:
        """A child chunk covering ``interval`` with the same entry and filters."""
        return Chunk(self.entry, interval, self.filters_json, self.chunk_id)

    def with_filters(self, filters: Mapping[str, Any]) -> Chunk:
        """A child chunk with the same entry and interval and other filters (a spatial tile).

        Example:
            >>> c = Chunk.make(Entry("u", "c1"), Interval(None, None), {"bbox": [0, 0, 2, 2]})
            >>> tile = c.with_filters({"bbox": [0, 0, 1, 1]})
            >>> tile.filters, tile.parent_id == c.chunk_id
            ({'bbox': [0, 0, 1, 1]}, True)
        """
        child = Chunk.make(self.entry, self.interval, filters)
        return dataclasses.replace(child, parent_id=self.chunk_id)

    def again(self, *, sequential: bool = False) -> Chunk:
        """The same search as a new chunk, to run again after a split of it proved wrong
        (``sequential``: paged to its end without splitting).

        Example:
            >>> c = Chunk.make(Entry("u", "c1"), Interval(None, None))
            >>> c.again().chunk_id != c.chunk_id, c.again(sequential=True).sequential
            (True, True)
        """
        return dataclasses.replace(self, sequential=sequential, attempt=self.attempt + 1)
