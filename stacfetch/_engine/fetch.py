"""The async engine: fetch each entry's search with parallel workers, exactly once.

Per entry: discover the catalog and collection (config problems raise before any item is
fetched); start from the user's own search, probed with a small first page; replace a chunk
that turns out large by children covering its whole search (:mod:`.splitting` decides when
and checks every split against the server, :mod:`.ramp` whether splits pay on it); page the
rest; pass every item through the entry's exactly-once set. No order is assumed, and a full
page without ``next`` is never taken as the end (rules: docs/decisions/0001-exactly-once.md).

Output is a stream of :class:`~.records.PlanReady`, :class:`~.records.Page` and
:class:`~.records.ChunkEnd` records, with bounded memory: workers block on a bounded queue
when the consumer is slower than the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from .._model.errors import StacfetchError
from .._model.events import (
    ChunkDone,
    ChunkSpan,
    ChunkStarted,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    EventSink,
)
from .._model.failures import FailureCollector
from .._model.types import Chunk, Interval
from .chunk import run_chunk
from .decoder_pool import DecoderPool
from .discovery import open_catalog, read_collection
from .http import HttpSession
from .pages import DECODER_MIN_ITEMS, start_if_large
from .plan import choose_chunk_target
from .records import (
    ChunkEnd,
    EntryState,
    EntryTask,
    Output,
    PlanReady,
    SplitNode,
)
from .search import (
    ApiInfo,
)
from .slices import search_slice, slice_chunk
from .splitting import Splitter

__all__ = ["FetchEngine"]

logger = logging.getLogger("stacfetch")


CHUNKS_PER_CONNECTION = 2
"""Chunks of an entry running at once, per connection of ``concurrency``. A chunk waiting for
its last page to be decoded (or for a decoded page to tell whether it splits) holds no
connection, so another chunk takes it; the per-host limiter still caps the requests in flight
at ``concurrency``."""


class FetchEngine:
    """Runs entries' chunks in parallel over one :class:`~stacfetch._engine.http.HttpSession`.

    Example:
        >>> async def main(http, sink, failures):
        ...     engine = FetchEngine(http, sink=sink, failures=failures, workers=8, limit=500)
        ...     async for out in engine.stream([EntryTask(Entry(url, "c1"), IngestFilters())]):
        ...         ...
    """

    def __init__(
        self,
        http: HttpSession,
        *,
        sink: EventSink,
        failures: FailureCollector,
        workers: int,
        limit: int,
        chunk_size: int | None = None,
        max_chunk: int | None = None,
        modifier: Callable[[Any], Any] | None = None,
        max_items: int | None = None,
        catalogs: dict[str, tuple[ApiInfo, Any]] | None = None,
        splitter: Splitter | None = None,
        decoder: DecoderPool | None = None,
        decoder_min_items: int = DECODER_MIN_ITEMS,
    ) -> None:
        self.http = http
        self.sink = sink
        self.failures = failures
        self.workers = workers
        self.limit = limit
        self.chunk_size = chunk_size
        self.max_chunk = max_chunk
        """Without a ``chunk_size``: chunks of at most this many items (None: no cap)."""
        self.modifier = modifier
        self.max_items = max_items
        self.catalogs: dict[str, tuple[ApiInfo, Any]] = catalogs if catalogs is not None else {}
        self._catalog_locks: dict[str, asyncio.Lock] = {}
        self.splitter = splitter or Splitter(workers=workers, sink=sink)
        """When chunks split and how splits are checked (a Dask task passes one that only
        reports the children, for the scheduler to run)."""
        self.decoder = decoder if modifier is None else None
        """Decoder processes: pages come out as Arrow tables (not with a page ``modifier``,
        which needs the page as a dict). Started once the plans are made, unless the counts
        say the run holds fewer than ``decoder_min_items`` items."""
        self.decoder_min_items = decoder_min_items

    # -- discovery and planning ---------------------------------------------------------
    async def _catalog(self, url: str) -> tuple[ApiInfo, Any]:
        lock = self._catalog_locks.setdefault(url, asyncio.Lock())
        async with lock:
            if url not in self.catalogs:
                self.catalogs[url] = await asyncio.to_thread(
                    open_catalog,
                    url,
                    headers=self.http.headers,
                    request_modifier=self.http.request_modifier,
                    retry=self.http.retry,
                )
            return self.catalogs[url]

    async def prepare(self, task: EntryTask) -> EntryState:
        """Discover one entry (raises config problems); :meth:`plan` plans it after."""
        entry = task.entry
        if entry.catalog_url is None or entry.collection_id is None:
            raise StacfetchError(f"entry {entry.key} has no catalog_url/collection_id")
        state = EntryState(task, seen=task.seen if task.seen is not None else set())
        state.api, client = await self._catalog(entry.catalog_url)
        if task.chunks is not None:  # re-running known chunks: the entry was checked when planned
            state.chunks = list(task.chunks)
            state.target = self._target(None)
            return state
        state.info = await asyncio.to_thread(
            read_collection, client, state.api, entry.collection_id
        )
        return state

    async def plan(self, state: EntryState) -> None:
        """Plan a discovered entry: one chunk, the user's own search, probed with a small page.

        The probe's page tells the total (when the server reports ``numberMatched``) and what
        the items look like; :func:`~.chunk.run_chunk` then splits it. With ``max_items`` the search
        is paged in order and never split (the first N items, as the server sorts them).
        ``ids`` searches become one chunk per ``limit`` ids.
        """
        entry, filters = state.task.entry, state.task.filters
        interval = filters.interval or Interval(None, None)
        search = filters.search_filters()
        state.target = self._target(None)
        if "ids" in search:
            ids = search.pop("ids")
            state.chunks = [
                Chunk.make(entry, interval, {**search, "ids": group}, sequential=True)
                for group in (ids[i : i + self.limit] for i in range(0, len(ids), self.limit))
            ]
            return
        root = Chunk.make(entry, interval, search, sequential=self.max_items is not None)
        state.chunks = [root]
        if not root.sequential:
            state.probes.add(root.chunk_id)
            state.counting = asyncio.get_running_loop().create_future()
            if self.splitter.local and (piece := slice_chunk(state, root, 2 * self.workers)):
                state.slice_search = piece

    def _target(self, total: int | None) -> int:
        return choose_chunk_target(self.chunk_size, self.limit, total, self.workers, self.max_chunk)

    def counted(self, state: EntryState, matched: int | None) -> None:
        """The probe answered: the total (when reported) sets the chunk target."""
        if state.counting is None or state.counting.done():
            return
        state.counting.set_result(None)
        if matched is None:
            return
        state.total = matched
        state.target = self._target(matched)
        self.sink.emit(EntryPlanned(state.task.entry.key, 0, matched))

    # -- fetching ------------------------------------------------------------------------
    async def stream(self, tasks: Sequence[EntryTask]) -> AsyncIterator[Output]:
        """Discover and plan every entry, then fetch them all; yield pages as they arrive.

        Configuration problems of any entry raise before any page is fetched.
        """
        for task in tasks:
            self.sink.emit(EntryStarted(task.entry.key, task.entry.label))
        states = await asyncio.gather(*(self.prepare(t) for t in tasks))
        # every entry discovered before any search (the count probes) is sent
        await asyncio.gather(*(self.plan(s) for s in states if s.info is not None))
        background = [s.counting for s in states if s.counting is not None]
        background += [
            asyncio.ensure_future(
                search_slice(self.http, self.splitter, self.sink, s, s.slice_search)
            )
            for s in states
            if s.slice_search is not None
        ]
        if self.decoder is not None:
            background.append(
                asyncio.ensure_future(start_if_large(self.decoder, states, self.decoder_min_items))
            )
        out: asyncio.Queue[Output | None] = asyncio.Queue(maxsize=max(4, self.workers * 2))
        runners = [asyncio.create_task(self._run_entry(s, out)) for s in states]
        remaining = len(runners)
        try:
            while remaining:
                item = await out.get()
                if item is None:
                    remaining -= 1
                    continue
                yield item
            for runner in runners:
                await runner  # surface unexpected errors
        finally:
            for job in [*runners, *background]:
                job.cancel()
            for job in [*runners, *background]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job

    async def _run_entry(self, state: EntryState, out: asyncio.Queue[Output | None]) -> None:
        entry = state.task.entry
        error: str | None = None
        try:
            self.sink.emit(
                EntryPlanned(entry.key, len(state.chunks), state.total, state.axis_range())
            )
            await out.put(PlanReady(entry, tuple(state.chunks)))
            queue: asyncio.Queue[Chunk] = asyncio.Queue()
            state.queue = queue
            for chunk in state.chunks:
                queue.put_nowait(chunk)
            workers = [
                asyncio.create_task(self._worker(state, queue, out))
                for _ in range(CHUNKS_PER_CONNECTION * self.workers)
            ]
            try:
                joined = asyncio.ensure_future(queue.join())
                done, _ = await asyncio.wait(
                    [joined, *workers], return_when=asyncio.FIRST_COMPLETED
                )
                for w in workers:
                    if w in done and w.exception() is not None:
                        raise w.exception()  # type: ignore[misc]
            finally:
                for w in [*workers, joined]:
                    w.cancel()
                for w in workers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await w
        except Exception as exc:  # an engine bug: report it on the entry, keep other entries
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if state.counting is not None and not state.counting.done():
                state.counting.cancel()  # everything is fetched: the total is moot
            self.sink.emit(EntryDone(entry.key, state.items, state.failed, error))
            await out.put(None)

    async def _worker(
        self, state: EntryState, queue: asyncio.Queue[Chunk], out: asyncio.Queue[Output | None]
    ) -> None:
        key = state.task.entry.key
        while True:
            chunk = await queue.get()
            try:
                admitted = await state.ramp.admit(chunk.chunk_id)
                span = ChunkSpan.of(chunk)
                self.sink.emit(ChunkStarted(key, chunk.chunk_id, span.interval, span.bbox))
                if not admitted:  # a child the first wave showed not worth sending
                    self.sink.emit(ChunkDone(key, chunk.chunk_id, 0))
                    await out.put(ChunkEnd(state.task.entry, chunk, ok=True))
                    await self.complete(state, state.nodes.get(chunk.chunk_id), out, failed=False)
                    continue
                state.busy += 1
                try:
                    if not state.stop:
                        await run_chunk(self, state, chunk, out)
                finally:
                    state.busy -= 1
                    state.ramp.finished(chunk.chunk_id)
            finally:
                queue.task_done()

    async def complete(
        self,
        state: EntryState,
        node: SplitNode | None,
        out: asyncio.Queue[Output | None],
        *,
        failed: bool,
    ) -> None:
        """A chunk is done: check the splits it completes; a split that disagrees with the
        server ends with its fallback as its only child."""
        fell_back = self.splitter.complete(state, node, failed=failed)
        if fell_back is not None:
            chunk, fallback = fell_back
            await out.put(ChunkEnd(state.task.entry, chunk, ok=True, children=(fallback,)))
