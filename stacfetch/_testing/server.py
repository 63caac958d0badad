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

This module's job is HTTP: the connection loop, routing, search pages, throttling and fault
rules, and that command line. Items and their index are in :mod:`.records`, search parsing and
matching in :mod:`.search`, the other documents (landing page, collections, errors) in
:mod:`.documents`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from .documents import ERROR_CODES, GEOJSON, JSON, collection_from_items, document, error_body, link
from .records import Record
from .search import BadRequest, ItemStore, parse_search

__all__ = ["StacServer"]

_ORDERS = ("datetime-desc", "datetime-asc", "id", "insertion", "desc-nulls-last")
_COUNTERS = ("requests", "searches", "pages", "items_served", "throttled", "failed_by_rule")


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
        filter_delay: seconds every search with a ``datetime`` or ``bbox`` filter spends, one
            such search at a time (a static catalog behind a search API, which reads every
            item file to evaluate a filter and answers one request after the other).

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
        filter_delay: float = 0.0,
    ) -> None:
        if order not in _ORDERS:
            raise ValueError(f"order: one of {', '.join(_ORDERS)}, not {order!r}")
        self.order, self.next_links = order, next_links
        self.host, self.port, self.url = host, port, ""
        self.page_delay, self.item_delay = page_delay, item_delay
        self.filter_delay, self._filtering = filter_delay, threading.Lock()
        self.max_concurrent, self.counts = max_concurrent, counts
        self.limits = (default_limit, max_limit)
        self.counters: dict[str, int] = dict.fromkeys((*_COUNTERS, "max_in_flight"), 0)
        self._items = ItemStore(items, datetime_filter_misses)
        self.collections = {str(c["id"]): dict(c) for c in collections or ()}
        for cid, recs in self._items.by_collection.items():
            self.collections.setdefault(cid, collection_from_items(cid, recs))
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

    def _filter_walk(self) -> None:
        with self._filtering:  # one filtered search at a time, each a whole walk
            time.sleep(self.filter_delay)

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
                        status, kind, payload = 429, JSON, error_body(429, "too many requests")
                    else:
                        status, kind, payload = await self._route(method, target, headers, body)
                    reason = "OK" if status == 200 else ERROR_CODES.get(status, "Error")
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
                    raise BadRequest(400, "the search body must be a JSON object")
                return await self._search(params, "POST", base, f"{base}/search")
            if method != "GET":
                raise BadRequest(405, f"{method} {parts.path} is not allowed")
            query: dict[str, Any] = dict(parse_qsl(parts.query))
            if segs == ["search"]:
                return await self._search(query, "GET", base, f"{base}/search")
            if segs[:1] == ["collections"] and len(segs) > 1 and segs[1] not in self.collections:
                raise BadRequest(404, f"Collection {segs[1]} does not exist.")
            if segs[:1] == ["collections"] and segs[2:3] == ["items"] and len(segs) == 3:
                href = f"{base}/collections/{segs[1]}/items"
                return await self._search({**query, "collections": [segs[1]]}, "GET", base, href)
            if segs[:1] == ["collections"] and segs[2:3] == ["items"] and len(segs) == 4:
                rec = self._items.by_id.get((segs[1], segs[3]))
                if rec is None:
                    raise BadRequest(404, f"Item {segs[3]} does not exist.")
                return 200, GEOJSON, rec.raw
            return 200, JSON, orjson.dumps(document(segs, base, self.collections))
        except BadRequest as exc:
            return exc.status, JSON, error_body(exc.status, str(exc))
        except orjson.JSONDecodeError:
            return 400, JSON, error_body(400, "the search body is not JSON")
        except Exception as exc:  # a bug here: answer 500 and keep serving
            return 500, JSON, error_body(500, f"{type(exc).__name__}: {exc}")

    async def _search(
        self, params: dict[str, Any], method: str, base: str, href: str
    ) -> tuple[int, str, bytes]:
        self.counters["searches"] += 1
        s = parse_search(params, method, self.limits)
        for cid in s.collections or ():
            if cid not in self.collections:
                raise BadRequest(404, f"Collection {cid} does not exist.")
        for predicate, status in list(self._rules.values()):
            if predicate(s.public()):
                self.counters["failed_by_rule"] += 1
                return status, JSON, error_body(status, "failure injected by fail_when()")
        page: list[Record] = []
        token: str | None = None
        if self.order != "datetime-desc" and not s.sorted_by_user:
            recs = self._items.ordered(s, self.order)
            page = recs[s.offset : s.offset + s.limit]
            if s.offset + s.limit < len(recs):
                token = f"o{s.offset + s.limit}"
        else:
            for rec in self._items.matches(s, s.after):
                if len(page) == s.limit:
                    token = base64.urlsafe_b64encode(orjson.dumps(page[-1].key)).decode()
                    break
                page.append(rec)
        nxt = None
        if token is not None and self.next_links:
            if method == "POST":
                nxt = link("next", href, GEOJSON, method="POST", body={**params, "token": token})
            else:
                query = {
                    k: v
                    for k, v in params.items()
                    if k != "collections" or href.endswith("/search")
                }
                nxt = link(
                    "next", f"{href}?{urlencode({**query, 'token': token})}", GEOJSON, method="GET"
                )
        tail: dict[str, Any] = {"links": [link("root", base), *([nxt] if nxt else [])]}
        tail["numberReturned"] = len(page)
        if self.counts:
            shape = s.shape.wkb if s.shape is not None else None
            key = (tuple(s.collections or ()), tuple(s.ids or ()), s.bbox, s.lo, s.hi, shape)
            if key not in self._counts:
                self._counts[key] = sum(1 for _ in self._items.matches(s, None))
            tail["numberMatched"] = self._counts[key]
        self.counters["pages"] += 1
        self.counters["items_served"] += len(page)
        if self.page_delay or self.item_delay:
            await asyncio.sleep(self.page_delay + self.item_delay * len(page))
        if self.filter_delay and (s.lo is not None or s.hi is not None or s.bbox is not None):
            await asyncio.to_thread(self._filter_walk)
        features = b",".join(r.raw for r in page)
        return (
            200,
            GEOJSON,
            b'{"type":"FeatureCollection","features":[' + features + b"]," + orjson.dumps(tail)[1:],
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stacfetch._testing.server serve --ndjson FILE ...``: print the URL, serve
    till killed, then print the counters and ``cpu_seconds`` as JSON on stderr.

    Example::

        main(["serve", "--ndjson", "items.ndjson", "--page-delay", "0.3", "--port", "8000"])
    """
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
