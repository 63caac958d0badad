"""Discovery with pystac-client: one landing-page read per catalog, one collection read per entry.

pystac-client is synchronous; these functions run in a worker thread (``asyncio.to_thread``) so
the event loop keeps going. Everything they learn is cached per run and shared by all chunks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .._model.config import RetryConfig
from .._model.datetimes import parse_instant
from .._model.errors import CollectionNotFoundError, NotAStacApiError, StacApiError, StacfetchError
from .search import ApiInfo

__all__ = ["CollectionInfo", "open_catalog", "read_collection"]


@dataclasses.dataclass(frozen=True)
class CollectionInfo:
    """A collection's id and overall temporal extent (either end may be unknown)."""

    collection_id: str
    extent_start: datetime | None
    extent_end: datetime | None


def open_catalog(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    request_modifier: Callable[[Any], Any] | None = None,
    retry: RetryConfig | None = None,
) -> tuple[ApiInfo, Any]:
    """Read the landing page (and conformance) with pystac-client; say how to search it.

    Returns the :class:`ApiInfo` and the pystac-client ``StacApiIO`` (for collection reads).
    Raises :class:`~stacfetch.NotAStacApiError` when ``url`` does not serve a STAC API.
    """
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO

    retry = retry or RetryConfig()
    io = StacApiIO(
        headers=dict(headers or {}),
        request_modifier=request_modifier,
        timeout=(retry.connect_timeout, retry.timeout),
        max_retries=retry.max_retries,
    )
    try:
        client = Client.open(url, stac_io=io)
    except StacfetchError:
        raise
    except Exception as exc:
        raise NotAStacApiError(
            f"catalog_url {url!r} does not serve a STAC API landing page "
            f"({type(exc).__name__}: {str(exc)[:200]}); check the URL (it should be the API "
            "root, e.g. https://planetarycomputer.microsoft.com/api/stac/v1)"
        ) from None
    if not client.links:
        raise NotAStacApiError(f"catalog_url {url!r}: the landing page has no links")
    search_url: str | None = None
    methods: set[str] = set()
    for link in client.links:
        if link.rel == "search":
            search_url = link.get_absolute_href() or link.href
            methods.add(str(link.extra_fields.get("method", "GET")).upper())
    root = url.rstrip("/")
    if search_url is None and _conforms(client, "ITEM_SEARCH"):
        search_url, methods = f"{root}/search", {"GET"}
    collections_url = f"{root}/collections"
    data = next((link for link in client.links if link.rel == "data"), None)
    if data is not None:
        collections_url = (data.get_absolute_href() or data.href).rstrip("/")
    items_template = None
    if _conforms(client, "FEATURES") or _conforms(client, "COLLECTIONS"):
        items_template = f"{collections_url}/{{collection_id}}/items"
    if search_url is None and items_template is None:
        raise NotAStacApiError(
            f"catalog_url {url!r} has no item search (no 'search' link, no item-search or "
            "features conformance): it looks like a static catalog, not a STAC API"
        )
    info = ApiInfo(
        root_url=root,
        search_url=search_url,
        search_methods=tuple(sorted(methods)) or ("GET",),
        items_url_template=items_template,
        collections_url=collections_url,
    )
    return info, io


def _conforms(client: Any, name: str) -> bool:
    from pystac_client.conformance import ConformanceClasses

    try:
        return bool(client.conforms_to(getattr(ConformanceClasses, name)))
    except Exception:
        return False


def read_collection(io: Any, info: ApiInfo, collection_id: str) -> CollectionInfo:
    """Read one collection (exactly one request, through pystac-client's ``StacApiIO``).

    Raises :class:`~stacfetch.CollectionNotFoundError` when the catalog does not have it.
    """
    url = f"{info.collections_url}/{collection_id}"
    try:
        collection = io.read_json(url)
    except Exception as exc:
        if getattr(exc, "status_code", None) == 404:
            collection = None
        else:
            raise StacApiError(
                f"reading collection {collection_id!r} from {url} failed: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from None
    if not isinstance(collection, dict) or collection.get("id") != collection_id:
        raise CollectionNotFoundError(
            f"collection_id {collection_id!r} does not exist in {info.root_url}; list the "
            "collections with pystac_client.Client.open(url).get_collections()"
        )
    start = end = None
    try:
        interval = collection["extent"]["temporal"]["interval"][0]
        start, end = (_to_utc(v) for v in interval)
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return CollectionInfo(collection_id, start, end)


def _to_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except StacfetchError:
        return None
