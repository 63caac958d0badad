"""Progress snapshots: :class:`ProgressTracker` folds events into one :class:`EntryProgress`
per entry (with its chunks' :class:`ChunkState`), which renderers draw at their own pace."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterable

from .events import (
    ChunkDone,
    ChunkFailed,
    ChunkSpan,
    ChunksPlanned,
    ChunkSplit,
    ChunkStarted,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    Event,
    FailureRecord,
    Notice,
    PageFetched,
    Retrying,
    RunDone,
)

__all__ = ["CHUNK_STATES", "ChunkState", "EntryProgress", "ProgressTracker"]


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
