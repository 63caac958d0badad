"""One chunk as a Dask task on a worker: fetch it, write its GeoParquet parts, report back.

A task builds its own HTTP session (gated cluster-wide, :mod:`.gates`) and engine through the
one wiring of every path (:func:`stacfetch._run.connect.open_engine`), with the catalog's
landing page pre-seeded (no discovery request) and a split policy that only reports children:
a chunk that proves large (``chunk_size`` items, else five pages, and more to come) stops,
and the rest of its search comes back as children for the driver to submit. Parts are named
``e<entry>-<chunk_id>-<n>.parquet`` (temporary name, then rename), so a task Dask runs twice
replaces its own parts instead of adding copies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from .._engine.records import ChunkEnd, EntryState, EntryTask, Page
from .._engine.search import ApiInfo
from .._engine.splitting import MAX_SPLIT_PIECES, Splitter
from .._model.events import (
    ChunkDone,
    ChunkFailed,
    ChunkSplit,
    Event,
    FailureRecord,
    PageFetched,
    Retrying,
)
from .._model.failures import FailureCollector
from .._model.filters import IngestFilters
from .._model.types import Chunk
from .._run.connect import open_engine
from .._run.parts import PartWriter, Rows
from .._run.run import Connection
from .gates import GatedSession, Gates

__all__ = ["ROWS_PER_PART", "ChunkResult", "RunSpec", "fetch_chunk_task", "part_prefix"]

ROWS_PER_PART = 20_000
"""Items per GeoParquet part a task writes (a chunk larger than that writes several parts)."""

SPLIT_PIECES = 4
"""Pieces the rest of a chunk is split into when it proves large and the server gives no count."""

MAX_EVENTS = 100
"""Retry events a task reports back per chunk (the rest are counted, not listed)."""


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything a task needs besides its chunk; pickled with every task (small).

    Example:
        >>> from stacfetch import RetryConfig
        >>> spec = RunSpec("out", "r1", {}, Connection(RetryConfig(), concurrency=4, limit=10),
        ...                rows_per_part=100)
        >>> (spec.concurrency, spec.pause_name)
        (4, 'stacfetch-r1-pause')
    """

    path: str
    run_id: str
    catalogs: Mapping[str, ApiInfo]
    connection: Connection
    rows_per_part: int

    @property
    def concurrency(self) -> int:
        """Requests in flight at once to one origin, across the whole cluster."""
        return self.connection.concurrency

    def semaphore_name(self, origin: str) -> str:
        """The name of the cluster-wide semaphore of ``origin`` for this run."""
        return f"stacfetch-{self.run_id}-{_digest(origin)}"

    @property
    def pause_name(self) -> str:
        """The name of the run's pause board (a ``distributed.Variable``)."""
        return f"stacfetch-{self.run_id}-pause"


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    """What a task reports about its chunk: small, whatever the chunk's size.

    ``children`` are the chunks the rest of a large chunk was split into (to be submitted);
    ``parts`` the file names written into the output directory; ``events`` the progress events
    to replay on the driver (one aggregated :class:`~stacfetch._model.events.PageFetched`).

    Example:
        >>> from stacfetch import Chunk, Entry, Interval
        >>> c = Chunk.make(Entry("https://x/stac", "c1"), Interval(None, None))
        >>> r = ChunkResult(index=0, chunk=c, ok=True, items=3)
        >>> (r.ok, r.items, r.children)
        (True, 3, ())
    """

    index: int
    chunk: Chunk
    ok: bool
    items: int = 0
    duplicates: int = 0
    children: tuple[Chunk, ...] = ()
    truncation_children: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    failure: FailureRecord | None = None
    events: tuple[Event, ...] = ()
    origins: tuple[str, ...] = ()
    requests: int = 0
    seconds: float = 0.0
    worker: str = ""


class TaskSplitter(Splitter):
    """The split policy of a task: it cannot see the cluster's idle slots, so it splits when
    the count says the rest exceeds the target, or (no count) once it has delivered the
    target and pages keep coming. Children are reported, not run (``local=False``).

    Example:
        >>> from stacfetch._model.events import fanout
        >>> TaskSplitter(truncated=["ab"], sink=fanout()).local
        False
    """

    def __init__(self, *, truncated: Iterable[str] = (), **kwargs: object) -> None:
        super().__init__(workers=1, local=False, **kwargs)  # type: ignore[arg-type]
        self.truncated = set(truncated)
        self.state: EntryState | None = None

    def pieces(
        self,
        state: EntryState,
        matched: int | None,
        returned: int,
        *,
        has_next: bool,
        full: bool,
        probe: bool,
    ) -> int:
        """Into how many children to split the rest of the task's chunk (0: page on)."""
        if self.state is None:
            self.state = state
            state.truncation_children.update(self.truncated)
        target = max(1, state.target)
        if matched is not None:
            remaining = matched - returned
            if remaining > target or (remaining > 0 and not has_next):
                return max(2, min(MAX_SPLIT_PIECES, -(-matched // target)))
            return 0
        if not has_next:
            return 2 if full else 0
        return SPLIT_PIECES if state.items >= target else 0


class _Recorder:
    """The task's event sink: keeps what the driver replays, aggregates pages."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.new = 0
        self.duplicates = 0
        self.matched: int | None = None
        self.retries = 0

    def emit(self, event: Event) -> None:
        if isinstance(event, PageFetched):
            self.new += event.new
            self.duplicates += event.duplicates
            if event.matched is not None:
                self.matched = event.matched
        elif isinstance(event, Retrying):
            self.retries += 1
            if self.retries <= MAX_EVENTS:
                self.events.append(event)
        elif isinstance(event, (ChunkSplit, ChunkDone, ChunkFailed)):
            self.events.append(event)


def part_prefix(index: int, chunk: Chunk) -> str:
    """The name prefix of the parts a chunk's task writes.

    Example:
        >>> from stacfetch import Chunk, Entry, Interval
        >>> c = Chunk.make(Entry("https://x/stac", "c1"), Interval(None, None))
        >>> part_prefix(3, c) == f"e03-{c.chunk_id}-"
        True
    """
    return f"e{index:02d}-{chunk.chunk_id}-"


def _remove_parts(directory: Path, prefix: str) -> None:
    for stale in directory.glob(f"{prefix}*.parquet"):
        stale.unlink(missing_ok=True)


def fetch_chunk_task(spec: RunSpec, index: int, chunk: Chunk, truncated: bool) -> ChunkResult:
    """The Dask task: fetch one chunk, write its GeoParquet part(s), report a :class:`ChunkResult`.

    Runs on a worker thread (its own event loop); submitted by the driver
    (:func:`stacfetch._dask.driver.dask_to_parquet`), not meant to be called directly.

    Example::

        fut = client.submit(fetch_chunk_task, spec, 0, chunk, False)
        fut.result().items   # -> 1000
    """
    gates = Gates(spec)
    try:
        return asyncio.run(_fetch_chunk(spec, index, chunk, truncated, gates))
    finally:
        gates.close()


async def _fetch_chunk(
    spec: RunSpec, index: int, chunk: Chunk, truncated: bool, gates: Gates
) -> ChunkResult:
    started = time.monotonic()
    entry = chunk.entry
    assert entry.catalog_url is not None
    out = Path(spec.path)
    prefix = part_prefix(index, chunk)
    await asyncio.to_thread(_remove_parts, out, prefix)  # of an earlier, unfinished attempt
    recorder = _Recorder()
    failures = FailureCollector()
    splitter = TaskSplitter(truncated=[chunk.chunk_id] if truncated else [], sink=recorder)
    end: ChunkEnd | None = None
    rows = Rows()
    names = 0
    async with (
        open_engine(
            spec.connection,
            sink=recorder,
            failures=failures,
            catalogs={entry.catalog_url: (spec.catalogs[entry.catalog_url], None)},
            session=functools.partial(GatedSession, gates),
            workers=1,
            max_concurrency=2,
            splitter=splitter,
        ) as engine,
        PartWriter(out, backlog=1) as parts,
    ):
        task = EntryTask(entry, IngestFilters(), chunks=[chunk], seen=set())
        try:
            async for output in engine.stream([task]):
                if isinstance(output, Page):
                    rows.add(output)
                    if len(rows) >= spec.rows_per_part:
                        await parts.put(rows, f"{prefix}{names:05d}.parquet")
                        rows, names = Rows(), names + 1
                elif isinstance(output, ChunkEnd):
                    end = output
            if len(rows):
                await parts.put(rows, f"{prefix}{names:05d}.parquet")
        finally:
            await gates.board.flush()
        requests = engine.http.requests_sent
    if end is None:
        raise RuntimeError(f"chunk {chunk.chunk_id}: the engine ended without a result")
    state = splitter.state
    marked = state.truncation_children if state is not None else set()
    events: list[Event] = [
        PageFetched(entry.key, chunk.chunk_id, recorder.new, recorder.duplicates, recorder.matched),
        *recorder.events,
    ]
    return ChunkResult(
        index=index,
        chunk=chunk,
        ok=end.ok,
        items=recorder.new,
        duplicates=recorder.duplicates,
        children=end.children,
        truncation_children=tuple(c.chunk_id for c in end.children if c.chunk_id in marked),
        parts=tuple(parts.parts),
        failure=failures[0] if failures else None,
        events=tuple(events),
        origins=gates.origins,
        requests=requests,
        seconds=time.monotonic() - started,
        worker=gates.worker,
    )
