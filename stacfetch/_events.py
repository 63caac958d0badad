"""Progress and failure events, and the sink protocol every front end consumes.

The engine emits events; front ends (notebook widgets, terminal bars, logs) only ever see
events, never the engine. :class:`ProgressTracker` folds events into a per-entry
:class:`EntryProgress` snapshot that renderers draw at their own (throttled) pace.

Events are emitted per chunk or per page, never per item.

The chunk timeline (:mod:`stacfetch._timeline`) folds chunk events into
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

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ChunkDone",
    "ChunkFailed",
    "ChunkSpan",
    "ChunkSplit",
    "ChunkStarted",
    "ChunkState",
    "ChunksPlanned",
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


CHUNK_STATES = ("pending", "running", "done", "split", "failed")
"""The states of a chunk on the timeline."""


@dataclasses.dataclass
class ChunkState:
    """What is known of one chunk: where it searches, its state, items and attempts.

    ``interval`` and ``bbox`` stay ``None`` until an event tells them (a chunk seen only
    through its pages is drawn nowhere on the timeline, but counted).

    Example:
        >>> ChunkState("ab", "2024-01-01/2024-02-01").state
        'pending'
    """

    chunk_id: str
    interval: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    state: str = "pending"
    items: int = 0
    attempts: int = 0
    parent_id: str | None = None
    run: int = 0
    """The run (count of the entry's ``EntryStarted``) that last changed the state."""


@dataclasses.dataclass
class EntryProgress:
    """A snapshot of one entry's progress, as renderers draw it.

    ``chunks`` holds a :class:`ChunkState` per chunk id seen in events (the timeline);
    ``chunks_version`` changes whenever one of them does.
    """

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
    pages: int = 0
    interval: str | None = None
    chunks: dict[str, ChunkState] = dataclasses.field(default_factory=dict, repr=False)
    chunks_version: int = 0
    runs: int = 0

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

    @staticmethod
    def _chunk(
        p: EntryProgress,
        chunk_id: str,
        interval: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> ChunkState:
        """The chunk's state (made on first sight); fills in its span when an event tells it."""
        p.chunks_version += 1
        state = p.chunks.get(chunk_id)
        if state is None:
            state = p.chunks[chunk_id] = ChunkState(chunk_id)
        if interval is not None and state.interval is None:
            state.interval = interval
        if bbox is not None and state.bbox is None:
            state.bbox = tuple(bbox)  # type: ignore[assignment]
        return state

    def _plan(self, p: EntryProgress, spans: Iterable[ChunkSpan], parent: str | None) -> None:
        for span in spans:
            state = self._chunk(p, span.chunk_id, span.interval, span.bbox)
            if parent is not None and state.parent_id is None:
                state.parent_id = parent

    def _fold_chunk(self, p: EntryProgress, event: Event) -> None:
        """The timeline: chunk states from the chunk events."""
        if isinstance(event, ChunksPlanned):
            if event.parent_id is not None:
                self._chunk(p, event.parent_id).state = "split"
            self._plan(p, event.chunks, event.parent_id)
            for span in event.chunks:  # a chunk that failed in an earlier run is retried
                state = p.chunks[span.chunk_id]
                if state.state == "failed" and state.run < p.runs:
                    state.state = "pending"
        elif isinstance(event, ChunkStarted):
            state = self._chunk(p, event.chunk_id, event.interval, event.bbox)
            if state.state == "pending":
                state.state = "running"
            state.attempts = max(state.attempts, 1)
        elif isinstance(event, ChunkSplit):
            self._chunk(p, event.chunk_id).state = "split"
            self._plan(p, event.children, event.chunk_id)
        elif isinstance(event, PageFetched):
            state = self._chunk(p, event.chunk_id)
            if state.state == "pending":
                state.state = "running"
            state.attempts = max(state.attempts, 1)
            state.items += event.new
        elif isinstance(event, Retrying):
            if event.chunk_id in p.chunks:  # not the plan's probes
                state = self._chunk(p, event.chunk_id)
                state.attempts = max(state.attempts, 1) + 1
                if state.state == "pending":
                    state.state = "running"
        elif isinstance(event, ChunkDone):
            state = self._chunk(p, event.chunk_id)
            if state.state != "split":  # a split chunk is "done" with its remainder handed on
                state.state = "done"
                state.items = max(state.items, event.items)
        elif isinstance(event, ChunkFailed):
            record = event.record
            bbox = None
            if record.chunk is not None:
                with contextlib.suppress(Exception):
                    bbox = ChunkSpan.of(record.chunk).bbox
            state = self._chunk(p, record.chunk_id, record.interval, bbox)
            state.state = "failed"
            state.run = p.runs
            state.attempts = max(state.attempts, record.attempts)
            state.items = max(state.items, record.items_delivered)

    def emit(self, event: Event) -> None:
        """Fold one event into the snapshots."""
        self.version += 1
        if isinstance(event, RunDone):
            return
        p = self._get(event.entry_key)
        if isinstance(event, EntryStarted):
            p.label = event.label
            p.finished = None
            p.runs += 1
        elif isinstance(event, EntryPlanned):
            p.chunks_planned += event.chunks
            if event.total is not None:
                p.total = (p.total or 0) + event.total
            if event.interval is not None:
                p.interval = event.interval
        elif isinstance(event, ChunkSplit):
            p.chunks_planned += event.into
        elif isinstance(event, PageFetched):
            p.items += event.new
            p.duplicates += event.duplicates
            p.pages += 1
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
        if isinstance(event, (EntryStarted, EntryPlanned, EntryDone)):
            return
        self._fold_chunk(p, event)
