"""A light, real STAC API server in memory: for benchmarks, the offline demo and notebooks.

``StacServer`` answers ``/``, ``/conformance``, ``/collections[/{id}[/items[/{item_id}]]]`` and
``/search`` (GET and POST) with the semantics of stac-fastapi-pgstac: closed datetime intervals
matched by overlap (``start_/end_datetime`` when both are set, else ``datetime``), ``bbox``
intersecting the geometry, sort by that start instant then id (descending unless ``sortby`` says
``+datetime``), stable token paging (the token is the last item's sort key), ``limit`` capped
silently at ``max_limit``. Items are serialised once when loaded, so a page is a join of bytes;
the emulated latency (``page_delay + item_delay * returned``) is a sleep, not server CPU.

It is an asyncio HTTP/1.1 server (keep-alive) on a daemon thread with its own event loop, so it
works from a script and inside a running loop (Jupyter) alike::

    with StacServer(items, page_delay=0.3, item_delay=0.001, max_concurrent=32) as server:
        gdf = stacfetch.ingest(server.url, collections=["a"])

``cpu_seconds`` is the server thread's CPU time. To keep the server's CPU entirely apart from
the client's (another process, read from ``/proc`` or psutil), run it as a process::

    python -m stacfetch._testing.server serve --ndjson items.ndjson --page-delay 0.3 --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import dataclasses
import heapq
import itertools
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

__all__ = ["StacServer"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_API = "https://api.stacspec.org/v1.0.0"
_OGC = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
_CONFORMS = [f"{_API}/{c}" for c in ("core", "item-search", "item-search#sort", "collections")]
_CONFORMS += [f"{_API}/ogcapi-features", f"{_OGC}/core", f"{_OGC}/geojson"]
_GEOJSON, _JSON = "application/geo+json", "application/json"
_ERRORS = {400: "BadRequest", 404: "NotFoundError", 405: "MethodNotAllowed", 429: "TooMany"}
_ORDERS = ("datetime-desc", "datetime-asc", "id", "insertion", "desc-nulls-last")
_COUNTERS = ("requests", "searches", "pages", "items_served", "throttled", "failed_by_rule")
Key = tuple[int, str, str]
"""An item's sort key: (start instant in µs since the epoch, id, collection)."""
Box = tuple[float, float, float, float]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _instant(text: str) -> int:
    """RFC 3339 text -> µs since the epoch (UTC); ``ValueError`` when malformed."""
    t = text.strip()
    if len(t) < 20 or t[10] not in "Tt ":
        raise ValueError(text)
    t = t[:-1] + "+00:00" if t[-1] in "zZ" else t
    head, dot, rest = t.partition(".")
    if dot:  # any number of fraction digits (Python 3.10 takes only 3 or 6)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        t = f"{head}.{(rest[:digits] + '000000')[:6]}{rest[digits:]}"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        raise ValueError(text)
    return (dt - _EPOCH) // _US


def _box(values: Sequence[Any]) -> Box:
    """A 2D or 3D bbox as (west, south, east, north)."""
    if len(values) not in (4, 6):
        raise ValueError(f"a bbox has 4 or 6 numbers, not {len(values)}")
    n = len(values) // 2
    return float(values[0]), float(values[1]), float(values[n]), float(values[n + 1])


def _coords_box(geometry: Any) -> Box | None:
    flat: list[Sequence[float]] = []
    stack = [(geometry or {}).get("coordinates") or []]
    while stack:
        c = stack.pop()
        if c and isinstance(c[0], (int, float)):
            flat.append(c)
        else:
            stack.extend(c)
    xs, ys = [p[0] for p in flat], [p[1] for p in flat]
    return (min(xs), min(ys), max(xs), max(ys)) if flat else None


class _Rec:
    """One item: its sort key, the end of its interval, its bbox and its serialised bytes."""

    __slots__ = ("bbox", "end", "key", "raw", "seq", "shape")

    def __init__(self, item: dict[str, Any]) -> None:
        props = item.get("properties") or {}
        start, end = props.get("start_datetime"), props.get("end_datetime")
        if not (start and end):
            start = end = props.get("datetime")
        if not (
            start and isinstance(item.get("id"), str) and isinstance(item.get("collection"), str)
        ):
            raise ValueError(f"item {item.get('id')!r} lacks an id, a collection or a datetime")
        self.key: Key = (_instant(str(start)), item["id"], item["collection"])
        self.end = _instant(str(end))
        self.bbox = _box(item["bbox"]) if item.get("bbox") else _coords_box(item.get("geometry"))
        self.raw = orjson.dumps(item)
        self.shape: Any = None
        self.seq = 0

    def geometry(self) -> Any:
        """The item's geometry as a shapely object (None when it has none)."""
        if self.shape is None:
            import shapely.geometry

            geometry = orjson.loads(self.raw).get("geometry")
            self.shape = shapely.geometry.shape(geometry) if geometry else False
        return self.shape or None

    @property
    def ranged(self) -> bool:
        """An item with ``datetime: null`` (a range item)."""
        return b'"datetime":null' in self.raw

    def hits(self, box: Box) -> bool:
        """Does the item's geometry intersect ``box``? (bbox test, then shapely at the edges)"""
        b = self.bbox
        if b is None or b[0] > box[2] or b[2] < box[0] or b[1] > box[3] or b[3] < box[1]:
            return False
        if box[0] <= b[0] and b[2] <= box[2] and box[1] <= b[1] and b[3] <= box[3]:
            return True
        import shapely.geometry  # a dependency of the package (via geopandas)

        shape = self.geometry()
        return shape is not None and bool(shape.intersects(shapely.geometry.box(*box)))


class _Index:
    """A collection's items sorted by key, instants and ranges apart, so datetime bisects."""

    def __init__(self, recs: list[_Rec]) -> None:
        self.parts = []
        for ranged in (False, True):
            part = sorted((r for r in recs if (r.end != r.key[0]) is ranged), key=lambda r: r.key)
            width = max((r.end - r.key[0] for r in part), default=0)
            self.parts.append((part, [r.key for r in part], width))

    def walk(self, lo: int | None, hi: int | None, after: Key | None, desc: bool) -> list[Any]:
        """One sorted iterator per part: keys in ``[lo - width, hi]`` beyond ``after``."""
        out = []
        for recs, keys, width in self.parts:
            i = 0 if lo is None else bisect.bisect_left(keys, (lo - width,))
            j = len(keys) if hi is None else bisect.bisect_left(keys, (hi + 1,))
            if after is not None and desc:
                j = min(j, bisect.bisect_left(keys, after))
            elif after is not None:
                i = max(i, bisect.bisect_right(keys, after))
            seq = map(recs.__getitem__, range(j - 1, i - 1, -1) if desc else range(i, j))
            out.append(seq if lo is None or width == 0 else (r for r in seq if r.end >= lo))
        return out


@dataclasses.dataclass
class _Search:
    """A parsed search; ``fail_when`` predicates see the first eight fields as a dict."""

    method: str
    collections: list[str] | None
    ids: list[str] | None
    bbox: Box | None
    datetime: tuple[datetime | None, datetime | None] | None
    limit: int
    token: str | None
    desc: bool
    lo: int | None = None
    hi: int | None = None
    after: Key | None = None
    shape: Any = None
    offset: int = 0
    sorted_by_user: bool = False

    def public(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)[:8]}


def _parse(params: dict[str, Any], method: str, limits: tuple[int, int]) -> _Search:
    def listed(name: str) -> list[Any] | None:
        value = params.get(name)
        value = [v for v in value.split(",") if v] if isinstance(value, str) else value
        if value is not None and not isinstance(value, list):
            raise _BadRequest(400, f"{name}: expected a list, got {value!r}")
        return value

    for key in ("filter", "query", "q"):
        if params.get(key) is not None:
            raise _BadRequest(400, f"{key} is not supported by this server")
    geometry = params.get("intersects")
    if isinstance(geometry, str):
        geometry = orjson.loads(geometry)
    shape = None
    if geometry is not None:
        import shapely.geometry

        try:
            shape = shapely.geometry.shape(geometry)
        except Exception:
            raise _BadRequest(400, f"invalid intersects geometry {geometry!r}") from None
        if params.get("bbox"):
            raise _BadRequest(400, "bbox and intersects are mutually exclusive")
    try:
        bbox = listed("bbox")
        box = _box(bbox) if bbox else None
        limit = int(limits[0] if params.get("limit") in (None, "") else params["limit"])
        lo, hi = _interval(params.get("datetime"))
        token = params.get("token")
        after: Key | None = None
        offset = 0
        if token and str(token).startswith("o"):
            offset = int(str(token)[1:])
        elif token:
            t, i, c = orjson.loads(base64.urlsafe_b64decode(token))
            after = (int(t), str(i), str(c))
    except (TypeError, ValueError):
        raise _BadRequest(400, f"invalid bbox, limit, datetime or token in {params!r}") from None
    if limit < 1 or (lo is not None and hi is not None and lo > hi):
        raise _BadRequest(400, f"invalid limit or datetime in {params!r}")
    sortby = params.get("sortby") or "-datetime"
    if isinstance(sortby, list) and sortby and isinstance(sortby[0], dict):
        sortby = ("-" if sortby[0].get("direction") == "desc" else "+") + str(sortby[0]["field"])
    if not isinstance(sortby, str) or sortby.split(",")[0].lstrip(" +-") not in (
        "datetime",
        "properties.datetime",
    ):
        raise _BadRequest(400, f"only sortby datetime is supported, not {sortby!r}")
    span = None
    if lo is not None or hi is not None:
        span = (_to_datetime(lo), _to_datetime(hi))
    collections, ids, desc = listed("collections"), listed("ids"), sortby.startswith("-")
    return _Search(
        method,
        collections,
        ids,
        box,
        span,
        min(limit, limits[1]),
        token,
        desc,
        lo,
        hi,
        after,
        shape,
        offset,
        params.get("sortby") is not None,
    )


def _to_datetime(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + value * _US


def _interval(value: Any) -> tuple[int | None, int | None]:
    """``a/b``, ``../b``, ``a/..``, ``/b``, ``a/`` or an instant -> (lo, hi) in µs."""
    if not value:
        return None, None
    text = str(value)
    parts = text.split("/") if "/" in text else [text, text]
    lo, hi = (None if p in ("", "..") else _instant(p) for p in parts)
    if lo is None and hi is None:
        raise ValueError(text)
    return lo, hi


class StacServer:
    """An in-memory STAC API with emulated latency, a concurrency cap and injectable faults.

    Args:
        items: STAC items, each with ``id``, ``collection`` and a datetime or a range.
        collections: collection documents; missing ones are made from the items.
        page_delay, item_delay: a search page sleeps ``page_delay + item_delay * returned``.
        max_concurrent: requests in flight beyond it answer 429 with ``Retry-After: 1``.
        default_limit, max_limit: page size when ``limit`` is absent, and its silent cap.
        counts: put ``numberMatched`` and ``numberReturned`` in search pages.
        order: the default order of search results (no ``sortby``), as real servers differ:
            ``"datetime-desc"`` (pgstac's), ``"datetime-asc"``, ``"id"``, ``"insertion"``
            (the order items were given in, like ``rustac serve``) or ``"desc-nulls-last"``
            (datetime descending, range items with ``datetime: null`` after all others).
            Orders other than the first page by offset.
        next_links: False answers only the first page, without ``next`` links, like a server
            that does not page.
        datetime_filter_misses: a predicate on item dicts: items it selects are left out of
            every search that has a ``datetime`` filter (a server whose datetime filter is
            buggy).

    ``counters`` counts requests, searches, pages, items_served, throttled, failed_by_rule and
    max_in_flight.

    Example:
        >>> import httpx
        >>> items = [{"type": "Feature", "id": "x", "collection": "c", "bbox": [0, 0, 1, 1],
        ...           "geometry": None, "properties": {"datetime": "2024-01-01T00:00:00Z"}}]
        >>> with StacServer(items) as server:
        ...     page = httpx.post(server.url + "/search", json={"collections": ["c"]}).json()
        >>> page["numberMatched"], server.counters["items_served"]
        (1, 1)
    """

    def __init__(
        self,
        items: Iterable[dict[str, Any]],
        collections: Iterable[dict[str, Any]] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_delay: float = 0.0,
        item_delay: float = 0.0,
        max_concurrent: int | None = None,
        default_limit: int = 10,
        max_limit: int = 10000,
        counts: bool = True,
        order: str = "datetime-desc",
        next_links: bool = True,
        datetime_filter_misses: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        if order not in _ORDERS:
            raise ValueError(f"order: one of {', '.join(_ORDERS)}, not {order!r}")
        self.order, self.next_links = order, next_links
        self.host, self.port, self.url = host, port, ""
        self.page_delay, self.item_delay = page_delay, item_delay
        self.max_concurrent, self.counts = max_concurrent, counts
        self.limits = (default_limit, max_limit)
        self.counters: dict[str, int] = dict.fromkeys((*_COUNTERS, "max_in_flight"), 0)
        by_coll: dict[str, list[_Rec]] = {}
        self._by_id: dict[tuple[str, str], _Rec] = {}
        self._misses: set[tuple[str, str]] = set()
        for seq, item in enumerate(items):
            rec = _Rec(item)
            rec.seq = seq
            if datetime_filter_misses is not None and datetime_filter_misses(item):
                self._misses.add((rec.key[2], rec.key[1]))
            by_coll.setdefault(rec.key[2], []).append(rec)
            self._by_id[(rec.key[2], rec.key[1])] = rec
        self._index = {cid: _Index(recs) for cid, recs in by_coll.items()}
        self.collections = {str(c["id"]): dict(c) for c in collections or ()}
        for cid, recs in by_coll.items():
            self.collections.setdefault(cid, _collection(cid, recs))
        self._rules: dict[int, tuple[Callable[[dict[str, Any]], bool], int]] = {}
        self._in_flight, self._counts = 0, dict[tuple[Any, ...], int]()
        self._rule_ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None

    def fail_when(self, predicate: Callable[[dict[str, Any]], bool], status: int = 503) -> int:
        """Answer ``status`` to every search for which ``predicate(search)`` holds, till healed.

        ``search`` has ``method``, ``collections``, ``ids``, ``bbox``, ``datetime`` (None or
        ``(start, end)``, aware datetimes, None for an open end), ``limit``, ``token`` and
        ``desc``. Returns the rule id for ``heal()``.

        Example:
            >>> server = StacServer([])
            >>> rule = server.fail_when(lambda s: s["token"] is not None, status=502)
            >>> server.heal(rule)
        """
        rule = next(self._rule_ids)
        self._rules[rule] = (predicate, status)
        return rule

    def heal(self, rule_id: int | None = None) -> None:
        """Remove one fault rule, or every rule when ``rule_id`` is None."""
        if rule_id is None:
            self._rules.clear()
        self._rules.pop(rule_id or 0, None)

    @property
    def cpu_seconds(self) -> float | None:
        """CPU seconds used by the server thread so far; None where not measurable."""
        ident = self._thread.ident if self._thread else None
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(ident)) if ident else None
        except (AttributeError, OSError):
            return None

    def start(self) -> StacServer:
        """Start serving on a daemon thread; returns ``self`` once ``url`` is bound."""
        if self._thread is not None:
            raise RuntimeError("StacServer already started")
        ready, errors = threading.Event(), list[OSError]()
        loop = self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                serve = asyncio.start_server(self._serve, self.host, self.port, limit=1 << 22)
                self._server = loop.run_until_complete(serve)
                self.port = self._server.sockets[0].getsockname()[1]
                self.url = f"http://{self.host}:{self.port}"
            except OSError as exc:
                errors.append(exc)
            ready.set()
            if not errors:
                loop.run_forever()
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="stacfetch-server", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop serving and end the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            if self._server is not None:
                loop.call_soon_threadsafe(self._server.close)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    async def astart(self) -> StacServer:
        """``start()`` for async code."""
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        """``stop()`` for async code."""
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> StacServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                self.counters["requests"] += 1
                self._in_flight += 1
                self.counters["max_in_flight"] = max(
                    self.counters["max_in_flight"], self._in_flight
                )
                try:
                    if self.max_concurrent is not None and self._in_flight > self.max_concurrent:
                        self.counters["throttled"] += 1
                        status, kind, payload = 429, _JSON, _error(429, "too many requests")
                    else:
                        status, kind, payload = await self._route(method, target, headers, body)
                    reason = "OK" if status == 200 else _ERRORS.get(status, "Error")
                    head = f"HTTP/1.1 {status} {reason}"
                    head += f"\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n"
                    head += "Retry-After: 1\r\n\r\n" if status == 429 else "\r\n"
                    writer.write(head.encode() + payload)
                    await writer.drain()
                finally:
                    self._in_flight -= 1
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            pass  # the client left, sent garbage, or the server is stopping
        finally:
            writer.close()

    async def _route(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        parts = urlsplit(target)
        segs = [s for s in parts.path.split("/") if s]
        base = f"http://{headers['host']}" if "host" in headers else self.url
        try:
            if segs == ["search"] and method == "POST":
                params = orjson.loads(body or b"{}")
                if not isinstance(params, dict):
                    raise _BadRequest(400, "the search body must be a JSON object")
                return await self._search(params, "POST", base, f"{base}/search")
            if method != "GET":
                raise _BadRequest(405, f"{method} {parts.path} is not allowed")
            query: dict[str, Any] = dict(parse_qsl(parts.query))
            if segs == ["search"]:
                return await self._search(query, "GET", base, f"{base}/search")
            if segs[:1] == ["collections"] and len(segs) > 1 and segs[1] not in self.collections:
                raise _BadRequest(404, f"Collection {segs[1]} does not exist.")
            if segs[:1] == ["collections"] and segs[2:3] == ["items"] and len(segs) == 3:
                href = f"{base}/collections/{segs[1]}/items"
                return await self._search({**query, "collections": [segs[1]]}, "GET", base, href)
            if segs[:1] == ["collections"] and segs[2:3] == ["items"] and len(segs) == 4:
                rec = self._by_id.get((segs[1], segs[3]))
                if rec is None:
                    raise _BadRequest(404, f"Item {segs[3]} does not exist.")
                return 200, _GEOJSON, rec.raw
            return 200, _JSON, orjson.dumps(self._document(segs, base))
        except _BadRequest as exc:
            return exc.status, _JSON, _error(exc.status, str(exc))
        except orjson.JSONDecodeError:
            return 400, _JSON, _error(400, "the search body is not JSON")
        except Exception as exc:  # a bug here: answer 500 and keep serving
            return 500, _JSON, _error(500, f"{type(exc).__name__}: {exc}")

    def _document(self, segs: list[str], base: str) -> dict[str, Any]:
        if not segs:
            links = [_link(rel, base + path) for rel, path in _LANDING_LINKS]
            links += [
                _link("search", f"{base}/search", _GEOJSON, method=m) for m in ("GET", "POST")
            ]
            links += [_link("child", f"{base}/collections/{cid}") for cid in self.collections]
            return {
                "type": "Catalog",
                "stac_version": "1.0.0",
                "id": "stacfetch",
                "conformsTo": _CONFORMS,
                "title": "stacfetch in-memory STAC API",
                "description": "stacfetch._testing.server",
                "links": links,
            }
        if segs == ["conformance"]:
            return {"conformsTo": _CONFORMS}
        if segs == ["collections"]:
            docs = [self._collection_doc(cid, base) for cid in self.collections]
            return {"collections": docs, "links": [_link("self", f"{base}/collections")]}
        if len(segs) == 2 and segs[0] == "collections":
            return self._collection_doc(segs[1], base)
        raise _BadRequest(404, f"{'/'.join(segs)} does not exist")

    def _collection_doc(self, cid: str, base: str) -> dict[str, Any]:
        doc, url = self.collections[cid], f"{base}/collections/{cid}"
        links = [
            ln
            for ln in doc.get("links", [])
            if ln.get("rel") not in ("self", "root", "parent", "items")
        ]
        links += [_link("self", url), _link("root", base), _link("parent", base)]
        return {**doc, "links": [*links, _link("items", f"{url}/items", _GEOJSON)]}

    def _matches(self, s: _Search, after: Key | None) -> Iterator[_Rec]:
        """The items matching ``s`` in sort order, after the key ``after``."""
        recs: Iterable[_Rec]
        if s.ids is not None:
            found = (self._by_id.get((c, i)) for c in s.collections or self._index for i in s.ids)
            recs = sorted(
                (r for r in found if r and _in_time(r, s, after)),
                key=lambda r: r.key,
                reverse=s.desc,
            )
        else:
            cids = [c for c in s.collections or self._index if c in self._index]
            walks = [w for c in cids for w in self._index[c].walk(s.lo, s.hi, after, s.desc)]
            recs = heapq.merge(*walks, key=lambda r: r.key, reverse=s.desc)
        box = s.bbox
        if box is not None:
            recs = (r for r in recs if r.hits(box))
        if s.shape is not None:
            shape = s.shape
            recs = (r for r in recs if (g := r.geometry()) is not None and g.intersects(shape))
        if self._misses and s.datetime is not None:
            misses = self._misses
            recs = (r for r in recs if (r.key[2], r.key[1]) not in misses)
        return iter(recs)

    def _ordered(self, s: _Search) -> list[_Rec]:
        """Every match of ``s`` in the server's default order (not the sort key's)."""
        recs = list(self._matches(s, None))
        if self.order == "datetime-asc":
            recs.reverse()
        elif self.order == "id":
            recs.sort(key=lambda r: (r.key[1], r.key[2]))
        elif self.order == "insertion":
            recs.sort(key=lambda r: r.seq)
        elif self.order == "desc-nulls-last":
            recs.sort(key=lambda r: r.ranged)
        return recs

    async def _search(
        self, params: dict[str, Any], method: str, base: str, href: str
    ) -> tuple[int, str, bytes]:
        self.counters["searches"] += 1
        s = _parse(params, method, self.limits)
        for cid in s.collections or ():
            if cid not in self.collections:
                raise _BadRequest(404, f"Collection {cid} does not exist.")
        for predicate, status in list(self._rules.values()):
            if predicate(s.public()):
                self.counters["failed_by_rule"] += 1
                return status, _JSON, _error(status, "failure injected by fail_when()")
        page: list[_Rec] = []
        token: str | None = None
        if self.order != "datetime-desc" and not s.sorted_by_user:
            recs = self._ordered(s)
            page = recs[s.offset : s.offset + s.limit]
            if s.offset + s.limit < len(recs):
                token = f"o{s.offset + s.limit}"
        else:
            for rec in self._matches(s, s.after):
                if len(page) == s.limit:
                    token = base64.urlsafe_b64encode(orjson.dumps(page[-1].key)).decode()
                    break
                page.append(rec)
        nxt = None
        if token is not None and self.next_links:
            if method == "POST":
                nxt = _link("next", href, _GEOJSON, method="POST", body={**params, "token": token})
            else:
                query = {
                    k: v
                    for k, v in params.items()
                    if k != "collections" or href.endswith("/search")
                }
                nxt = _link(
                    "next", f"{href}?{urlencode({**query, 'token': token})}", _GEOJSON, method="GET"
                )
        tail: dict[str, Any] = {"links": [_link("root", base), *([nxt] if nxt else [])]}
        tail["numberReturned"] = len(page)
        if self.counts:
            shape = s.shape.wkb if s.shape is not None else None
            key = (tuple(s.collections or ()), tuple(s.ids or ()), s.bbox, s.lo, s.hi, shape)
            if key not in self._counts:
                self._counts[key] = sum(1 for _ in self._matches(s, None))
            tail["numberMatched"] = self._counts[key]
        self.counters["pages"] += 1
        self.counters["items_served"] += len(page)
        if self.page_delay or self.item_delay:
            await asyncio.sleep(self.page_delay + self.item_delay * len(page))
        features = b",".join(r.raw for r in page)
        return (
            200,
            _GEOJSON,
            b'{"type":"FeatureCollection","features":[' + features + b"]," + orjson.dumps(tail)[1:],
        )


_LANDING_LINKS = (
    ("root", ""),
    ("self", ""),
    ("conformance", "/conformance"),
    ("data", "/collections"),
)


def _link(rel: str, href: str, kind: str = _JSON, **extra: Any) -> dict[str, Any]:
    return {"rel": rel, "href": href, "type": kind, **extra}


def _in_time(r: _Rec, s: _Search, after: Key | None) -> bool:
    if (s.hi is not None and r.key[0] > s.hi) or (s.lo is not None and r.end < s.lo):
        return False
    return after is None or (r.key < after if s.desc else r.key > after)


def _error(status: int, message: str) -> bytes:
    return orjson.dumps({"code": _ERRORS.get(status, "ServerError"), "description": message})


def _collection(cid: str, recs: list[_Rec]) -> dict[str, Any]:
    """A collection document made from its items: temporal and spatial extent."""
    when = [
        (_EPOCH + v * _US).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stacfetch._testing.server serve --ndjson FILE ...``: print the URL, serve
    till killed."""
    parser = argparse.ArgumentParser(prog="python -m stacfetch._testing.server")
    serve = parser.add_subparsers(dest="command", required=True).add_parser("serve")
    serve.add_argument("--ndjson", action="append", required=True, help="items, one per line")
    serve.add_argument("--host", default="127.0.0.1")
    for name, kind in (
        ("port", int),
        ("page-delay", float),
        ("item-delay", float),
        ("max-concurrent", int),
    ):
        serve.add_argument(f"--{name}", type=kind, default=None)
    serve.add_argument("--default-limit", type=int, default=10)
    serve.add_argument("--max-limit", type=int, default=10000)
    serve.add_argument("--no-counts", action="store_true", help="omit numberMatched")
    args = parser.parse_args(argv)

    def items() -> Iterator[dict[str, Any]]:
        for path in args.ndjson:
            with open(path, "rb") as f:
                yield from (orjson.loads(line) for line in f if line.strip())

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = StacServer(
        items(),
        host=args.host,
        port=args.port or 0,
        page_delay=args.page_delay or 0.0,
        item_delay=args.item_delay or 0.0,
        max_concurrent=args.max_concurrent,
        default_limit=args.default_limit,
        max_limit=args.max_limit,
        counts=not args.no_counts,
    )
    with server:
        print(server.url, flush=True)
        while not stop.wait(0.2):
            pass
    print(
        orjson.dumps({**server.counters, "cpu_seconds": time.process_time()}).decode(),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
