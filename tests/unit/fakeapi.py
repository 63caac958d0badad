"""A small in-memory STAC API for MockTransport unit tests of engine edge cases.

Searches filter by collection and closed datetime interval (range items overlap), sort by
datetime descending then id, and page with a ``token`` in a POST ``next`` link. Knobs make it
misbehave: no counts, a result window cap, repeated next links, empty pages with next links.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson

from stacfetch._model.datetimes import parse_instant

ROOT = "https://fake.example.org"
UTC = timezone.utc


def make_items(collection: str, n: int, start: datetime, step: timedelta) -> list[dict[str, Any]]:
    items = []
    for i in range(n):
        when = start + step * i
        props: dict[str, Any] = {"datetime": when.isoformat().replace("+00:00", "Z")}
        if i % 17 == 0:  # a range item with null datetime spanning 40 steps
            props = {
                "datetime": None,
                "start_datetime": props["datetime"],
                "end_datetime": (when + step * 40).isoformat().replace("+00:00", "Z"),
            }
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": f"{collection}-{i:05d}",
                "collection": collection,
                "geometry": {"type": "Point", "coordinates": [i % 180, 0]},
                "bbox": [i % 180, 0, i % 180, 0],
                "properties": props,
                "assets": {},
                "links": [],
            }
        )
    return items


def _span(item: dict[str, Any]) -> tuple[datetime, datetime]:
    p = item["properties"]
    lo = parse_instant(p.get("datetime") or p["start_datetime"])
    hi = parse_instant(p.get("datetime") or p["end_datetime"])
    return lo, hi


class FakeApi:
    """Callable MockTransport handler; counts requests."""

    def __init__(
        self,
        items: list[dict[str, Any]],
        *,
        counts: bool = True,
        window: int | None = None,
        loop_after: int | None = None,
        empty_pages: bool = False,
        fail: Callable[[dict[str, Any]], int | None] | None = None,
    ) -> None:
        self.items = sorted(items, key=lambda it: (_span(it)[0], it["id"]), reverse=True)
        self.counts = counts
        self.window = window
        self.loop_after = loop_after
        self.empty_pages = empty_pages
        self.fail = fail
        self.requests: list[dict[str, Any]] = []

    def landing(self) -> dict[str, Any]:
        return {
            "type": "Catalog",
            "id": "fake",
            "stac_version": "1.0.0",
            "description": "fake",
            "conformsTo": [
                "https://api.stacspec.org/v1.0.0/core",
                "https://api.stacspec.org/v1.0.0/item-search",
                "https://api.stacspec.org/v1.0.0/collections",
            ],
            "links": [
                {"rel": "self", "href": ROOT},
                {"rel": "root", "href": ROOT},
                {"rel": "search", "href": f"{ROOT}/search", "method": "GET"},
                {"rel": "search", "href": f"{ROOT}/search", "method": "POST"},
                {"rel": "data", "href": f"{ROOT}/collections"},
            ],
        }

    def collection(self, cid: str) -> dict[str, Any]:
        return {
            "type": "Collection",
            "id": cid,
            "stac_version": "1.0.0",
            "description": cid,
            "license": "CC0-1.0",
            "extent": {
                "spatial": {"bbox": [[-180, -90, 180, 90]]},
                "temporal": {"interval": [["2020-01-01T00:00:00Z", "2020-12-31T00:00:00Z"]]},
            },
            "links": [],
        }

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        cols = set(body.get("collections") or [])
        dt = body.get("datetime")
        lo = hi = None
        if dt:
            a, _, b = dt.partition("/") if "/" in dt else (dt, "/", dt)
            lo = None if a in ("", "..") else parse_instant(a)
            hi = None if b in ("", "..") else parse_instant(b)
        ids = set(body.get("ids") or [])
        matched = []
        for it in self.items:
            if cols and it["collection"] not in cols:
                continue
            if ids and it["id"] not in ids:
                continue
            s, e = _span(it)
            if (hi is None or s <= hi) and (lo is None or e >= lo):
                matched.append(it)
        limit = int(body.get("limit", 10))
        offset = int(body.get("token", 0))
        page = matched[offset : offset + limit]
        out: dict[str, Any] = {"type": "FeatureCollection", "features": page, "links": []}
        if self.counts:
            out["numberMatched"] = len(matched)
        end = offset + limit
        capped = self.window is not None and end >= self.window
        if self.empty_pages and end >= len(matched):
            out["links"].append(
                {
                    "rel": "next",
                    "href": f"{ROOT}/search",
                    "method": "POST",
                    "body": {**body, "token": end + limit},
                }
            )
        elif end < len(matched) and not capped:
            token = offset if self.loop_after is not None and end > self.loop_after else end
            out["links"].append(
                {
                    "rel": "next",
                    "href": f"{ROOT}/search",
                    "method": "POST",
                    "body": {"token": token},
                    "merge": True,
                }
            )
        return out

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in ("", "/"):
            return httpx.Response(200, json=self.landing())
        if path.startswith("/collections/"):
            cid = path.split("/")[2]
            known = {it["collection"] for it in self.items}
            if cid not in known:
                return httpx.Response(404, json={"detail": "not found"})
            return httpx.Response(200, json=self.collection(cid))
        if path == "/search":
            body = orjson.loads(request.content) if request.content else dict(request.url.params)
            self.requests.append(body)
            if self.fail is not None:
                status = self.fail(body)
                if status:
                    return httpx.Response(status, text="injected")
            return httpx.Response(200, json=self.search(body))
        return httpx.Response(404)
