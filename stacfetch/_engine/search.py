"""Pure search semantics: turn a chunk into a request description, and follow ``next`` links.

No IO here: :class:`SearchRequest` is a plain description that :mod:`stacfetch._engine.http` sends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import orjson

from .._model.types import Chunk

__all__ = [
    "ApiInfo",
    "SearchRequest",
    "build_search_request",
    "convert_filter",
    "next_request",
    "page_matched",
    "request_limit",
]


@dataclasses.dataclass(frozen=True)
class ApiInfo:
    """What discovery learned about a catalog, shared by every chunk of every entry.

    ``search_url`` is None when the catalog has no ``/search``; then ``items_url_template``
    (``.../collections/{collection_id}/items``) is used with GET.
    """

    root_url: str
    search_url: str | None
    search_methods: tuple[str, ...] = ("GET",)
    items_url_template: str | None = None
    collections_url: str | None = None

    def __post_init__(self) -> None:
        if self.collections_url is None:
            object.__setattr__(self, "collections_url", f"{self.root_url}/collections")

    @property
    def use_post(self) -> bool:
        """POST search when the landing page advertises it."""
        return self.search_url is not None and "POST" in self.search_methods


@dataclasses.dataclass(frozen=True)
class SearchRequest:
    """One HTTP request for a page of items: method, URL, query params or JSON body, headers.

    Example:
        >>> r = SearchRequest("POST", "https://x/search", body={"limit": 10})
        >>> r.fingerprint()
        'POST https://x/search? {"limit":10}'
    """

    method: str
    url: str
    params: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None

    def fingerprint(self) -> str:
        """A key identifying the request, to detect a repeated ``next`` link (a paging loop)."""
        body = orjson.dumps(self.body, option=orjson.OPT_SORT_KEYS).decode() if self.body else ""
        params = "&".join(f"{k}={v}" for k, v in sorted((self.params or {}).items()))
        return f"{self.method} {self.url}?{params} {body}"


def _get_params(body: Mapping[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in body.items():
        if key in ("bbox", "collections", "ids"):
            params[key] = ",".join(str(v) for v in value)
        elif key == "fields":
            params[key] = ",".join(
                [*value.get("include", []), *("-" + name for name in value.get("exclude", []))]
            )
        elif key == "filter" and isinstance(value, str):
            params[key] = value
        elif key == "sortby":
            params[key] = ",".join(
                ("-" if s["direction"] == "desc" else "+") + s["field"] for s in value
            )
        elif isinstance(value, (dict, list)):
            params[key] = orjson.dumps(value).decode()
        else:
            params[key] = str(value)
    return params


def convert_filter(body: dict[str, Any], post: bool) -> None:
    """Put a body's CQL2 ``filter`` in the form the method needs, in place: CQL2-JSON in a
    POST body (servers such as pgstac accept nothing else there), CQL2-text in a GET query.

    Example:
        >>> body = {"filter": "eo:cloud_cover < 10", "filter-lang": "cql2-text"}
        >>> convert_filter(body, post=True); body["filter"], body["filter-lang"]
        ({'op': '<', 'args': [{'property': 'eo:cloud_cover'}, 10.0]}, 'cql2-json')
    """
    value = body.get("filter")
    if value is None:
        return
    import cql2

    if post and isinstance(value, str):
        body["filter"] = cql2.parse_text(value).to_json()
        body["filter-lang"] = "cql2-json"
    elif not post and isinstance(value, Mapping):
        body["filter"] = cql2.Expr(dict(value)).to_text()
        body["filter-lang"] = "cql2-text"
    else:
        body["filter-lang"] = "cql2-json" if post else "cql2-text"


def build_search_request(api: ApiInfo, chunk: Chunk, limit: int) -> SearchRequest:
    """The first request of a chunk: POST ``/search`` when supported, else GET.

    A ``method`` key in the chunk's filters forces that HTTP method; the CQL2 ``filter`` is
    converted to what the method needs (:func:`convert_filter`).

    Example:
        >>> from stacfetch._model.types import Entry, Interval
        >>> api = ApiInfo("https://x", "https://x/search", ("GET", "POST"))
        >>> entry = Entry("https://x", "c1")
        >>> chunk = Chunk.make(entry, Interval(None, None), {"bbox": [0, 0, 1, 1]})
        >>> req = build_search_request(api, chunk, 100)
        >>> req.method, dict(req.body)
        ('POST', {'bbox': [0, 0, 1, 1], 'collections': ['c1'], 'limit': 100})
    """
    body: dict[str, Any] = dict(chunk.filters)
    method = body.pop("method", None)
    if chunk.entry.collection_id:
        body["collections"] = [chunk.entry.collection_id]
    param = chunk.interval.to_param()
    if param is not None:
        body["datetime"] = param
    body["limit"] = limit
    post = api.use_post if method is None else method == "POST"
    convert_filter(body, post and api.search_url is not None)
    if post:
        if api.search_url is None:
            raise ValueError("method 'POST': the catalog has no /search endpoint")
        return SearchRequest("POST", api.search_url, body=body)
    if api.search_url is not None:
        return SearchRequest("GET", api.search_url, params=_get_params(body))
    if api.items_url_template is None or not chunk.entry.collection_id:
        raise ValueError("the catalog has neither /search nor /collections/{id}/items")
    url = api.items_url_template.format(collection_id=chunk.entry.collection_id)
    body.pop("collections", None)
    return SearchRequest("GET", url, params=_get_params(body))


def next_request(page: Mapping[str, Any], current: SearchRequest) -> SearchRequest | None:
    """The request a page's ``rel=next`` link asks for, followed exactly (GET or POST, with
    ``body``, ``merge`` and ``headers``); None at the end.

    Example:
        >>> cur = SearchRequest("POST", "https://x/search", body={"limit": 2, "collections": ["c"]})
        >>> page = {"links": [{"rel": "next", "href": "https://x/search", "method": "POST",
        ...                    "body": {"token": "next:c:i2"}, "merge": True}]}
        >>> dict(next_request(page, cur).body)
        {'limit': 2, 'collections': ['c'], 'token': 'next:c:i2'}
    """
    links = page.get("links")
    if not isinstance(links, list):
        return None
    link = next((li for li in links if isinstance(li, Mapping) and li.get("rel") == "next"), None)
    if link is None or not isinstance(link.get("href"), str):
        return None
    href = urljoin(current.url, link["href"])
    method = str(link.get("method") or "GET").upper()
    headers = dict(current.headers or {})
    if isinstance(link.get("headers"), Mapping):
        headers.update({str(k): str(v) for k, v in link["headers"].items()})
    if method == "GET":
        return SearchRequest("GET", href, headers=headers or None)
    body = link.get("body")
    if body is None:
        new_body = dict(current.body or {})
    elif link.get("merge"):
        new_body = {**(current.body or {}), **body}
    else:
        new_body = dict(body)
    return SearchRequest(method, href, body=new_body, headers=headers or None)


def page_matched(page: Mapping[str, Any]) -> int | None:
    """``numberMatched`` (or the legacy ``context.matched``) when the server reports it.

    Example:
        >>> page_matched({"context": {"matched": 12, "returned": 10}})
        12
    """
    value = page.get("numberMatched")
    if value is None and isinstance(page.get("context"), Mapping):
        value = page["context"].get("matched")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def request_limit(req: SearchRequest, default: int) -> int:
    """The ``limit`` a request asks for (a ``next`` link may carry its own), else ``default``.

    Example:
        >>> request_limit(SearchRequest("GET", "https://x/search?limit=50"), 10)
        50
    """
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
