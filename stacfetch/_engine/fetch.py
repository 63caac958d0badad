"""The async engine: fetch each entry's search with parallel workers, exactly once.

For every entry (collection in a catalog):

1. **Discover** once per catalog (landing page) and once per entry (collection extent), with
   pystac-client in a thread; config problems (unknown collection, not a STAC API) raise here,
   before any item is fetched.
2. **Probe**: the entry starts as one chunk, the user's own search, whose first page is small
   (``PROBE_LIMIT`` items). A small search is then already complete; otherwise the page tells
   the total (``numberMatched``, when the server reports it) and shows what the items look like.
3. **Split**: a chunk that turns out large is replaced by children that cover its *whole*
   search, in time or in space (:mod:`stacfetch._engine.split` chooses the axis from the page). No
   order is assumed: the server may return items sorted by anything, and the items already seen
   simply come back from the children and are dropped by the exactly-once set. Children run on
   ``workers`` coroutines per entry (all entries on a host share that host's limiter) and split
   again while they stay large: by the counts when the server gives them, else whenever workers
   would idle. A full page without a ``next`` link may be a truncated result window: it is
   split too, never taken as the end.
4. **Verify**: every split is checked against the server. The items of the page that led to it
   must come back from its children, and the children's counts must add up to at least the
   chunk's. Any disagreement (a datetime or bbox filter that drops items, say) means the
   children may miss items: that search is then paged unsplit instead, with a :class:`Notice`
   and a warning. Items are never lost silently.
5. **Exactly once**: every item passes a (collection, id) set per entry, so boundary items,
   range items, tile edges, re-fetched pages and unstable paging cannot duplicate anything.

Output is a stream of :class:`PlanReady`, :class:`Page` and :class:`ChunkEnd` records, with
bounded memory: workers block on a bounded queue when the consumer is slower than the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._model.errors import FetchError, StacfetchError
from .._model.events import (
    ChunkDone,
    ChunkFailed,
    ChunkSpan,
    ChunkSplit,
    ChunkStarted,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    EventSink,
    FailureRecord,
    Notice,
    PageFetched,
    Retrying,
)
from .._model.failures import FailureCollector
from .._model.filters import IngestFilters
from .._model.types import Chunk, Entry, Interval
from .decoder import DecoderPool, InvalidPageContent
from .discovery import CollectionInfo, open_catalog, read_collection
from .http import HttpSession, describe
from .plan import choose_chunk_target
from .search import ApiInfo, SearchRequest, build_search_request, next_request, page_matched
from .split import Split, outside, plan_split

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ChunkEnd", "EntryTask", "FetchEngine", "Output", "Page", "PlanReady"]

logger = logging.getLogger("stacfetch")

MAX_EMPTY_PAGES = 5
"""Consecutive empty pages that still carry a ``next`` link before a chunk is declared stalled."""
MAX_DEPTH = 12
"""Splits of splits beyond this depth page on instead (each level divides by two or more)."""
MAX_SPLIT_PIECES = 16
"""Children of one split in a Dask task (locally: two per worker)."""
PROBE_LIMIT = 100
"""Page size of an entry's first request: enough items to choose how to split, cheap to
fetch again (the children re-fetch them), and a whole small search in one request."""
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


@dataclasses.dataclass(eq=False)
class _SplitNode:
    """One split, kept until its children are done, to check it against the server."""

    chunk: Chunk
    axis: str
    parent: _SplitNode | None
    pending: int
    sample: set[tuple[str, str]]
    """Items of the page that led to the split, not yet seen again from its children."""
    matched: int | None
    paged: bool
    """The chunk's page had a ``next`` link (so paging it unsplit can reach its end)."""
    size: int = 0
    features: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Up to ``PROBE_LIMIT`` items of that page, to choose how to split a child further."""
    depth: int = 1
    broken: bool = False
    """A child got items outside the filter stacfetch added: the server ignores it."""
    child_matched: int = 0
    child_counts: int = 0
    failed: bool = False

    def within(self, chunk: Chunk) -> list[dict[str, Any]]:
        """The kept items of the page that fall inside ``chunk`` (one of the children)."""
        return [f for f in self.features if not outside(chunk, self.axis, f)]


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
    """Children of chunks whose page was full without a ``next`` link."""
    counting: asyncio.Future[None] | None = None
    """Done once the entry's probe answered (the total is then known, if reported)."""
    probes: set[str] = dataclasses.field(default_factory=set)
    count_probes: set[str] = dataclasses.field(default_factory=set)
    narrowed: set[str] = dataclasses.field(default_factory=set)
    """Children of a chunk split because it failed: they fail for good."""
    """Chunks whose first page asks for one item: their count decides before a full page."""
    nodes: dict[str, _SplitNode | None] = dataclasses.field(default_factory=dict)
    """The split each chunk is a child of (None: a planned chunk)."""
    fallbacks: set[str] = dataclasses.field(default_factory=set)
    unpaged_fallbacks: set[str] = dataclasses.field(default_factory=set)
    """Fallbacks of splits made from a full page without ``next``: paging cannot go beyond."""
    bad_axes: set[str] = dataclasses.field(default_factory=set)
    """Axes whose filter the server was seen not to apply: never split on them again."""
    notes: list[str] = dataclasses.field(default_factory=list)


Output = Page | ChunkEnd | PlanReady


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

    async def plan(self, state: _EntryState, *, wait_total: bool = False) -> None:
        """Plan a discovered entry: one chunk, the user's own search, probed with a small page.

        The probe's page tells the total (when the server reports ``numberMatched``) and what
        the items look like; :meth:`_run_chunk` then splits it. With ``max_items`` the search
        is paged in order and never split (the first N items, as the server sorts them).
        ``ids`` searches become one chunk per ``limit`` ids. ``wait_total`` is accepted for
        callers of the earlier planner and ignored.
        """
        entry, filters = state.task.entry, state.task.filters
        interval = filters.interval or Interval(None, None)
        search = filters.search_filters()
        state.target = choose_chunk_target(self.chunk_size, self.limit, None, self.workers)
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

    def _counted(self, state: _EntryState, matched: int | None) -> None:
        """The probe answered: the total (when reported) sets the chunk target."""
        if state.counting is None or state.counting.done():
            return
        state.counting.set_result(None)
        if matched is None:
            return
        state.total = matched
        state.target = choose_chunk_target(self.chunk_size, self.limit, matched, self.workers)
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
            self.sink.emit(
                EntryPlanned(entry.key, len(state.chunks), state.total, _axis_range(state))
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
        self, state: _EntryState, queue: asyncio.Queue[Chunk], out: asyncio.Queue[Output | None]
    ) -> None:
        while True:
            chunk = await queue.get()
            state.busy += 1
            span = ChunkSpan.of(chunk)
            self.sink.emit(
                ChunkStarted(state.task.entry.key, chunk.chunk_id, span.interval, span.bbox)
            )
            try:
                if not state.stop:
                    await self._run_chunk(state, chunk, out)
            finally:
                state.busy -= 1
                queue.task_done()

    def _dedup(
        self, state: _EntryState, features: list[Any]
    ) -> tuple[list[int], set[tuple[str, str]]]:
        """Positions of the features not seen before (marking them seen), and every key."""
        new: list[int] = []
        keys: set[tuple[str, str]] = set()
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
            keys.add(key)
            if key not in seen:
                seen.add(key)
                new.append(i)
        return new, keys

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

    def _split_pieces(
        self,
        state: _EntryState,
        matched: int | None,
        returned: int,
        *,
        has_next: bool,
        full: bool,
        probe: bool,
    ) -> int:
        """Into how many children to split a chunk after a page (0: keep paging it).

        With counts: when more than a target's worth is left (or a page ended early without a
        ``next`` link), into ``matched / target`` children. Without: a probe that has more
        splits across every worker, a full page without ``next`` splits in two (it may be a
        truncated window), and a full page with ``next`` splits when workers would idle.
        """
        assert state.queue is not None
        most = max(2, 2 * self.workers)
        target = max(1, state.target)
        if matched is not None:
            remaining = matched - returned
            if remaining <= 0 or (probe and matched <= target):
                return 0  # a probe of a light chunk: fetch it with full pages instead
            if probe or remaining > target or not has_next:
                return max(2, min(most, -(-matched // target)))
            return 0
        if not has_next:
            return max(2, self.workers - state.busy + 1) if full else 0
        if probe:
            return most
        idle = self.workers - state.busy
        if full and state.queue.qsize() == 0 and idle > 0:
            return min(most, max(2, idle + 1))
        return 0

    async def _run_chunk(
        self, state: _EntryState, chunk: Chunk, out: asyncio.Queue[Output | None]
    ) -> None:
        assert state.api is not None
        assert state.queue is not None
        entry = state.task.entry
        key = entry.key
        cid = chunk.chunk_id
        node = state.nodes.get(cid)
        started = time.time()
        probe = cid in state.probes or cid in state.count_probes
        limit = self.limit
        if probe:
            limit = 1 if cid in state.count_probes else min(limit, PROBE_LIMIT)
        if self.max_items is not None:
            limit = max(1, min(limit, self.max_items - state.items))
        req: SearchRequest | None = build_search_request(state.api, chunk, limit)
        seen_requests: set[str] = set()
        returned = delivered = empty_pages = 0
        matched: int | None = None
        first = True

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

        async def failed(req: SearchRequest, exc: FetchError | None, kind: str, msg: str) -> None:
            if exc is not None and await self._narrow_failure(state, chunk, node, exc, out):
                if probe:
                    self._counted(state, None)
                return
            fail(req, exc, kind, msg)
            if probe:
                self._counted(state, None)
            await out.put(ChunkEnd(entry, chunk, ok=False))
            await self._complete(state, node, out, failed=True)

        while req is not None and not state.stop:
            seen_requests.add(req.fingerprint())
            try:
                page, features, table = await self._get_page(state, req, on_retry)
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
            returned += len(features)
            positions, keys = self._dedup(state, features)
            self._seen_again(node, keys)
            if node is not None and not node.broken and _any_outside(chunk, node.axis, features):
                node.broken = True
                state.bad_axes.add(node.axis)
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
            full = len(features) >= _request_limit(req, limit)
            if not chunk.sequential and (
                node is None or (node.depth < MAX_DEPTH and not node.broken)
            ):
                pieces = self._split_pieces(
                    state, matched, returned, has_next=nxt is not None, full=full, probe=probe
                )
                split = None
                if pieces:
                    sample = features
                    if node is not None and len(features) < PROBE_LIMIT:  # a count probe
                        sample = [*features, *node.within(chunk)]
                    split = self._plan_split(state, chunk, sample, pieces)
                if split is not None:
                    children = self._enqueue(
                        state, chunk, split, features, keys, matched, node, paged=nxt is not None
                    )
                    await out.put(ChunkEnd(entry, chunk, ok=True, children=children))
                    return
            first = False
            if probe and (nxt is not None or full):  # not split: fetch it with full pages
                probe = False
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
            if matched is not None and returned < matched:
                msg = (
                    f"the server stopped at {returned} of {matched} items without a next link, "
                    "and this search cannot be split further"
                )
                await failed(req, None, "Truncated", msg)
                return
            if full and cid in state.unpaged_fallbacks and chunk.sequential:
                msg = (
                    "the server's filtering disagreed with a split of this search, and it "
                    f"returns one full page ({len(features)} items) without a next link: "
                    "items beyond it cannot be reached"
                )
                await failed(req, None, "Truncated", msg)
                return
            req = None
        self.sink.emit(ChunkDone(key, cid, delivered))
        await out.put(ChunkEnd(entry, chunk, ok=True))
        await self._complete(state, node, out, failed=False)

    async def _narrow_failure(
        self,
        state: _EntryState,
        chunk: Chunk,
        node: _SplitNode | None,
        exc: FetchError,
        out: asyncio.Queue[Output | None],
    ) -> bool:
        """A planned chunk failed for good on a server error: split it in time once, so that
        a failing window of the server fails only the children that cover it (the rest of the
        search is still fetched). Errors that say the request itself is wrong (4xx other than
        429) are not narrowed: every child would fail the same way."""
        status = exc.status_code
        if (
            node is not None
            or chunk.parent_id is not None  # only planned chunks (also across Dask tasks)
            or chunk.chunk_id in state.narrowed
            or chunk.sequential
            or chunk.attempt
            or self.max_items is not None
        ):
            return False
        if status is not None and 400 <= status < 500 and status != 429:
            return False
        split = self._plan_split(state, chunk, [], max(2, 2 * self.workers))
        if split is None or split.axis != "time":
            return False
        children = self._enqueue(state, chunk, split, [], set(), None, None, paged=True)
        for child in children:
            state.narrowed.add(child.chunk_id)
        await out.put(ChunkEnd(state.task.entry, chunk, ok=True, children=children))
        return True

    def _plan_split(
        self, state: _EntryState, chunk: Chunk, features: list[Any], pieces: int
    ) -> Split | None:
        extent: tuple[datetime | None, datetime | None] = (None, None)
        if state.info is not None:
            extent = (state.info.extent_start, state.info.extent_end)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        sample = [f for f in features if isinstance(f, dict)]
        axes = [a for a in ("time", "space") if a not in state.bad_axes]
        return plan_split(chunk, sample, pieces, extent=extent, now=now, axes=axes)

    def _enqueue(
        self,
        state: _EntryState,
        chunk: Chunk,
        split: Split,
        features: list[Any],
        sample: set[tuple[str, str]],
        matched: int | None,
        node: _SplitNode | None,
        *,
        paged: bool,
    ) -> tuple[Chunk, ...]:
        assert state.queue is not None
        children = tuple(split.children)
        if self.local_splits:
            child_node = _SplitNode(
                chunk, split.axis, node, len(children), set(sample), matched, paged, len(children)
            )
            child_node.depth = node.depth + 1 if node is not None else 1
            child_node.features = [f for f in features if isinstance(f, dict)][:PROBE_LIMIT]
            # Children of a split that already showed an uneven spread (in space, or below
            # the first level) may be heavy: learn their size first from a one-item page, so
            # that a heavy one is split before a full page of it is fetched (and fetched again).
            probe_first = matched is not None and (split.axis == "space" or node is not None)
            for child in children:
                state.nodes[child.chunk_id] = child_node
                if probe_first:
                    state.count_probes.add(child.chunk_id)
        for child in children:
            if not paged:
                state.truncation_children.add(child.chunk_id)
            if self.local_splits:
                state.queue.put_nowait(child)
        key = state.task.entry.key
        spans = tuple(ChunkSpan.of(c) for c in children)
        self.sink.emit(ChunkSplit(key, chunk.chunk_id, len(children), split.axis, spans))
        self.sink.emit(ChunkDone(key, chunk.chunk_id, 0))
        return children

    @staticmethod
    def _seen_again(node: _SplitNode | None, keys: set[tuple[str, str]]) -> None:
        while node is not None:
            if node.sample:
                node.sample.difference_update(keys)
            node = node.parent

    async def _complete(
        self,
        state: _EntryState,
        node: _SplitNode | None,
        out: asyncio.Queue[Output | None],
        *,
        failed: bool,
    ) -> None:
        """A chunk (or a split's last child) is done: check every split it completes."""
        assert state.queue is not None
        while node is not None:
            node.failed = node.failed or failed
            node.pending -= 1
            if node.pending > 0:
                return
            problem = None
            if node.broken:
                problem = "the server returned items outside the filters of its children"
            elif not node.failed and node.sample:
                problem = (
                    f"{len(node.sample)} item(s) of the page that led to the split did not "
                    "come back from its children"
                )
            elif (
                not node.failed
                and node.matched is not None
                and node.child_counts == node.size
                and node.child_matched < node.matched
            ):
                problem = f"its children count {node.child_matched} items, it {node.matched}"
            if problem is not None:
                state.bad_axes.add(node.axis)
                left = [a for a in ("time", "space") if a not in state.bad_axes]
                fallback = node.chunk.again(sequential=not left)
                state.nodes[fallback.chunk_id] = node.parent
                state.fallbacks.add(fallback.chunk_id)
                if not node.paged:
                    state.unpaged_fallbacks.add(fallback.chunk_id)
                where = node.chunk.interval.to_param() or "the whole search"
                tile = node.chunk.filters.get("bbox")
                if node.axis == "space" and tile is not None:
                    where += f" in bbox {tile}"
                instead = f"splitting it in {left[0]} instead" if left else "paging it unsplit"
                message = (
                    f"{state.task.entry.label}: the server's {node.axis} filtering disagrees "
                    f"with a split of {where} ({problem}); {instead}"
                )
                state.notes.append(message)
                logger.warning("%s", message)
                self.sink.emit(Notice(state.task.entry.key, message))
                await out.put(ChunkEnd(state.task.entry, node.chunk, ok=True, children=(fallback,)))
                state.queue.put_nowait(fallback)
                return
            failed = node.failed
            node = node.parent


def _axis_range(state: _EntryState) -> str | None:
    """The time range an entry's timeline spans: the search's, else the collection's extent."""
    ends = [c.interval for c in state.chunks]
    start = min((iv.start for iv in ends if iv.start), default=None)
    end = max((iv.end for iv in ends if iv.end), default=None)
    if state.info is not None:
        start = start or state.info.extent_start
        end = end or state.info.extent_end
    if (start is None and end is None) or (start and end and start > end):
        return None
    return Interval(start, end).to_param()


def _any_outside(chunk: Chunk, axis: str, features: list[Any]) -> bool:
    return any(isinstance(f, dict) and outside(chunk, axis, f) for f in features)


def _request_limit(req: SearchRequest, default: int) -> int:
    """The ``limit`` a request asks for (a ``next`` link may carry its own)."""
    value: Any = None
    if req.body is not None:
        value = req.body.get("limit")
    elif req.params is not None:
        value = req.params.get("limit")
    if value is None and "limit=" in req.url:
        from urllib.parse import parse_qs, urlsplit

        found = parse_qs(urlsplit(req.url).query).get("limit")
        value = found[0] if found else None
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default
