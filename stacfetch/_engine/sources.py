"""Sources of pages besides the split search of :mod:`.fetch`, with the same outputs and events:
an ``ids`` search across a whole catalog, and file mode (items read from files).

A run's consumer reads them like the engine's stream (:class:`~.records.PlanReady`, then
:class:`~.records.Page` s and :class:`~.records.ChunkEnd` s); each passes its items through
the entry's exactly-once set, as the engine does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._formats.sources import aiter_source_pages
from .._model.errors import FetchError
from .._model.events import (
    ChunkDone,
    ChunkFailed,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    EventSink,
    FailureRecord,
    PageFetched,
    Retrying,
)
from .._model.failures import FailureCollector
from .._model.types import Chunk, Interval
from .http import HttpSession, describe
from .pages import fetch_page
from .records import ChunkEnd, EntryTask, Output, Page, PlanReady, new_items
from .search import ApiInfo, build_search_request, next_request

__all__ = ["catalog_ids_source", "file_source"]


def _ids_chunks(task: EntryTask, limit: int) -> list[Chunk]:
    if task.chunks is not None:
        return list(task.chunks)
    search = task.filters.search_filters()
    ids = list(search.pop("ids", None) or [])
    interval = task.filters.interval or Interval(None, None)
    return [
        Chunk.make(task.entry, interval, {**search, "ids": ids[i : i + limit]})
        for i in range(0, len(ids), limit)
    ]


async def catalog_ids_source(
    task: EntryTask,
    api: ApiInfo,
    http: HttpSession,
    *,
    sink: EventSink,
    failures: FailureCollector,
    limit: int,
    max_items: int | None = None,
    modifier: Callable[[Any], Any] | None = None,
) -> AsyncIterator[Output]:
    """Fetch an ``ids`` search without collections (the engine needs a collection per entry):
    ids in groups of ``limit``, each paged in order (an ids search is as big as its list of
    ids), exactly once by (collection, id).

    Example::

        async for out in catalog_ids_source(task, api, http, sink=sink, failures=f, limit=100):
            ...
    """
    entry = task.entry
    key = entry.key
    seen = task.seen if task.seen is not None else set()
    chunks = _ids_chunks(task, limit)
    sink.emit(EntryStarted(key, entry.label))
    sink.emit(EntryPlanned(key, len(chunks), None))
    yield PlanReady(entry, tuple(chunks))
    items = failed = 0
    for chunk in chunks:
        cid = chunk.chunk_id
        started = time.time()
        delivered = 0
        req: Any = build_search_request(api, chunk, limit)
        fingerprints: set[str] = set()

        def on_retry(
            attempt: int, status: int | None, error: str, delay: float, cid: str = cid
        ) -> None:
            sink.emit(Retrying(key, cid, attempt, status, error, delay))

        try:
            while req is not None and (max_items is None or items < max_items):
                fingerprints.add(req.fingerprint())
                fetched = await fetch_page(http, None, req, None, on_retry)
                page, (features, _) = fetched.head, await fetched.decoded()
                if modifier is not None:
                    modified = modifier(page)
                    if isinstance(modified, dict):
                        page, features = modified, modified.get("features") or []
                positions, _keys = new_items(seen, features, None)
                if max_items is not None:
                    positions = positions[: max(0, max_items - items)]
                new = [features[i] for i in positions]
                delivered += len(new)
                items += len(new)
                sink.emit(PageFetched(key, cid, len(new), len(features) - len(new)))
                if new:
                    yield Page(entry, cid, new)
                nxt = next_request(page, req)
                req = None if nxt is None or nxt.fingerprint() in fingerprints else nxt
        except FetchError as exc:
            record = FailureRecord.of_chunk(
                chunk,
                error_type=exc.error_type,
                message=str(exc),
                first_time=started,
                request={"method": req.method, **(exc.request or describe(req))},
                status_code=exc.status_code,
                attempts=exc.attempts,
                items_delivered=delivered,
            )
            failed += 1
            failures.add(record)
            sink.emit(ChunkFailed(key, record))
            yield ChunkEnd(entry, chunk, ok=False)
            continue
        sink.emit(ChunkDone(key, cid, delivered))
        yield ChunkEnd(entry, chunk, ok=True)
    sink.emit(EntryDone(key, items, failed))


async def file_source(task: EntryTask, sink: EventSink, *, page_size: int) -> AsyncIterator[Output]:
    """File mode: the items of ``task.entry.source_file`` (JSON, NDJSON or GeoParquet files, a
    glob) as one chunk of pages of ``page_size`` items, exactly once by (collection, id).

    Example::

        async for out in file_source(EntryTask(Entry(None, "c1", "items/*.json"), filters),
                                     sink, page_size=1000):
            ...
    """
    entry = task.entry
    assert entry.source_file is not None
    seen = task.seen if task.seen is not None else set()
    chunk = Chunk.make(entry, Interval(None, None))
    sink.emit(EntryStarted(entry.key, entry.label))
    sink.emit(EntryPlanned(entry.key, 1, None))
    yield PlanReady(entry, (chunk,))
    total = 0
    async for page in aiter_source_pages(entry.source_file, page_size=page_size):
        positions, _keys = new_items(seen, page, entry.collection_id)
        new = [page[i] for i in positions]
        total += len(new)
        sink.emit(PageFetched(entry.key, chunk.chunk_id, len(new), len(page) - len(new)))
        if new:
            yield Page(entry, "file", new)
    sink.emit(ChunkDone(entry.key, chunk.chunk_id, total))
    yield ChunkEnd(entry, chunk, ok=True)
    sink.emit(EntryDone(entry.key, total, 0))
