"""What runs around the engine for pystac-client parity: discovery ahead of it, a probe that
fails fast on a search the server rejects, and catalog-wide ``ids`` searches.

- :func:`discover` opens a catalog once per run (pystac-client, in a thread) and caches it in
  the run's ``catalogs`` dict, the same cache the engine reads: no second landing-page read.
- :func:`probe` sends one ``limit=1`` search per entry when the search carries parameters a
  server may refuse (``filter``, ``query``, ``sortby``, ``fields``, a forced ``method``); an
  HTTP 400/422 answer raises one :class:`~stacfetch.SearchRejectedError` with the server's
  message, before any chunk is fetched (instead of one failure record per chunk).
- :func:`catalog_ids_stream` fetches an ``ids`` search without collections (the engine needs
  a collection per entry): one entry without a collection id, ids in groups of ``limit``,
  paged sequentially (an ids search is as big as the list of ids), exactly once by
  (collection, id).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from .._model.errors import ConfigurationError, FetchError, SearchRejectedError
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
from .._model.filters import IngestFilters
from .._model.types import Chunk, Entry, Interval
from .discovery import open_catalog
from .fetch import ChunkEnd, EntryTask, Output, Page, PlanReady
from .http import HttpSession, describe
from .search import ApiInfo, build_search_request, next_request

__all__ = ["PROBED_FILTERS", "catalog_ids_stream", "discover", "probe", "server_message"]

PROBED_FILTERS = ("filter", "query", "sortby", "fields", "method")
"""Search parameters that make a run probe the server first (servers reject bad ones)."""
REJECTED = frozenset({400, 422})


async def discover(
    catalogs: dict[str, tuple[ApiInfo, Any]],
    url: str,
    http: HttpSession,
    headers: Mapping[str, str],
    request_modifier: Callable[[Any], Any] | None,
) -> ApiInfo:
    """The catalog's :class:`ApiInfo`, read once per run (cached in ``catalogs``)."""
    if url not in catalogs:
        catalogs[url] = await asyncio.to_thread(
            open_catalog,
            url,
            headers=headers,
            request_modifier=request_modifier,
            retry=http.retry,
        )
    return catalogs[url][0]


def server_message(exc: FetchError) -> str:
    """The server's own words from a failed request's message (``description``, ``detail``,
    ``message`` of a JSON error body), else the body snippet.

    Example:
        >>> server_message(FetchError('400 Bad Request: {"code": "x", "description": "bad"}'))
        'bad'
    """
    text = str(exc)
    _, _, body = text.partition(": ")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body or text
    if isinstance(data, Mapping):
        for key in ("description", "detail", "message", "error"):
            if data.get(key):
                value = data[key]
                return value if isinstance(value, str) else orjson.dumps(value).decode()
    return body


def _check_method(api: ApiInfo, filters: IngestFilters, url: str) -> None:
    if filters.method == "POST" and api.search_url is None:
        raise ConfigurationError(
            f"method: 'POST' needs an item search endpoint, and {url} has no /search "
            "(only /collections/{id}/items, which is GET); use method='GET' or leave it out"
        )


async def probe(http: HttpSession, api: ApiInfo, task: EntryTask) -> None:
    """Send the entry's search once with ``limit=1``; raise :class:`SearchRejectedError` when
    the server answers 400/422. Other failures are left to the run (retries, failure records).
    """
    entry, filters = task.entry, task.filters
    assert entry.catalog_url is not None
    _check_method(api, filters, entry.catalog_url)
    search = filters.search_filters()
    if "ids" in search:
        search["ids"] = search["ids"][:1]
    chunk = Chunk.make(entry, filters.interval or Interval(None, None), search)
    req = build_search_request(api, chunk, 1)
    try:
        await http.get_json(req)
    except FetchError as exc:
        if exc.status_code not in REJECTED:
            return
        given = [k for k in PROBED_FILTERS if getattr(filters, k) is not None]
        said = server_message(exc)
        raise SearchRejectedError(
            f"{', '.join(given) or 'search'}: {entry.catalog_url} rejected the search "
            f"(HTTP {exc.status_code}): {said}; nothing was fetched. Check these parameters "
            "(a CQL2 filter's property names and operators, sortby/fields names) against "
            "what the server supports",
            status_code=exc.status_code,
            server_message=said,
            request=exc.request or describe(req),
        ) from None


def needs_probe(filters: IngestFilters) -> bool:
    """Whether a search carries a parameter a server may reject (see :data:`PROBED_FILTERS`).

    Example:
        >>> needs_probe(IngestFilters(filter="eo:cloud_cover < 5")), needs_probe(IngestFilters())
        (True, False)
    """
    return any(getattr(filters, k) is not None for k in PROBED_FILTERS)


async def catalog_ids_stream(
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
    """Fetch an ``ids`` search across the whole catalog (an entry without a collection)."""
    entry: Entry = task.entry
    key = entry.key
    seen = task.seen if task.seen is not None else set()
    if task.chunks is not None:
        chunks = list(task.chunks)
    else:
        search = task.filters.search_filters()
        ids = list(search.pop("ids", None) or [])
        interval = task.filters.interval or Interval(None, None)
        chunks = [
            Chunk.make(entry, interval, {**search, "ids": ids[i : i + limit]})
            for i in range(0, len(ids), limit)
        ]
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
                page = await http.get_json(req, on_retry=on_retry)
                if modifier is not None:
                    modified = modifier(page)
                    page = modified if isinstance(modified, dict) else page
                features = page.get("features")
                if not isinstance(features, list):
                    raise FetchError(
                        "the response has no 'features' list: not an item search page",
                        request=describe(req),
                        error_type="InvalidPage",
                    )
                new = []
                for item in features:
                    if not isinstance(item, dict):
                        continue
                    ident = (str(item.get("collection") or ""), str(item.get("id")))
                    if ident not in seen:
                        seen.add(ident)
                        new.append(item)
                if max_items is not None:
                    new = new[: max(0, max_items - items)]
                delivered += len(new)
                items += len(new)
                sink.emit(PageFetched(key, cid, len(new), len(features) - len(new)))
                if new:
                    yield Page(entry, cid, new)
                nxt = next_request(page, req)
                req = None if nxt is None or nxt.fingerprint() in fingerprints else nxt
        except FetchError as exc:
            request = exc.request or describe(req)
            record = FailureRecord(
                entry_key=key,
                catalog_url=entry.catalog_url,
                collection_id=None,
                chunk_id=cid,
                interval=chunk.interval.to_param(),
                filters=chunk.filters,
                method=request.get("method", req.method),
                url=request.get("url", ""),
                body=request.get("body"),
                status_code=exc.status_code,
                error_type=exc.error_type,
                message=str(exc),
                attempts=exc.attempts,
                first_time=started,
                last_time=time.time(),
                items_delivered=delivered,
                chunk=chunk,
            )
            failed += 1
            failures.add(record)
            sink.emit(ChunkFailed(key, record))
            yield ChunkEnd(entry, chunk, ok=False)
            continue
        sink.emit(ChunkDone(key, cid, delivered))
        yield ChunkEnd(entry, chunk, ok=True)
    sink.emit(EntryDone(key, items, failed))
