"""The JSON documents of the in-memory STAC server, other than search pages.

The landing page, ``/conformance``, ``/collections`` and ``/collections/{id}`` (a collection
given, or made from its items by :func:`collection_from_items`), links and error bodies.
"""

from __future__ import annotations

from typing import Any

import orjson

from .records import EPOCH, US, Record
from .search import BadRequest

__all__ = [
    "CONFORMS",
    "ERROR_CODES",
    "GEOJSON",
    "JSON",
    "LANDING_LINKS",
    "collection_doc",
    "collection_from_items",
    "document",
    "error_body",
    "link",
]

_API = "https://api.stacspec.org/v1.0.0"
_OGC = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
CONFORMS = [f"{_API}/{c}" for c in ("core", "item-search", "item-search#sort", "collections")]
CONFORMS += [f"{_API}/ogcapi-features", f"{_OGC}/core", f"{_OGC}/geojson"]
GEOJSON, JSON = "application/geo+json", "application/json"
ERROR_CODES = {400: "BadRequest", 404: "NotFoundError", 405: "MethodNotAllowed", 429: "TooMany"}
LANDING_LINKS = (
    ("root", ""),
    ("self", ""),
    ("conformance", "/conformance"),
    ("data", "/collections"),
)


def link(rel: str, href: str, kind: str = JSON, **extra: Any) -> dict[str, Any]:
    """A link object.

    Example:
        >>> link("next", "http://h/search", GEOJSON, method="POST")
        {'rel': 'next', 'href': 'http://h/search', 'type': 'application/geo+json', 'method': 'POST'}
    """
    return {"rel": rel, "href": href, "type": kind, **extra}


def error_body(status: int, message: str) -> bytes:
    """The JSON body of an error answer.

    Example:
        >>> error_body(404, "Item x does not exist.")
        b'{"code":"NotFoundError","description":"Item x does not exist."}'
    """
    return orjson.dumps({"code": ERROR_CODES.get(status, "ServerError"), "description": message})


def document(segs: list[str], base: str, collections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The document at the path ``segs`` (landing page, conformance, collections) under ``base``.

    Raises :class:`~stacfetch._testing.search.BadRequest` (404) for any other path.

    Example:
        >>> document(["conformance"], "http://h", {})["conformsTo"][0]
        'https://api.stacspec.org/v1.0.0/core'
        >>> [ln["rel"] for ln in document([], "http://h", {"c": {}})["links"]]
        ['root', 'self', 'conformance', 'data', 'search', 'search', 'child']
    """
    if not segs:
        links = [link(rel, base + path) for rel, path in LANDING_LINKS]
        links += [link("search", f"{base}/search", GEOJSON, method=m) for m in ("GET", "POST")]
        links += [link("child", f"{base}/collections/{cid}") for cid in collections]
        return {
            "type": "Catalog",
            "stac_version": "1.0.0",
            "id": "stacfetch",
            "conformsTo": CONFORMS,
            "title": "stacfetch in-memory STAC API",
            "description": "stacfetch._testing.server",
            "links": links,
        }
    if segs == ["conformance"]:
        return {"conformsTo": CONFORMS}
    if segs == ["collections"]:
        docs = [collection_doc(collections, cid, base) for cid in collections]
        return {"collections": docs, "links": [link("self", f"{base}/collections")]}
    if len(segs) == 2 and segs[0] == "collections":
        return collection_doc(collections, segs[1], base)
    raise BadRequest(404, f"{'/'.join(segs)} does not exist")


def collection_doc(collections: dict[str, dict[str, Any]], cid: str, base: str) -> dict[str, Any]:
    """The collection ``cid`` with its own self, root, parent and items links under ``base``.

    Example:
        >>> doc = collection_doc({"c": {"id": "c", "links": []}}, "c", "http://h")
        >>> [(ln["rel"], ln["href"]) for ln in doc["links"]][-1]
        ('items', 'http://h/collections/c/items')
    """
    doc, url = collections[cid], f"{base}/collections/{cid}"
    links = [
        ln
        for ln in doc.get("links", [])
        if ln.get("rel") not in ("self", "root", "parent", "items")
    ]
    links += [link("self", url), link("root", base), link("parent", base)]
    return {**doc, "links": [*links, link("items", f"{url}/items", GEOJSON)]}


def collection_from_items(cid: str, recs: list[Record]) -> dict[str, Any]:
    """A collection document made from its items: temporal and spatial extent.

    Example:
        >>> rec = Record({"id": "x", "collection": "c", "bbox": [0, 0, 1, 1],
        ...               "properties": {"datetime": "2024-01-01T00:00:00Z"}})
        >>> doc = collection_from_items("c", [rec])
        >>> doc["extent"]["spatial"], doc["extent"]["temporal"]["interval"][0][0]
        ({'bbox': [[0.0, 0.0, 1.0, 1.0]]}, '2024-01-01T00:00:00.000000Z')
    """
    when = [
        (EPOCH + v * US).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for v in (min(r.key[0] for r in recs), max(r.end for r in recs))
    ]
    boxes = [r.bbox for r in recs if r.bbox] or [(-180.0, -90.0, 180.0, 90.0)]
    box = [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
    extent = {"spatial": {"bbox": [box]}, "temporal": {"interval": [when]}}
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": cid,
        "description": f"{len(recs)} items",
        "license": "other",
        "extent": extent,
        "links": [],
    }
