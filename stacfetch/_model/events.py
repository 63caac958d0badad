"""Progress and failure events, and the sink protocol every front end consumes.

The engine emits events; front ends (notebook widgets, terminal bars, logs) only ever see
events, never the engine. ``ProgressTracker`` (:mod:`stacfetch._model.progress`) folds
events into a per-entry ``EntryProgress`` snapshot that renderers draw at their own
(throttled) pace.

Events are emitted per chunk or per page, never per item.

The chunk timeline (:mod:`stacfetch._display.timeline`) folds chunk events into
``EntryProgress.chunks``. What it needs, and who sends it:

* :class:`ChunksPlanned` (the plan's chunks, then each split's children with ``parent_id``):
  sent by the Ingestor from the engine's ``PlanReady`` / ``ChunkEnd.children`` outputs; an
  engine may send it too (it is idempotent);
* :class:`ChunkStarted` when a worker takes a chunk (else the first page or retry marks it
  running);
* ``ChunkSplit.children`` and ``EntryPlanned.interval`` (the entry's whole range: the axis)
  are optional; without them the axis is the span of the known chunk intervals;
* :class:`ChunkFailed` records carry the interval, so failed chunks are placed in any case.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ChunkDone",
    "ChunkFailed",
    "ChunkSpan",
    "ChunkSplit",
    "ChunkStarted",
    "ChunksPlanned",
    "EntryDone",
    "EntryPlanned",
    "EntryStarted",
    "Event",
    "EventSink",
    "FailureRecord",
    "Notice",
    "PageFetched",
    "Retrying",
    "RunDone",
    "fanout",
]


@dataclasses.dataclass(frozen=True)
class FailureRecord:
    """One failed chunk: what was asked, what went wrong, and what it delivered before failing.

    ``request`` is redacted (no credentials). Times are UNIX seconds.

    Example:
        >>> r = FailureRecord(entry_key="u#c", catalog_url="u", collection_id="c",
        ...     chunk_id="ab", interval="2024-01-01T00:00:00Z/2024-02-01T00:00:00Z",
        ...     filters={}, method="POST", url="u/search", body={}, status_code=503,
        ...     error_type="HTTPStatusError", message="503", attempts=4,
        ...     first_time=0.0, last_time=1.0, items_delivered=10)
        >>> r.status_code
        503
    """

    entry_key: str
    catalog_url: str | None
    collection_id: str | None
    chunk_id: str
    interval: str | None
    filters: dict[str, Any]
    method: str
    url: str
    body: Any
    status_code: int | None
    error_type: str
    message: str
    attempts: int
    first_time: float
    last_time: float
    items_delivered: int
    chunk: Any = dataclasses.field(default=None, compare=False, repr=False)
    """The :class:`~stacfetch.Chunk` to re-run (kept for ``retry_failed``)."""

    @classmethod
    def of_chunk(
        cls,
        chunk: Any,
        *,
        error_type: str,
        message: str,
        first_time: float,
        request: Mapping[str, Any] | None = None,
        status_code: int | None = None,
        attempts: int = 1,
        items_delivered: int = 0,
    ) -> FailureRecord:
        """The record of ``chunk`` (a :class:`~stacfetch.Chunk`) failing now; ``request`` is
        the redacted last request (``method``, ``url``, ``body``).

        Example:
            >>> from stacfetch import Chunk, Entry, Interval
            >>> c = Chunk.make(Entry("https://x/stac", "c1"), Interval(None, None))
            >>> r = FailureRecord.of_chunk(c, error_type="Truncated", message="...", first_time=0)
            >>> (r.entry_key, r.url, r.attempts)
            ('https://x/stac#c1', 'https://x/stac', 1)
        """
        entry = chunk.entry
        request = request or {}
        return cls(
            entry_key=entry.key,
            catalog_url=entry.catalog_url,
            collection_id=entry.collection_id,
            chunk_id=chunk.chunk_id,
            interval=chunk.interval.to_param(),
            filters=chunk.filters,
            method=request.get("method", ""),
            url=request.get("url", entry.catalog_url or ""),
            body=request.get("body"),
            status_code=status_code,
            error_type=error_type,
            message=message,
            attempts=attempts,
            first_time=first_time,
            last_time=time.time(),
            items_delivered=items_delivered,
            chunk=chunk,
        )


@dataclasses.dataclass(frozen=True)
class EntryStarted:
    """An entry began (discovery is about to run)."""

    entry_key: str
    label: str


@dataclasses.dataclass(frozen=True)
class EntryPlanned:
    """An entry's plan: how many chunks, and the total item count when the server reports it.

    ``interval`` (optional) is the whole time range the entry searches, as a STAC
    ``datetime`` parameter: the x axis of its timeline.
    """

    entry_key: str
    chunks: int
    total: int | None
    interval: str | None = None


@dataclasses.dataclass(frozen=True)
class ChunkSpan:
    """Where a chunk searches: its id, its ``datetime`` interval and its tile, if any.

    ``interval`` is the STAC ``datetime`` parameter of the chunk (``a/b``, ``../b``, one
    instant) or ``None`` for the whole search; ``bbox`` is the chunk's ``[w, s, e, n]`` (the
    user's bbox, or a tile of it once the engine splits in space).

    Example:
        >>> ChunkSpan("ab", "2024-01-01T00:00:00Z/2024-02-01T00:00:00Z").interval[:10]
        '2024-01-01'
    """

    chunk_id: str
    interval: str | None = None
    bbox: tuple[float, float, float, float] | None = None

    @classmethod
    def of(cls, chunk: Any) -> ChunkSpan:
        """The span of a :class:`~stacfetch.Chunk` (its tile from ``bbox`` or ``intersects``).

        Example:
            >>> from stacfetch import Chunk, Entry, Interval
            >>> entry = Entry("https://x/stac", "c1")
            >>> c = Chunk.make(entry, Interval(None, None), {"bbox": [0, 0, 1, 1]})
            >>> ChunkSpan.of(c).bbox
            (0.0, 0.0, 1.0, 1.0)
        """
        filters = chunk.filters
        return cls(chunk.chunk_id, chunk.interval.to_param(), _bounds_of(filters))


def _bounds_of(filters: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """A chunk's tile: its ``bbox`` (2D part), else the bounds of its ``intersects``."""
    bbox = filters.get("bbox")
    try:
        if isinstance(bbox, (list, tuple)) and len(bbox) in (4, 6):
            half = len(bbox) // 2
            return (float(bbox[0]), float(bbox[1]), float(bbox[half]), float(bbox[half + 1]))
        geometry = filters.get("intersects")
        if isinstance(geometry, dict):
            xs: list[float] = []
            ys: list[float] = []
            _coords(geometry.get("coordinates"), xs, ys)
            for part in geometry.get("geometries") or ():
                if isinstance(part, dict):
                    _coords(part.get("coordinates"), xs, ys)
            if xs:
                return (min(xs), min(ys), max(xs), max(ys))
    except (TypeError, ValueError):
        return None
    return None


def _coords(value: Any, xs: list[float], ys: list[float]) -> None:
    if isinstance(value, (list, tuple)):
        if len(value) >= 2 and all(isinstance(v, (int, float)) for v in value[:2]):
            xs.append(float(value[0]))
            ys.append(float(value[1]))
        else:
            for v in value:
                _coords(v, xs, ys)


@dataclasses.dataclass(frozen=True)
class ChunksPlanned:
    """Chunks were planned: an entry's first chunks, or the children of ``parent_id``.

    Idempotent: a chunk announced twice is one chunk (the Ingestor announces the plan it
    receives; the engine may announce it too).
    """

    entry_key: str
    chunks: tuple[ChunkSpan, ...]
    parent_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ChunkStarted:
    """A worker began fetching a chunk (its first request is about to go out)."""

    entry_key: str
    chunk_id: str
    interval: str | None = None
    bbox: tuple[float, float, float, float] | None = None


@dataclasses.dataclass(frozen=True)
class ChunkSplit:
    """A chunk turned out large (or failed) and was replaced by ``into`` children covering its
    whole search, along ``axis`` (``"time"`` or ``"space"``).

    ``children`` (when the engine sends them) are the new chunks' spans.
    """

    entry_key: str
    chunk_id: str
    into: int
    axis: str = "time"
    children: tuple[ChunkSpan, ...] = ()


@dataclasses.dataclass(frozen=True)
class PageFetched:
    """A page arrived: ``new`` items kept, ``duplicates`` dropped by exactly-once dedup."""

    entry_key: str
    chunk_id: str
    new: int
    duplicates: int
    matched: int | None = None


@dataclasses.dataclass(frozen=True)
class Retrying:
    """A request will be retried after ``delay`` seconds."""

    entry_key: str
    chunk_id: str
    attempt: int
    status_code: int | None
    error: str
    delay: float


@dataclasses.dataclass(frozen=True)
class ChunkDone:
    """A chunk finished; ``items`` counts the new items it delivered."""

    entry_key: str
    chunk_id: str
    items: int


@dataclasses.dataclass(frozen=True)
class ChunkFailed:
    """A chunk failed for good; the record also goes to the FailureCollector."""

    entry_key: str
    record: FailureRecord


@dataclasses.dataclass(frozen=True)
class EntryDone:
    """An entry finished (successfully or with failed chunks)."""

    entry_key: str
    items: int
    failed_chunks: int
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Notice:
    """Something the user should know about an entry's run that is not a failure: e.g. the
    server's filtering disagreed with a split, so that search was paged unsplit instead."""

    entry_key: str
    message: str


@dataclasses.dataclass(frozen=True)
class RunDone:
    """The whole run finished."""

    items: int
    failed_chunks: int


Event = (
    EntryStarted
    | EntryPlanned
    | ChunksPlanned
    | ChunkStarted
    | ChunkSplit
    | PageFetched
    | Retrying
    | ChunkDone
    | ChunkFailed
    | EntryDone
    | Notice
    | RunDone
)


@runtime_checkable
class EventSink(Protocol):
    """Anything with ``emit(event)``; called on the event loop thread, must not block.

    Example:
        >>> class Printer:
        ...     def emit(self, event: Event) -> None:
        ...         print(type(event).__name__)
        >>> isinstance(Printer(), EventSink)
        True
    """

    def emit(self, event: Event) -> None:
        """Receive one event."""


class _Fanout:
    def __init__(self, sinks: Iterable[EventSink | Callable[[Event], None]]) -> None:
        self._sinks = list(sinks)

    def emit(self, event: Event) -> None:
        for sink in self._sinks:
            if isinstance(sink, EventSink):
                sink.emit(event)
            else:
                sink(event)


def fanout(*sinks: EventSink | Callable[[Event], None] | None) -> EventSink:
    """Combine sinks (objects with ``emit`` or plain callables) into one; ``None`` is skipped.

    Example:
        >>> seen = []
        >>> fanout(seen.append, None).emit(RunDone(items=3, failed_chunks=0))
        >>> seen
        [RunDone(items=3, failed_chunks=0)]
    """
    return _Fanout(s for s in sinks if s is not None)
