"""Progress and failure events, and the sink protocol every front end consumes.

The engine emits events; front ends (notebook widgets, terminal bars, logs) only ever see
events, never the engine. :class:`ProgressTracker` folds events into a per-entry
:class:`EntryProgress` snapshot that renderers draw at their own (throttled) pace.

Events are emitted per chunk or per page, never per item.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ChunkDone",
    "ChunkFailed",
    "ChunkSplit",
    "EntryDone",
    "EntryPlanned",
    "EntryProgress",
    "EntryStarted",
    "Event",
    "EventSink",
    "FailureRecord",
    "Notice",
    "PageFetched",
    "ProgressTracker",
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


@dataclasses.dataclass(frozen=True)
class EntryStarted:
    """An entry began (discovery is about to run)."""

    entry_key: str
    label: str


@dataclasses.dataclass(frozen=True)
class EntryPlanned:
    """An entry's plan: how many chunks, and the total item count when the server reports it."""

    entry_key: str
    chunks: int
    total: int | None


@dataclasses.dataclass(frozen=True)
class ChunkSplit:
    """A chunk turned out large and was replaced by ``into`` children covering its whole
    search, along ``axis`` (``"time"`` or ``"space"``)."""

    entry_key: str
    chunk_id: str
    into: int
    axis: str = "time"


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


@dataclasses.dataclass
class EntryProgress:
    """A snapshot of one entry's progress, as renderers draw it."""

    entry_key: str
    label: str
    items: int = 0
    duplicates: int = 0
    total: int | None = None
    chunks_planned: int = 0
    chunks_done: int = 0
    chunks_failed: int = 0
    retries: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)
    finished: float | None = None
    error: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    """:class:`Notice` messages: fallbacks and other things worth knowing."""

    @property
    def elapsed(self) -> float:
        """Seconds since the entry started (frozen once it finished)."""
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Items per second so far."""
        return self.items / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        """Completion in [0, 1]: items vs total when known, else chunks done vs planned."""
        if self.finished is not None and not self.chunks_failed and self.error is None:
            return 1.0
        if self.total:
            return min(1.0, self.items / self.total)
        if self.chunks_planned:
            return min(1.0, (self.chunks_done + self.chunks_failed) / self.chunks_planned)
        return None

    @property
    def eta(self) -> float | None:
        """Estimated seconds left, when a fraction and a rate exist."""
        frac = self.fraction
        if frac is None or frac <= 0 or self.finished is not None:
            return None
        return self.elapsed * (1 - frac) / frac

    @property
    def status(self) -> str:
        """``running``, ``done``, or ``failed``."""
        if self.finished is None:
            return "running"
        return "failed" if (self.chunks_failed or self.error) else "done"


class ProgressTracker:
    """Folds events into :class:`EntryProgress` snapshots, one per entry (a sink itself).

    Example:
        >>> t = ProgressTracker()
        >>> t.emit(EntryStarted("u#c", "c"))
        >>> t.emit(EntryPlanned("u#c", chunks=2, total=None))
        >>> t.emit(PageFetched("u#c", "k", new=5, duplicates=1))
        >>> t.emit(ChunkDone("u#c", "k", items=5))
        >>> p = t.entries["u#c"]
        >>> (p.items, p.duplicates, p.chunks_done, p.fraction)
        (5, 1, 1, 0.5)
    """

    def __init__(self) -> None:
        self.entries: dict[str, EntryProgress] = {}
        self.failures: list[FailureRecord] = []
        self.version = 0
        """Bumped on every event, so renderers can skip redraws when nothing changed."""

    def _get(self, key: str) -> EntryProgress:
        if key not in self.entries:
            self.entries[key] = EntryProgress(key, key.rsplit("#", 1)[-1])
        return self.entries[key]

    def emit(self, event: Event) -> None:
        """Fold one event into the snapshots."""
        self.version += 1
        if isinstance(event, RunDone):
            return
        p = self._get(event.entry_key)
        if isinstance(event, EntryStarted):
            p.label = event.label
            p.finished = None
        elif isinstance(event, EntryPlanned):
            p.chunks_planned += event.chunks
            if event.total is not None:
                p.total = (p.total or 0) + event.total
        elif isinstance(event, ChunkSplit):
            p.chunks_planned += event.into
        elif isinstance(event, PageFetched):
            p.items += event.new
            p.duplicates += event.duplicates
        elif isinstance(event, Retrying):
            p.retries += 1
        elif isinstance(event, ChunkDone):
            p.chunks_done += 1
        elif isinstance(event, ChunkFailed):
            p.chunks_failed += 1
            self.failures.append(event.record)
        elif isinstance(event, Notice):
            p.notes.append(event.message)
        elif isinstance(event, EntryDone):
            p.finished = time.monotonic()
            p.error = event.error
