"""A real fault-injecting HTTP/1.1 reverse proxy for integration tests.

``FaultProxy`` listens on a ``127.0.0.1`` socket (asyncio streams, its own event loop in a
daemon thread) and forwards every request to ``upstream`` with httpx: method, path, query, body
and headers, including ``Host`` so stac-fastapi builds ``next`` links that point at the proxy.
The upstream answer (status, headers, raw possibly-compressed body) is read whole and sent back
with a ``Content-Length``.

Faults, drawn from ``random.Random(seed)`` for fault-eligible requests only (by default
``/search`` and ``/collections/{id}/items[/{item}]``; the landing page, ``/conformance`` and
``/collections/{id}`` pass untouched):

- ``error_rate``: 500/502/503/504 with a JSON body;
- ``throttle_rate``: 429 with ``Retry-After: <retry_after>`` seconds, or (``retry_after_date_rate``
  of the time) as an HTTP-date, rounded up to the next whole second;
- ``drop_rate``: the connection is closed without an answer (``drop_close``), or the real answer
  is sent with its full ``Content-Length`` but only half the body (``drop_truncate``);
- ``html_error_rate``: 503 with an HTML body;
- ``slow_rate`` + ``slow_seconds``: a delay before anything else happens (independent draw);
- ``max_concurrent``: eligible requests beyond this many in flight get 429 at once
  (``over_capacity``);
- ``fail_when(predicate)``: every matching request (any path) gets 503 until ``heal()``.

``counters`` counts requests and each injected fault; ``max_in_flight`` is the most requests
seen in flight at once (all paths); ``records`` logs every request and what happened to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from .itemgen import parse_datetime

__all__ = ["DEFAULT_FAULT_PATHS", "FaultProxy", "RequestInfo", "RequestRecord", "overlaps"]

DEFAULT_FAULT_PATHS = r"(/search|/collections/[^/]+/items(/[^/]+)?)/?$"
_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"}
_HOP |= {"upgrade", "content-length"}
_HTML = b"<html><head><title>503 Service Unavailable</title></head><body><h1>503 Service "
_HTML += b"Temporarily Unavailable</h1><p>injected by FaultProxy</p></body></html>"


@dataclass(frozen=True)
class RequestInfo:
    """What a ``fail_when`` predicate sees: one parsed request."""

    method: str
    path: str
    query: dict[str, list[str]]
    json: Any
    headers: dict[str, str]

    def param(self, name: str) -> Any:
        """``name`` from the JSON body, else the first query value, else ``None``."""
        if isinstance(self.json, dict) and name in self.json:
            return self.json[name]
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class RequestRecord:
    """One request as logged in ``FaultProxy.records``."""

    method: str
    target: str
    json: Any
    outcome: str  # "passed", a fault kind, "rule" or "upstream_error"
    status: int | None  # None when no status line was sent
    at: float  # time.monotonic() when the request was read


Predicate = Callable[[RequestInfo], bool]


def overlaps(start: datetime | str, end: datetime | str) -> Predicate:
    """Predicate: a search/items request whose ``datetime`` overlaps ``[start, end]`` (closed).

    A request without ``datetime`` searches all time, so it overlaps too. Open ends (``..`` or
    empty) are unbounded.
    """
    lo = parse_datetime(start) if isinstance(start, str) else start
    hi = parse_datetime(end) if isinstance(end, str) else end
    pattern = re.compile(DEFAULT_FAULT_PATHS)

    def predicate(req: RequestInfo) -> bool:
        if not pattern.search(req.path):
            return False
        value = req.param("datetime")
        if not value:
            return True
        parts = str(value).split("/")
        a = parts[0] if parts[0] not in ("", "..") else None
        b = parts[-1] if parts[-1] not in ("", "..") else None
        return (a is None or parse_datetime(a) <= hi) and (b is None or parse_datetime(b) >= lo)

    return predicate


class FaultProxy:
    """Reverse proxy in front of ``upstream`` that injects faults; see the module docstring."""

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        error_rate: float = 0.0,
        throttle_rate: float = 0.0,
        drop_rate: float = 0.0,
        html_error_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_seconds: float = 1.0,
        retry_after: int = 1,
        retry_after_date_rate: float = 0.25,
        drop_modes: tuple[str, ...] = ("close", "truncate"),
        error_statuses: tuple[int, ...] = (500, 502, 503, 504),
        fault_paths: str | None = DEFAULT_FAULT_PATHS,
        max_concurrent: int | None = None,
        port: int = 0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.rng = random.Random(seed)
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.retry_after_date_rate = retry_after_date_rate
        self.drop_modes = drop_modes
        self.error_statuses = error_statuses
        self.fault_paths = re.compile(fault_paths) if fault_paths else None
        self.max_concurrent = max_concurrent
        self.port = port
        self.rates: dict[str, float] = {}
        self.configure(
            error_rate=error_rate,
            throttle_rate=throttle_rate,
            drop_rate=drop_rate,
            html_error_rate=html_error_rate,
            slow_rate=slow_rate,
        )
        self._rules: dict[int, tuple[Predicate, int]] = {}
        self._next_rule = 1
        self._counters: Counter[str] = Counter()
        self._records: deque[RequestRecord] = deque(maxlen=100_000)
        self._in_flight = 0
        self._max_in_flight = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --------------------------------------------------------------------- public API
    @property
    def url(self) -> str:
        """Root URL of the proxy, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def counters(self) -> dict[str, int]:
        """Requests seen, each fault kind injected, and ``max_in_flight``."""
        with self._lock:
            return {**self._counters, "max_in_flight": self._max_in_flight}

    @property
    def max_in_flight(self) -> int:
        """Most requests in flight at once since the last ``reset()``."""
        return self._max_in_flight

    @property
    def records(self) -> list[RequestRecord]:
        """The request log (last 100,000 requests)."""
        with self._lock:
            return list(self._records)

    def configure(self, **rates: float) -> None:
        """Change fault rates at run time, e.g. ``configure(error_rate=0.0)``."""
        known = ("error_rate", "throttle_rate", "drop_rate", "html_error_rate", "slow_rate")
        for name, value in rates.items():
            if name not in known or not 0.0 <= value <= 1.0:
                raise ValueError(f"unknown rate or not in [0, 1]: {name}={value}")
            self.rates[name] = value
        if sum(v for k, v in self.rates.items() if k != "slow_rate") > 1.0 + 1e-9:
            raise ValueError("error, throttle, drop and html_error rates must add up to <= 1")

    def fail_when(self, predicate: Predicate, status: int = 503) -> int:
        """Answer ``status`` to every request matching ``predicate`` until healed; returns an id."""
        with self._lock:
            rule_id, self._next_rule = self._next_rule, self._next_rule + 1
            self._rules[rule_id] = (predicate, status)
        return rule_id

    def heal(self, rule_id: int | None = None) -> None:
        """Remove one ``fail_when`` rule, or all of them."""
        with self._lock:
            if rule_id is None:
                self._rules.clear()
            else:
                self._rules.pop(rule_id, None)

    def reset(self) -> None:
        """Zero the counters, ``max_in_flight`` and the request log."""
        with self._lock:
            self._counters.clear()
            self._records.clear()
            self._max_in_flight = self._in_flight

    def start(self) -> FaultProxy:
        """Bind the socket and serve in a background thread; returns ``self``."""
        self._thread = threading.Thread(target=self._run, name="FaultProxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"FaultProxy failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Close the listener and all connections and end the thread. Safe to call twice."""
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(15)
        self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --------------------------------------------------------------------- server
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        tasks: set[asyncio.Task[Any]] = set()
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=120.0, limits=limits) as client:

            async def on_connect(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter
            ) -> None:
                task = asyncio.current_task()
                assert task is not None
                tasks.add(task)
                try:
                    await self._connection(client, reader, writer)
                except asyncio.CancelledError:
                    pass  # stop() cancels idle keep-alive connections; not an error
                finally:
                    tasks.discard(task)

            server = await asyncio.start_server(on_connect, "127.0.0.1", self.port, backlog=1024)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopping.wait()
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    async def _connection(
        self, client: httpx.AsyncClient, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                if not await self._exchange(client, writer, *request):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ValueError:  # malformed request
            with contextlib.suppress(ConnectionError):
                await _send(writer, 400, [], b"bad request")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        writer: asyncio.StreamWriter,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> bool:
        """Answer one request; returns whether the connection stays open."""
        split = urlsplit(target)
        lowered = {k.lower(): v for k, v in headers}
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = None
        info = RequestInfo(method, split.path, parse_qs(split.query, True), parsed, lowered)
        eligible = self.fault_paths is None or bool(self.fault_paths.search(split.path))
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._counters["requests"] += 1
            rules = list(self._rules.values())
            kind, slow = self._draw() if eligible else ("passed", False)
            over = eligible and self.max_concurrent is not None
            over = over and self._in_flight > (self.max_concurrent or 0)
        keep = lowered.get("connection", "").lower() != "close"
        json_type = [("Content-Type", "application/json")]
        declared: int | None = None
        try:
            if slow and not over:  # an over-capacity answer is immediate
                self._count("slow")
                await asyncio.sleep(self.slow_seconds)
            rule = next((s for p, s in rules if p(info)), None)
            if over:
                kind, status, data = "over_capacity", 429, b'{"code":"OverCapacity"}'
                out = [("Retry-After", str(self.retry_after)), *json_type]
            elif rule is not None:
                kind, status, out, data = "rule", rule, json_type, b'{"code":"InjectedRule"}'
            elif kind == "error":
                status, out = self.rng.choice(self.error_statuses), json_type
                data = b'{"code":"InjectedError","description":"injected server error"}'
            elif kind == "throttle":
                retry = str(self.retry_after)
                if self.rng.random() < self.retry_after_date_rate:
                    when = math.ceil(time.time() + self.retry_after)
                    retry = email.utils.formatdate(when, usegmt=True)
                status, out = 429, [("Retry-After", retry), *json_type]
                data = b'{"code":"TooManyRequests"}'
            elif kind == "html_error":
                status, out, data = 503, [("Content-Type", "text/html; charset=utf-8")], _HTML
            elif kind == "drop" and self.rng.choice(self.drop_modes) == "close":
                kind, status, out, data = "drop_close", None, [], b""
            else:
                got, status, out, data = await self._forward(client, method, target, headers, body)
                if kind == "drop" and got == "passed":
                    kind, declared = "drop_truncate", max(len(data), 64)
                    data = data[: len(data) // 2]
                else:
                    kind = got
            keep = keep and not kind.startswith("drop")
            with self._lock:  # count before answering: the client may read counters right away
                self._counters[kind] += 1
                if kind.startswith("drop"):
                    self._counters["drop"] += 1
                self._records.append(
                    RequestRecord(method, target, parsed, kind, status, time.monotonic())
                )
            if status is not None:
                await _send(writer, status, out, data, declared)
            return keep
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _forward(
        self,
        client: httpx.AsyncClient,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[str, int, list[tuple[str, str]], bytes]:
        """Send the request upstream; ``("passed", status, headers, raw body)`` or a 502."""
        out = [(k, v) for k, v in headers if k.lower() not in _HOP]  # Host is kept
        try:
            req = client.build_request(method, self.upstream + target, headers=out, content=body)
            resp = await client.send(req, stream=True)
            try:
                data = b"".join([chunk async for chunk in resp.aiter_raw()])
            finally:
                await resp.aclose()
        except httpx.HTTPError as exc:
            return "upstream_error", 502, [], f"upstream error: {exc!r}".encode()
        back = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in _HOP]
        return "passed", resp.status_code, back, data

    def _draw(self) -> tuple[str, bool]:
        """Pick the fault kind (or ``passed``) and whether to be slow; caller holds the lock."""
        slow = self.rng.random() < self.rates["slow_rate"]
        roll, edge = self.rng.random(), 0.0
        for kind in ("error", "throttle", "drop", "html_error"):
            edge += self.rates[f"{kind}_rate"]
            if roll < edge:
                return kind, slow
        return "passed", slow

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counters[kind] += 1


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    """Read one request (``None`` at a clean end of the connection)."""
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1"):
        raise ValueError(f"bad request line {line!r}")
    headers: list[tuple[str, str]] = []
    while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    lowered = {k.lower(): v for k, v in headers}
    if "chunked" in lowered.get("transfer-encoding", "").lower():
        body = b""
        while size := int((await reader.readline()).split(b";")[0], 16):
            chunk = await reader.readexactly(size + 2)
            body += chunk[:-2]
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
    else:
        body = await reader.readexactly(int(lowered.get("content-length", "0") or 0))
    return parts[0], parts[1], headers, body


async def _send(
    writer: asyncio.StreamWriter,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    declared: int | None = None,
) -> None:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    head = [f"HTTP/1.1 {status} {reason}"]
    head += [f"{k}: {v}" for k, v in headers]
    head.append(f"Content-Length: {len(body) if declared is None else declared}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
