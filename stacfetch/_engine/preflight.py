"""What runs ahead of the engine: discovery, and a probe that fails fast on a search the
server rejects.

- :func:`discover` opens a catalog once per run (pystac-client, in a thread) and caches it in
  the run's ``catalogs`` dict, the same cache the engine reads: no second landing-page read.
- :func:`probe` sends one ``limit=1`` search per entry when the search carries parameters a
  server may refuse (``filter``, ``query``, ``sortby``, ``fields``, a forced ``method``); an
  HTTP 400/422 answer raises one :class:`~stacfetch.SearchRejectedError` with the server's
  message, before any chunk is fetched (instead of one failure record per chunk).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from .._model.errors import ConfigurationError, FetchError, SearchRejectedError
from .._model.filters import IngestFilters
from .._model.types import Chunk, Interval
from .discovery import open_catalog
from .http import HttpSession, describe
from .records import EntryTask
from .search import ApiInfo, build_search_request

__all__ = ["PROBED_FILTERS", "discover", "needs_probe", "probe", "server_message"]

PROBED_FILTERS = ("filter", "query", "sortby", "fields", "method")
"""Search parameters that make a run probe the server first (servers reject bad ones)."""
REJECTED = frozenset({400, 422})


async def discover(
    catalogs: dict[str, tuple[ApiInfo, Any]],
    url: str,
    http: HttpSession,
) -> ApiInfo:
    """The catalog's :class:`ApiInfo`, read once per run (cached in ``catalogs``), with the
    session's headers, request modifier and retry policy."""
    if url not in catalogs:
        catalogs[url] = await asyncio.to_thread(
            open_catalog,
            url,
            headers=http.headers,
            request_modifier=http.request_modifier,
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
