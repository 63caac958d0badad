"""The async engine: fetch each entry's search with parallel workers, exactly once.

Per entry: discover the catalog and collection (config problems raise before any item is
fetched); start from the user's own search, probed with a small first page; replace a chunk
that turns out large by children covering its whole search (:mod:`.splitting` decides when
and checks every split against the server, :mod:`.ramp` whether splits pay on it); page the
rest; pass every item through the entry's exactly-once set. No order is assumed, and a full
page without ``next`` is never taken as the end. ``docs/decisions/0001-exactly-once.md``
tells the rules in full.

Output is a stream of :class:`~.records.PlanReady`, :class:`~.records.Page` and
:class:`~.records.ChunkEnd` records, with bounded memory: workers block on a bounded queue
when the consumer is slower than the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from .._model.errors import FetchError, StacfetchError
from .._model.events import (
    ChunkDone,
    ChunkFailed,
    ChunkSpan,
    ChunkStarted,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    EventSink,
    PageFetched,
    Retrying,
)
from .._model.failures import FailureCollector
from .._model.types import Chunk, Interval
from .decoder import DecoderPool, InvalidPageContent
from .discovery import open_catalog, read_collection
from .http import HttpSession
from .pages import DECODER_MIN_ITEMS, chunk_failure, get_page, in_time, start_if_large
from .plan import choose_chunk_target
from .records import (
    PROBE_LIMIT,
    ChunkEnd,
    EntryState,
    EntryTask,
    Output,
    Page,
    PlanReady,
    SplitNode,
    new_items,
)
from .search import (
    ApiInfo,
    SearchRequest,
    build_search_request,
    next_request,
    page_matched,
    request_limit,
)
from .splitting import Splitter, truncation

__all__ = ["FetchEngine"]

logger = logging.getLogger("stacfetch")

MAX_EMPTY_PAGES = 5
"""Consecutive empty pages that still carry a ``next`` link before a chunk is declared stalled."""


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
        the items look like; :meth:`_run_chunk` then splits it. With ``max_items`` the search
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

    def _target(self, total: int | None) -> int:
        return choose_chunk_target(self.chunk_size, self.limit, total, self.workers, self.max_chunk)

    def _counted(self, state: EntryState, matched: int | None) -> None:
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
                asyncio.create_task(self._worker(state, queue, out)) for _ in range(self.workers)
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
                    await self._complete(state, state.nodes.get(chunk.chunk_id), out, failed=False)
                    continue
                state.busy += 1
                try:
                    if not state.stop:
                        await self._run_chunk(state, chunk, out)
                finally:
                    state.busy -= 1
                    state.ramp.finished(chunk.chunk_id)
            finally:
                queue.task_done()

    async def _run_chunk(
        self, state: EntryState, chunk: Chunk, out: asyncio.Queue[Output | None]
    ) -> None:
        assert state.api is not None
        assert state.queue is not None
        entry = state.task.entry
        key = entry.key
        cid = chunk.chunk_id
        node = state.nodes.get(cid)
        started = time.time()
        probe = cid in state.probes or cid in state.count_probes
        wave = state.ramp.sampling(cid)  # its first page gives the verdict on splits
        sampling = wave and not probe  # so that page is small: the other children wait less
        limit = self.limit
        if probe or sampling:
            limit = 1 if cid in state.count_probes else min(limit, PROBE_LIMIT)
        if self.max_items is not None:
            limit = max(1, min(limit, self.max_items - state.items))
        req: SearchRequest | None = build_search_request(state.api, chunk, limit)
        seen_requests: set[str] = set()
        returned = delivered = empty_pages = 0
        matched: int | None = None
        first, retried = True, False
        inseparable = False  # a split was due, but no axis separates the chunk's items

        def on_retry(attempt: int, status: int | None, error: str, delay: float) -> None:
            nonlocal retried
            retried = True
            self.sink.emit(Retrying(key, cid, attempt, status, error, delay))

        def fail(req: SearchRequest, exc: FetchError | None, error_type: str, msg: str) -> None:
            record = chunk_failure(
                chunk, req, exc, error_type, msg, first_time=started, delivered=delivered
            )
            state.failed += 1
            self.failures.add(record)
            self.sink.emit(ChunkFailed(key, record))

        async def failed(req: SearchRequest, exc: FetchError | None, kind: str, msg: str) -> None:
            if probe:
                self._counted(state, None)
            if exc is not None:
                status = exc.status_code
                narrowed = self.splitter.narrow(
                    state, chunk, node, status, max_items=self.max_items
                )
                if narrowed is not None:
                    await out.put(ChunkEnd(entry, chunk, ok=True, children=narrowed))
                    return
            fail(req, exc, kind, msg)
            await out.put(ChunkEnd(entry, chunk, ok=False))
            await self._complete(state, node, out, failed=True)

        while req is not None and not state.stop:
            seen_requests.add(req.fingerprint())
            asked = time.monotonic()
            try:
                fetching = asyncio.ensure_future(
                    get_page(self.http, self.decoder, req, entry.collection_id, on_retry)
                )
                if wave and first:  # other requests to the server in flight: a load
                    state.ramp.shared = self.http.limiter(req.url).in_flight > 0
                deadline = state.ramp.deadline(limit) if wave and first else None
                if deadline and not await in_time(fetching, deadline, lambda: retried):
                    wave = False  # overdue: the verdict needs no page
                    if not (collapsed := self.splitter.overdue(state, node, cid)):
                        continue  # no verdict to give (the gate opened meanwhile): ask again
                    await out.put(ChunkEnd(entry, collapsed[0], ok=True, children=collapsed[1:]))
                    break
                page, features, table = await fetching
            except FetchError as exc:
                await failed(req, exc, exc.error_type, str(exc))
                return
            except InvalidPageContent as exc:  # items that do not convert to Arrow
                await failed(req, None, "InvalidItems", exc.message)
                return
            if self.modifier is not None:
                modified = self.modifier(page)
                if isinstance(modified, dict):
                    page = modified
                    features = page.get("features") or []
            if first:
                matched = page_matched(page)
                if probe:
                    self._counted(state, matched)
                if node is not None and cid not in state.fallbacks:
                    node.child_counts += matched is not None
                    node.child_matched += matched or 0
                waited = None if retried else time.monotonic() - asked  # retries: no evidence
                if collapsed := self.splitter.timed(state, node, cid, waited, len(features)):
                    await out.put(ChunkEnd(entry, collapsed[0], ok=True, children=collapsed[1:]))
            returned += len(features)
            positions, keys = new_items(state.seen, features, entry.collection_id)
            self.splitter.seen_again(node, keys)
            self.splitter.check_page(node, chunk, features, state)
            if self.max_items is not None:
                positions = positions[: max(0, self.max_items - state.items)]
            new = [features[i] for i in positions]
            if table is not None and len(positions) < table.num_rows:
                import pyarrow as pa

                table = table.take(pa.array(positions, type=pa.int64()))
            delivered += len(new)
            state.items += len(new)
            self.sink.emit(PageFetched(key, cid, len(new), len(features) - len(new), matched))
            if new:
                await out.put(Page(entry, cid, new, table))
            if self.max_items is not None and state.items >= self.max_items:
                state.stop = True
            if state.stop or state.ramp.superseded(cid):  # superseded: by an unsplit fallback
                break
            nxt = next_request(page, req)
            full = len(features) >= request_limit(req, limit)
            if not (sampling and matched is None):  # a sample without counts: page on
                split, unsplit = self.splitter.after_page(
                    state, chunk, node, features, matched=matched, returned=returned,
                    has_next=nxt is not None, full=full, probe=probe or sampling,
                )  # fmt: skip
                if unsplit:
                    inseparable = delivered > 0
                if split is not None:
                    children = self.splitter.enqueue(
                        state, chunk, split, features, keys, matched, node, paged=nxt is not None
                    )
                    await out.put(ChunkEnd(entry, chunk, ok=True, children=children))
                    return
            first = False
            if (probe or sampling) and (nxt is not None or full):  # fetch it with full pages
                probe = sampling = False
                req = build_search_request(state.api, chunk, self.limit)
                limit = self.limit
                seen_requests.clear()
                del page, features, new, positions, table
                continue
            if nxt is not None:
                empty_pages = empty_pages + 1 if not features else 0
                if empty_pages >= MAX_EMPTY_PAGES:
                    await failed(nxt, None, "PagingStalled", f"{empty_pages} empty pages in a row")
                    return
                if nxt.fingerprint() in seen_requests:
                    await failed(nxt, None, "PagingLoop", "the server repeated a next link")
                    return
                req = nxt
                # hold no page while waiting for the next one: 16 workers each keeping their
                # last 1000-item page alive meant ~2.4 M live objects for the collector to walk
                del page, features, new, positions, table
                continue
            # No next link, and no split: the end, unless the evidence says items are missing.
            size = len(features) if full else 0
            msg = truncation(state, chunk, matched, returned, size, inseparable=inseparable)
            if msg is not None:
                await failed(req, None, "Truncated", msg)
                return
            req = None
        self.sink.emit(ChunkDone(key, cid, delivered))
        await out.put(ChunkEnd(entry, chunk, ok=True))
        await self._complete(state, node, out, failed=False)

    async def _complete(
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
