"""One chunk's pages: ask, read, hand on every new item once, split or page on to the end.

A chunk's first page may be small (the entry's probe, a count probe, the first wave child's
sample) and then the chunk is asked again with full pages. After each page the splitter says
whether the chunk is replaced by children covering its whole search; otherwise its ``next``
link is followed exactly, and the last page is checked for signs of truncation.

A page's head (links, counts) is read as soon as its body arrives, while a decoder process
converts its features; when the counts already say the chunk pages on (no split is due), the
next page is asked for at once, so that the chunk's requests do not wait for the decoders.
That page is used only if this page's items then confirm it (no split, no stop); otherwise it
is dropped unread, and none of its items is handed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from .._formats.tables import select_rows
from .._model.errors import FetchError
from .._model.events import ChunkDone, ChunkFailed, EventSink, PageFetched, Retrying
from .._model.failures import FailureCollector
from .._model.types import Chunk
from .decoder import InvalidPageContent
from .decoder_pool import DecoderPool
from .http import HttpSession
from .pages import Fetched, chunk_failure, fetch_page, in_time
from .records import PROBE_LIMIT, ChunkEnd, EntryState, Output, Page, SplitNode, new_items
from .search import SearchRequest, build_search_request, next_request, page_matched, request_limit
from .splitting import Splitter

__all__ = ["MAX_EMPTY_PAGES", "ChunkEngine", "run_chunk", "truncation"]

MAX_EMPTY_PAGES = 5
"""Consecutive empty pages that still carry a ``next`` link before a chunk is declared stalled."""

Out = asyncio.Queue[Output | None]


class ChunkEngine(Protocol):
    """What a chunk needs of the engine running it (:class:`~.fetch.FetchEngine`)."""

    http: HttpSession
    decoder: DecoderPool | None
    sink: EventSink
    failures: FailureCollector
    splitter: Splitter
    limit: int
    max_items: int | None
    modifier: Callable[[Any], Any] | None

    def counted(self, state: EntryState, matched: int | None) -> None:
        """The entry's probe answered (``matched``: its total, when reported)."""

    async def complete(
        self, state: EntryState, node: SplitNode | None, out: Out, *, failed: bool
    ) -> None:
        """A chunk is done: check the splits it completes."""


async def run_chunk(engine: ChunkEngine, state: EntryState, chunk: Chunk, out: Out) -> None:
    """Fetch ``chunk`` to its end (or split it); outputs go to ``out``.

    Example::

        await run_chunk(engine, state, chunk, out)   # one worker, one chunk
    """
    assert state.api is not None
    assert state.queue is not None
    splitter = engine.splitter
    entry = state.task.entry
    key = entry.key
    cid = chunk.chunk_id
    node = state.nodes.get(cid)
    started = time.time()
    probe = cid in state.probes or cid in state.count_probes
    wave = state.ramp.sampling(cid)  # its first page gives the verdict on splits
    sampling = wave and not probe  # so that page is small: the other children wait less
    limit = engine.limit
    if probe or sampling:
        limit = 1 if cid in state.count_probes else min(limit, PROBE_LIMIT)
    if engine.max_items is not None:
        limit = max(1, min(limit, engine.max_items - state.items))
    req: SearchRequest | None = build_search_request(state.api, chunk, limit)
    seen_requests: set[str] = set()
    returned = delivered = empty_pages = 0
    matched: int | None = None
    first, retried = True, False
    inseparable = False  # a split was due, but no axis separates the chunk's items
    ahead: asyncio.Future[Fetched] | None = None  # the next page, asked for before this one

    def on_retry(attempt: int, status: int | None, error: str, delay: float) -> None:
        nonlocal retried
        retried = True
        engine.sink.emit(Retrying(key, cid, attempt, status, error, delay))

    def fetch(req: SearchRequest) -> asyncio.Future[Fetched]:
        return asyncio.ensure_future(
            fetch_page(engine.http, engine.decoder, req, entry.collection_id, on_retry)
        )

    async def failed(req: SearchRequest, exc: FetchError | None, kind: str, msg: str) -> None:
        if probe:
            engine.counted(state, None)
        if exc is not None:
            status = exc.status_code
            narrowed = splitter.narrow(state, chunk, node, status, max_items=engine.max_items)
            if narrowed is not None:
                await out.put(ChunkEnd(entry, chunk, ok=True, children=narrowed))
                return
        record = chunk_failure(chunk, req, exc, kind, msg, first_time=started, delivered=delivered)
        state.failed += 1
        engine.failures.add(record)
        engine.sink.emit(ChunkFailed(key, record))
        await out.put(ChunkEnd(entry, chunk, ok=False))
        await engine.complete(state, node, out, failed=True)

    try:
        while req is not None and not state.stop:
            seen_requests.add(req.fingerprint())
            asked = time.monotonic()
            try:
                fetching, ahead = (ahead, None) if ahead is not None else (fetch(req), None)
                if wave and first:  # other requests to the server in flight: a load
                    state.ramp.shared = engine.http.limiter(req.url).in_flight > 0
                deadline = state.ramp.deadline(limit) if wave and first else None
                if deadline and not await in_time(fetching, deadline, lambda: retried):
                    wave = False  # overdue: the verdict needs no page
                    if not (collapsed := splitter.overdue(state, node, cid)):
                        continue  # no verdict to give (the gate opened meanwhile): ask again
                    await out.put(ChunkEnd(entry, collapsed[0], ok=True, children=collapsed[1:]))
                    break
                page = await fetching
            except FetchError as exc:
                await failed(req, exc, exc.error_type, str(exc))
                return
            except InvalidPageContent as exc:  # items that do not convert to Arrow
                await failed(req, None, _invalid(exc), exc.message)
                return
            head, count = page.head, page.count
            if engine.modifier is not None:  # (no decoder then: the page is whole)
                modified = engine.modifier(head)
                if isinstance(modified, dict):
                    head = modified
                    page = Fetched(head, len(head.get("features") or []), head.get("features"))
                    count = page.count
            if first:
                matched = page_matched(head)
                if probe:
                    engine.counted(state, matched)
                if node is not None and cid not in state.fallbacks:
                    node.child_counts += matched is not None
                    node.child_matched += matched or 0
                waited = None if retried else time.monotonic() - asked  # retries: no evidence
                if collapsed := splitter.timed(state, node, cid, waited, count):
                    await out.put(ChunkEnd(entry, collapsed[0], ok=True, children=collapsed[1:]))
            returned += count
            nxt = next_request(head, req)
            full = count >= request_limit(req, limit)
            empty = empty_pages + 1 if not count else 0
            if (
                page.decoding
                and nxt is not None
                and not (probe or sampling or state.stop or engine.max_items is not None)
                and not state.ramp.superseded(cid)
                and empty < MAX_EMPTY_PAGES
                and nxt.fingerprint() not in seen_requests
                and splitter.pages_on(state, chunk, node, matched=matched, returned=returned)
            ):
                ahead = fetch(nxt)  # the counts say the chunk pages on: no need to wait
            try:
                features, table = await page.decoded()
            except InvalidPageContent as exc:  # (not JSON: its head was, but orjson says no)
                await failed(req, None, _invalid(exc), exc.message)
                return
            positions, keys = new_items(state.seen, features, entry.collection_id)
            splitter.seen_again(node, keys)
            splitter.check_page(node, chunk, features, state)
            if engine.max_items is not None:
                positions = positions[: max(0, engine.max_items - state.items)]
            new = [features[i] for i in positions]
            if table is not None and len(positions) < table.num_rows:
                table = select_rows(table, positions)
            delivered += len(new)
            state.items += len(new)
            engine.sink.emit(PageFetched(key, cid, len(new), count - len(new), matched))
            if new:
                await out.put(Page(entry, cid, new, table))
            if engine.max_items is not None and state.items >= engine.max_items:
                state.stop = True
            if state.stop or state.ramp.superseded(cid):  # superseded: by an unsplit fallback
                break
            if not (sampling and matched is None):  # a sample without counts: page on
                split, unsplit = splitter.after_page(
                    state, chunk, node, features, matched=matched, returned=returned,
                    has_next=nxt is not None, full=full, probe=probe or sampling,
                )  # fmt: skip
                if unsplit:
                    inseparable = delivered > 0
                if split is not None:
                    children = splitter.enqueue(
                        state, chunk, split, features, keys, matched, node, paged=nxt is not None
                    )
                    await out.put(ChunkEnd(entry, chunk, ok=True, children=children))
                    return
            first = False
            if (probe or sampling) and (nxt is not None or full):  # fetch it with full pages
                probe = sampling = False
                req = build_search_request(state.api, chunk, engine.limit)
                limit = engine.limit
                seen_requests.clear()
                del page, head, features, new, positions, table
                continue
            if nxt is not None:
                empty_pages = empty
                if empty_pages >= MAX_EMPTY_PAGES:
                    await failed(nxt, None, "PagingStalled", f"{empty_pages} empty pages in a row")
                    return
                if nxt.fingerprint() in seen_requests:
                    await failed(nxt, None, "PagingLoop", "the server repeated a next link")
                    return
                req = nxt
                # hold no page while waiting for the next one: 16 workers each keeping their
                # last 1000-item page alive meant ~2.4 M live objects for the collector to walk
                del page, head, features, new, positions, table
                continue
            # No next link, and no split: the end, unless the evidence says items are missing.
            size = count if full else 0
            msg = truncation(state, chunk, matched, returned, size, inseparable=inseparable)
            if msg is not None:
                await failed(req, None, "Truncated", msg)
                return
            req = None
    finally:
        if ahead is not None:  # asked for, but not to be used: drop it unread
            await _drop(ahead)
    engine.sink.emit(ChunkDone(key, cid, delivered))
    await out.put(ChunkEnd(entry, chunk, ok=True))
    await engine.complete(state, node, out, failed=False)


def _invalid(exc: InvalidPageContent) -> str:
    return "InvalidJSON" if exc.kind == "json" else "InvalidItems"


async def _drop(ahead: asyncio.Future[Fetched]) -> None:
    ahead.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        page = await ahead
        await page.drop()


def truncation(
    state: EntryState,
    chunk: Chunk,
    matched: int | None,
    returned: int,
    full_page: int,
    *,
    inseparable: bool,
) -> str | None:
    """Why a chunk whose last page had no ``next`` link (and was not split) may be missing
    items, or None when that page is its end. ``full_page``: the page's size when it was full;
    ``inseparable``: a split was due, no axis separates the chunk's items, and the chunk
    brought items no other chunk had (a chunk inside a larger range item's span, whose full
    page holds only items already kept, is taken as complete).

    Missing items are never taken for the end: the server counted more than it returned, or
    a full page without ``next`` came back from a search no axis could split. (Past
    :data:`MAX_DEPTH` splits, a full last page is taken as the end: servers that send ``next``
    only when more items follow end a search of exactly ``limit`` items that way. A plain
    client paging the user's own search, ``sequential``, stops there too.)
    """
    if matched is not None and returned < matched:
        return (
            f"the server stopped at {returned} of {matched} items without a next link, "
            "and this search cannot be split further"
        )
    if not full_page or matched is not None:
        return None
    if chunk.sequential:
        if chunk.chunk_id not in state.unpaged_fallbacks:
            return None
        return (
            "the server's filtering disagreed with a split of this search, and it "
            f"returns one full page ({full_page} items) without a next link: "
            "items beyond it cannot be reached"
        )
    if not inseparable:
        return None
    ids = chunk.filters.get("ids")
    if isinstance(ids, (list, tuple)) and returned >= len(ids):
        return None
    return (
        f"the server returned a full page ({full_page} items) without a next link or a "
        "count, and this search cannot be split further: items beyond it may be missing"
    )
