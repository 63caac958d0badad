"""The async engine: plan each entry, fetch its chunks with parallel workers, exactly once.

For every entry (collection in a catalog):

1. **Discover** once per catalog (landing page) and once per entry (collection extent), with
   pystac-client in a thread; config problems (unknown collection, not a STAC API) raise here,
   before any item is fetched.
2. **Plan**: one ``limit=1`` probe per coarse piece tells the total when the server reports
   ``numberMatched`` (progress bars show items against it); the time range is split evenly
   into ``2 x workers`` chunks. Open ends outside the extent become open chunks.
3. **Fetch** with ``workers`` coroutines per entry (all entries on a host share that host's
   limiter). Each chunk's first page carries its own ``numberMatched``: when the rest holds
   more than the target, it is split by the datetime of the last item seen (pages come sorted
   by datetime) into enough chunks of about the target size, and handed to other workers; without
   counts the same happens whenever workers would otherwise idle. So counts drive the splits
   without a planning pass of probe requests (docs/decisions/0003).
4. **Exactly once**: every item passes a (collection, id) set per entry, so boundary items,
   range items returned by several chunks, and unstable paging cannot duplicate anything.

Output is a stream of :class:`PlanReady`, :class:`Page` and :class:`ChunkEnd` records, with
bounded memory: workers block on a bounded queue when the consumer is slower than the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._config import IngestFilters
from ._decoder import DecoderPool, InvalidPageContent
from ._discovery import CollectionInfo, open_catalog, read_collection
from ._errors import FetchError, StacfetchError
from ._events import (
    ChunkDone,
    ChunkFailed,
    ChunkSplit,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    EventSink,
    FailureRecord,
    PageFetched,
    Retrying,
)
from ._failures import FailureCollector
from ._http import HttpSession, describe
from ._plan import choose_chunk_target, plan_chunks, split_remainder
from ._search import ApiInfo, SearchRequest, build_search_request, next_request, page_matched
from ._types import Chunk, Entry, Interval

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ChunkEnd", "EntryTask", "FetchEngine", "Output", "Page", "PlanReady"]

MAX_EMPTY_PAGES = 5
"""Consecutive empty pages that still carry a ``next`` link before a chunk is declared stalled."""
MAX_SPLIT_PIECES = 16
DECODER_MIN_ITEMS = 10_000
"""Below this many items (when the counts tell), decoder processes cost more than they save:
each takes ~0.5 s of CPU to start (docs/decisions/0007-decoder-processes.md)."""


@dataclasses.dataclass(frozen=True)
class Page:
    """New (deduplicated) items of one page of one chunk.

    With a decoder pool, ``table`` holds the items as Arrow and ``items`` only their stubs
    (``id``, ``collection``, datetimes), row for row.
    """

    entry: Entry
    chunk_id: str
    items: list[dict[str, Any]]
    table: pa.Table | None = None


@dataclasses.dataclass(frozen=True)
class ChunkEnd:
    """A chunk finished: ``ok``, failed, or was split into ``children`` (which run on)."""

    entry: Entry
    chunk: Chunk
    ok: bool
    children: tuple[Chunk, ...] = ()


@dataclasses.dataclass(frozen=True)
class PlanReady:
    """An entry's initial chunks, emitted before any of its pages (resume records them)."""

    entry: Entry
    chunks: tuple[Chunk, ...]


@dataclasses.dataclass
class EntryTask:
    """What to fetch for one entry: its filters, and optionally the exact chunks to run
    (retry and resume pass them; otherwise the engine plans)."""

    entry: Entry
    filters: IngestFilters
    chunks: list[Chunk] | None = None
    seen: set[tuple[str, str]] | None = None


@dataclasses.dataclass
class _EntryState:
    task: EntryTask
    api: ApiInfo | None = None
    info: CollectionInfo | None = None
    chunks: list[Chunk] = dataclasses.field(default_factory=list)
    total: int | None = None
    target: int = 0
    seen: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    items: int = 0
    failed: int = 0
    busy: int = 0
    queue: asyncio.Queue[Chunk] | None = None
    stop: bool = False
    truncation_children: set[str] = dataclasses.field(default_factory=set)
    counting: asyncio.Future[None] | None = None
    announced: bool = False


Output = Page | ChunkEnd | PlanReady


class FetchEngine:
    """Runs entries' chunks in parallel over one :class:`~stacfetch._http.HttpSession`.

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
        modifier: Callable[[Any], Any] | None = None,
        max_items: int | None = None,
        headers: Mapping[str, str] | None = None,
        request_modifier: Callable[[Any], Any] | None = None,
        catalogs: dict[str, tuple[ApiInfo, Any]] | None = None,
        local_splits: bool = True,
        decoder: DecoderPool | None = None,
        decoder_min_items: int = DECODER_MIN_ITEMS,
    ) -> None:
        self.http = http
        self.sink = sink
        self.failures = failures
        self.workers = workers
        self.limit = limit
        self.chunk_size = chunk_size
        self.modifier = modifier
        self.max_items = max_items
        self.headers = dict(headers or {})
        self.request_modifier = request_modifier
        self.catalogs: dict[str, tuple[ApiInfo, Any]] = catalogs if catalogs is not None else {}
        self._catalog_locks: dict[str, asyncio.Lock] = {}
        self.local_splits = local_splits
        """False: split remainders are only reported (``ChunkEnd.children``), for a scheduler
        elsewhere (Dask) to run; True: this engine's workers run them."""
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
                    headers=self.headers,
                    request_modifier=self.request_modifier,
                    retry=self.http.retry,
                )
            return self.catalogs[url]

    async def prepare(self, task: EntryTask) -> _EntryState:
        """Discover one entry (raises config problems); :meth:`plan` plans it after."""
        entry = task.entry
        if entry.catalog_url is None or entry.collection_id is None:
            raise StacfetchError(f"entry {entry.key} has no catalog_url/collection_id")
        state = _EntryState(task, seen=task.seen if task.seen is not None else set())
        state.api, client = await self._catalog(entry.catalog_url)
        if task.chunks is not None:  # re-running known chunks: the entry was checked when planned
            state.chunks = list(task.chunks)
            state.target = choose_chunk_target(self.chunk_size, self.limit, None, self.workers)
            return state
        state.info = await asyncio.to_thread(
            read_collection, client, state.api, entry.collection_id
        )
        return state

    async def _count(self, state: _EntryState, chunk: Chunk) -> int | None:
        assert state.api is not None
        req = build_search_request(state.api, chunk, 1)
        key = state.task.entry.key

        def on_retry(attempt: int, status: int | None, error: str, delay: float) -> None:
            self.sink.emit(Retrying(key, "plan", attempt, status, error, delay))

        page = await self.http.get_json(req, on_retry=on_retry)
        return page_matched(page)

    async def plan(self, state: _EntryState, *, wait_total: bool = True) -> None:
        """Plan a discovered entry: its initial chunks, and count probes for the total.

        ``wait_total=False`` returns before the probes answer (they run on, and the total
        arrives as a second :class:`EntryPlanned` with ``chunks=0``): the first item pages
        need not wait one more round trip. Remainder splits start after a chunk's first page,
        by which time the total (and so the chunk target) is normally known.
        """
        entry, filters = state.task.entry, state.task.filters
        assert state.info is not None
        interval = filters.interval
        search = filters.search_filters()
        extent = (state.info.extent_start, state.info.extent_end)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        if "ids" in search:
            ids = search.pop("ids")
            state.chunks = [
                Chunk.make(entry, interval or Interval(None, None), {**search, "ids": group})
                for group in (ids[i : i + self.limit] for i in range(0, len(ids), self.limit))
            ]
            return
        coarse = plan_chunks(entry, interval, search, 1, extent=extent, now=now)
        state.target = choose_chunk_target(self.chunk_size, self.limit, None, self.workers)
        state.chunks = plan_chunks(
            entry, interval, search, self.workers * 2, extent=extent, now=now
        )
        state.counting = asyncio.ensure_future(self._total(state, coarse))
        if wait_total:
            await state.counting

    async def _total(self, state: _EntryState, coarse: list[Chunk]) -> None:
        try:
            counts = await asyncio.gather(*(self._count(state, c) for c in coarse))
        except FetchError:
            return  # the total is best effort; fetching will retry
        if any(c is None for c in counts):
            return
        state.total = sum(c or 0 for c in counts)
        state.target = choose_chunk_target(self.chunk_size, self.limit, state.total, self.workers)
        if state.announced:  # the plan went out without it: send the total now
            self.sink.emit(EntryPlanned(state.task.entry.key, 0, state.total))

    # -- fetching ------------------------------------------------------------------------
    async def stream(self, tasks: Sequence[EntryTask]) -> AsyncIterator[Output]:
        """Discover and plan every entry, then fetch them all; yield pages as they arrive.

        Configuration problems of any entry raise before any page is fetched.
        """
        for task in tasks:
            self.sink.emit(EntryStarted(task.entry.key, task.entry.label))
        states = await asyncio.gather(*(self.prepare(t) for t in tasks))
        # every entry discovered before any search (the count probes) is sent
        await asyncio.gather(
            *(self.plan(s, wait_total=False) for s in states if s.info is not None)
        )
        background = [s.counting for s in states if s.counting is not None]
        if self.decoder is not None:
            background.append(asyncio.ensure_future(self._start_decoder(self.decoder, states)))
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

    async def _start_decoder(self, decoder: DecoderPool, states: Sequence[_EntryState]) -> None:
        """Start the decoder processes unless the counts say the run is small (until then,
        and in small runs, pages are decoded in this process)."""
        counting = [s.counting for s in states if s.counting is not None]
        await asyncio.gather(*counting, return_exceptions=True)
        totals = [s.total if s.task.chunks is None else None for s in states]
        known = [t for t in totals if t is not None]
        if len(known) == len(totals) and sum(known) < self.decoder_min_items:
            return
        await decoder.start()

    async def _run_entry(self, state: _EntryState, out: asyncio.Queue[Output | None]) -> None:
        entry = state.task.entry
        error: str | None = None
        try:
            self.sink.emit(EntryPlanned(entry.key, len(state.chunks), state.total))
            state.announced = True
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
        self, state: _EntryState, queue: asyncio.Queue[Chunk], out: asyncio.Queue[Output | None]
    ) -> None:
        while True:
            chunk = await queue.get()
            state.busy += 1
            try:
                if not state.stop:
                    await self._run_chunk(state, chunk, out)
            finally:
                state.busy -= 1
                queue.task_done()

    def _dedup(self, state: _EntryState, features: list[Any]) -> list[int]:
        """Positions of the features not seen before (marking them seen)."""
        new: list[int] = []
        default = state.task.entry.collection_id or ""
        seen = state.seen
        for i, item in enumerate(features):
            if not isinstance(item, dict):
                continue
            item_id = item.get("id")
            if item_id is None:
                new.append(i)
                continue
            key = (item.get("collection") or default, str(item_id))
            if key not in seen:
                seen.add(key)
                new.append(i)
        return new

    async def _get_page(
        self, state: _EntryState, req: SearchRequest, on_retry: Any
    ) -> tuple[dict[str, Any], list[Any], pa.Table | None]:
        """One page: (the page, its features, their Arrow table when decoded to Arrow)."""
        table = None
        if self.decoder is not None:
            decode = functools.partial(
                self.decoder.decode, collection=state.task.entry.collection_id
            )
            decoded = await self.http.fetch(req, decode, on_retry=on_retry)
            page, features, table = decoded.head, decoded.stubs, decoded.table
        else:
            page = await self.http.get_json(req, on_retry=on_retry)
            features = page.get("features")
        if not isinstance(features, list):
            raise FetchError(
                "the response has no 'features' list: not an item search page",
                request=describe(req),
                error_type="InvalidPage",
            )
        return page, features, table

    def _split_pieces(self, state: _EntryState, remaining: int | None) -> int:
        assert state.queue is not None
        idle = self.workers - state.busy
        if remaining is not None and remaining > state.target:
            return min(MAX_SPLIT_PIECES, -(-remaining // max(1, state.target)))
        if state.queue.qsize() == 0 and idle > 0:
            return min(MAX_SPLIT_PIECES, max(2, idle + 1))
        return 0

    async def _run_chunk(
        self, state: _EntryState, chunk: Chunk, out: asyncio.Queue[Output | None]
    ) -> None:
        assert state.api is not None
        assert state.queue is not None
        entry = state.task.entry
        key = entry.key
        cid = chunk.chunk_id
        started = time.time()
        req: SearchRequest | None = build_search_request(state.api, chunk, self.limit)
        seen_requests: set[str] = set()
        returned = delivered = empty_pages = 0
        matched: int | None = None

        def on_retry(attempt: int, status: int | None, error: str, delay: float) -> None:
            self.sink.emit(Retrying(key, cid, attempt, status, error, delay))

        def fail(req: SearchRequest, exc: FetchError | None, error_type: str, msg: str) -> None:
            request = exc.request if exc and exc.request else describe(req)
            record = FailureRecord(
                entry_key=key,
                catalog_url=entry.catalog_url,
                collection_id=entry.collection_id,
                chunk_id=cid,
                interval=chunk.interval.to_param(),
                filters=chunk.filters,
                method=request.get("method", req.method),
                url=request.get("url", ""),
                body=request.get("body"),
                status_code=exc.status_code if exc else None,
                error_type=error_type,
                message=msg,
                attempts=exc.attempts if exc else 1,
                first_time=started,
                last_time=time.time(),
                items_delivered=delivered,
                chunk=chunk,
            )
            state.failed += 1
            self.failures.add(record)
            self.sink.emit(ChunkFailed(key, record))

        while req is not None and not state.stop:
            seen_requests.add(req.fingerprint())
            try:
                page, features, table = await self._get_page(state, req, on_retry)
            except FetchError as exc:
                fail(req, exc, exc.error_type, str(exc))
                await out.put(ChunkEnd(entry, chunk, ok=False))
                return
            except InvalidPageContent as exc:  # items that do not convert to Arrow
                fail(req, None, "InvalidItems", exc.message)
                await out.put(ChunkEnd(entry, chunk, ok=False))
                return
            if self.modifier is not None:
                modified = self.modifier(page)
                if isinstance(modified, dict):
                    page = modified
                    features = page.get("features") or []
            if matched is None:
                matched = page_matched(page)
            returned += len(features)
            positions = self._dedup(state, features)
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
                break
            nxt = next_request(page, req)
            if nxt is not None:
                empty_pages = empty_pages + 1 if not features else 0
                if empty_pages >= MAX_EMPTY_PAGES:
                    fail(nxt, None, "PagingStalled", f"{empty_pages} empty pages in a row")
                    await out.put(ChunkEnd(entry, chunk, ok=False))
                    return
                remaining = None if matched is None else max(0, matched - returned)
                pieces = self._split_pieces(state, remaining)
                rest = split_remainder(chunk.interval, features, pieces) if pieces else None
                if rest:
                    children = self._enqueue(state, chunk, rest)
                    await out.put(ChunkEnd(entry, chunk, ok=True, children=children))
                    return
                if nxt.fingerprint() in seen_requests:
                    fail(nxt, None, "PagingLoop", "the server repeated a next link; stopped")
                    await out.put(ChunkEnd(entry, chunk, ok=False))
                    return
                req = nxt
                # hold no page while waiting for the next one: 16 workers each keeping their
                # last 1000-item page alive meant ~2.4 M live objects for the collector to walk
                del page, features, new, positions, table
                continue
            # No next link. A full page may be a truncated result window, not the end.
            more = matched is not None and returned < matched
            maybe_truncated = more or (matched is None and len(features) >= self.limit)
            barren = cid in state.truncation_children and delivered == 0
            if maybe_truncated and not barren:
                pieces = max(2, self._split_pieces(state, None))
                rest = split_remainder(chunk.interval, features, pieces)
                if rest:
                    children = self._enqueue(state, chunk, rest, truncation=True)
                    await out.put(ChunkEnd(entry, chunk, ok=True, children=children))
                    return
                if more:
                    msg = f"the server stopped at {returned} of {matched} items (no next link)"
                    fail(req, None, "Truncated", msg)
                    await out.put(ChunkEnd(entry, chunk, ok=False))
                    return
            req = None
        self.sink.emit(ChunkDone(key, cid, delivered))
        await out.put(ChunkEnd(entry, chunk, ok=True))

    def _enqueue(
        self, state: _EntryState, chunk: Chunk, rest: list[Interval], truncation: bool = False
    ) -> tuple[Chunk, ...]:
        assert state.queue is not None
        children = tuple(chunk.with_interval(iv) for iv in rest)
        for child in children:
            if truncation:
                state.truncation_children.add(child.chunk_id)
            if self.local_splits:
                state.queue.put_nowait(child)
        self.sink.emit(ChunkSplit(state.task.entry.key, chunk.chunk_id, len(children)))
        self.sink.emit(ChunkDone(state.task.entry.key, chunk.chunk_id, 0))
        return children
