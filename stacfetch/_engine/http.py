"""The only place httpx lives: the client, retries with backoff, shared rate limits, redaction.

Retry policy:

- 429, and 403 carrying throttling hints: back off exponentially with jitter, honouring
  ``Retry-After`` (seconds or HTTP date) up to ``backoff_max``; every worker on that host slows
  down too (:class:`AdaptiveLimiter`: AIMD on the number of requests in flight, plus a shared
  pause until the ``Retry-After`` time).
- 408, 500, 502, 503, 504 (and 520-524), connection errors, timeouts, truncated bodies and
  invalid JSON in a 200: retried ``max_retries`` times, POST searches included (they are
  idempotent), then :class:`~stacfetch.FetchError`.
- Any other 4xx: no blind retry; fails at once.

Credentials (``headers``, ``request_modifier``) are only applied to requests whose origin is
one of the catalogs' own; a ``next`` link pointing elsewhere gets neither. Descriptions of
requests kept in errors and failure records are redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson

from .._model.config import RetryConfig
from .._model.errors import FetchError
from .decoder import InvalidPageContent, load_object
from .search import SearchRequest

__all__ = [
    "AdaptiveLimiter",
    "HttpSession",
    "origin_of",
    "parse_retry_after",
    "redact_body",
    "redact_url",
]

RETRYABLE_STATUS = frozenset({408, 500, 502, 503, 504, 520, 521, 522, 523, 524})
"""Status codes retried as transient server errors."""

SECRET_NAMES = re.compile(
    r"(pass(word|wd)?|secret|api[-_]?key|apikey|access[-_]?token|auth|credential|"
    r"signature|^sig$|^key$|subscription[-_]key|security[-_]token|^code$|session)",
    re.IGNORECASE,
)
"""Names of query parameters, headers and body keys whose values are credentials (redacted)."""
_THROTTLE_HINT = re.compile(rb"rate.?limit|throttl|too many requests|slow down", re.IGNORECASE)
REDACTED = "***"

RetryCallback = Callable[[int, "int | None", str, float], None]
"""``on_retry(attempt, status_code, error, delay)``."""
T = TypeVar("T")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased; default ports made explicit.

    Example:
        >>> origin_of("HTTPS://Example.com/stac/search?x=1")
        'https://example.com:443'
    """
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def redact_url(url: str) -> str:
    """Remove user info and the values of secret-looking query parameters.

    Paging ``token`` parameters are kept: they are cursors, not credentials.

    Example:
        >>> redact_url("https://u:p@x.org/search?token=next:a&api_key=s3cr3t&sig=abc")
        'https://x.org/search?token=next%3Aa&api_key=%2A%2A%2A&sig=%2A%2A%2A'
    """
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = [
        (k, REDACTED if SECRET_NAMES.search(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


def redact_body(body: Any) -> Any:
    """A copy of a JSON body with the values of secret-looking keys replaced by ``***``.

    Example:
        >>> redact_body({"limit": 10, "auth": {"password": "x"}, "token": "next:c:1"})
        {'limit': 10, 'auth': '***', 'token': 'next:c:1'}
    """
    if isinstance(body, Mapping):
        return {
            k: (REDACTED if SECRET_NAMES.search(str(k)) else redact_body(v))
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [redact_body(v) for v in body]
    return body


def describe(req: SearchRequest) -> dict[str, Any]:
    """A redacted, JSON-friendly description of a request (no headers, no secrets)."""
    url = req.url
    if req.params:
        url = f"{url}?{urlencode(dict(req.params))}"
    return {"method": req.method, "url": redact_url(url), "body": redact_body(req.body)}


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Example:
        >>> parse_retry_after("3")
        3.0
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0)
        5.0
        >>> parse_retry_after("soon") is None
        True
    """
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class AdaptiveLimiter:
    """Requests in flight to one host, shared by every worker: AIMD on 429, shared pause.

    The limit starts at ``max_limit``; a throttling answer halves it (at most once per
    ``cooldown`` seconds) and pauses all new requests until its ``Retry-After`` time; each
    success adds ``1/limit`` back, so it recovers in about ``limit`` round trips.

    Example:
        >>> lim = AdaptiveLimiter(16)
        >>> lim.on_throttle(None); lim.limit
        8.0
    """

    def __init__(self, max_limit: int, *, cooldown: float = 1.0) -> None:
        self.max_limit = max_limit
        self.limit = float(max_limit)
        self.cooldown = cooldown
        self.in_flight = 0
        self.max_in_flight = 0
        self.paused_until = 0.0
        self.throttles = 0
        self._last_decrease = -1e9
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot (and for any shared pause to end), hold it for one request."""
        cond = self._condition()
        async with cond:
            while True:
                wait = self.paused_until - time.monotonic()
                if wait > 0:
                    with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                        await asyncio.wait_for(cond.wait(), timeout=wait)
                elif self.in_flight >= max(1, int(self.limit)):
                    await cond.wait()
                else:
                    break
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            async with cond:
                self.in_flight -= 1
                cond.notify_all()

    def on_success(self) -> None:
        """Additive increase after a successful request."""
        self.limit = min(float(self.max_limit), self.limit + 1.0 / self.limit)

    def on_throttle(self, retry_after: float | None) -> None:
        """Multiplicative decrease, and a shared pause when the server said how long."""
        now = time.monotonic()
        self.throttles += 1
        if now - self._last_decrease >= self.cooldown:
            self.limit = max(1.0, self.limit / 2)
            self._last_decrease = now
        if retry_after:
            self.paused_until = max(self.paused_until, now + retry_after)


class HttpSession:
    """An ``httpx.AsyncClient`` with the retry policy, per-host limiters and credential rules.

    Example:
        >>> async def main() -> dict:
        ...     async with HttpSession(RetryConfig(), max_concurrency=8) as http:
        ...         return await http.get_json(SearchRequest("GET", "https://x.org/stac"))
    """

    def __init__(
        self,
        retry: RetryConfig,
        *,
        max_concurrency: int,
        headers: Mapping[str, str] | None = None,
        request_modifier: Callable[[Any], Any] | None = None,
        trusted_origins: set[str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.retry = retry
        self.max_concurrency = max_concurrency
        self.headers = dict(headers or {})
        self.request_modifier = request_modifier
        self.trusted_origins = set(trusted_origins or ())
        self.limiters: dict[str, AdaptiveLimiter] = {}
        self.requests_sent = 0
        self._rng = rng or random.Random()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(retry.timeout, connect=retry.connect_timeout, pool=None),
            limits=httpx.Limits(
                max_connections=max_concurrency * 2, max_keepalive_connections=max_concurrency
            ),
            follow_redirects=True,
            transport=transport,
            headers={"User-Agent": "stacfetch", "Accept": "application/geo+json, application/json"},
        )

    async def __aenter__(self) -> HttpSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._client.aclose()

    def limiter(self, url: str) -> AdaptiveLimiter:
        """The shared limiter of a URL's host."""
        origin = origin_of(url)
        if origin not in self.limiters:
            self.limiters[origin] = AdaptiveLimiter(self.max_concurrency)
        return self.limiters[origin]

    def _build(self, req: SearchRequest) -> httpx.Request:
        trusted = origin_of(req.url) in self.trusted_origins
        headers = dict(self.headers) if trusted else {}
        headers.update(req.headers or {})
        content = orjson.dumps(req.body) if req.body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        request = self._client.build_request(
            req.method,
            req.url,
            params=dict(req.params) if req.params else None,
            headers=headers,
            content=content,
        )
        if trusted and self.request_modifier is not None:
            modified = self.request_modifier(request)
            if isinstance(modified, httpx.Request):
                request = modified
        return request

    def _backoff(self, attempt: int) -> float:
        return self.retry.backoff_delay(attempt, rng=self._rng)

    async def get_json(
        self, req: SearchRequest, *, on_retry: RetryCallback | None = None
    ) -> dict[str, Any]:
        """Send ``req`` under the retry policy and return the JSON object it answers.

        Raises :class:`~stacfetch.FetchError` (with a redacted request) when it fails for good.
        """
        return await self.fetch(req, _decode_json, on_retry=on_retry)

    async def fetch(
        self,
        req: SearchRequest,
        decode: Callable[[bytes], Awaitable[T]],
        *,
        on_retry: RetryCallback | None = None,
    ) -> T:
        """Send ``req`` under the retry policy and return ``await decode(body)`` of the answer.

        ``decode`` raising :class:`~stacfetch._engine.decoder.InvalidPageContent` of kind ``"json"``
        counts as a bad answer and is retried; other exceptions propagate.
        """
        limiter = self.limiter(req.url)
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            retry_after: float | None = None
            throttled = False
            try:
                async with limiter.slot():
                    self.requests_sent += 1
                    response = await self._client.send(self._build(req), stream=True)
                    try:
                        status = response.status_code
                        content = await _body(response)
                    finally:
                        await response.aclose()
                if 200 <= status < 300:
                    try:
                        data = await decode(content)
                    except InvalidPageContent as exc:
                        if exc.kind != "json":
                            raise
                        raise _Retryable("InvalidJSON", f"{exc.message} in a {status}") from None
                    limiter.on_success()
                    return data
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                throttled = status == 429 or (
                    status == 403
                    and (retry_after is not None or bool(_THROTTLE_HINT.search(content[:2000])))
                )
                reason = f"{status} {response.reason_phrase}: {_snippet(content)}"
                if throttled:
                    pause = (
                        None if retry_after is None else min(retry_after, self.retry.backoff_max)
                    )
                    limiter.on_throttle(pause)
                    raise _Retryable("Throttled", reason)
                if status in RETRYABLE_STATUS:
                    raise _Retryable("HTTPStatusError", reason)
                raise FetchError(
                    reason,
                    status_code=status,
                    request=describe(req),
                    attempts=attempt,
                    error_type="HTTPStatusError",
                )
            except _Retryable as exc:
                error_type, message = exc.error_type, exc.message
            except httpx.TimeoutException as exc:
                error_type, message = type(exc).__name__, f"timed out: {exc or 'no answer'}"
            except httpx.TransportError as exc:
                error_type, message = type(exc).__name__, str(exc) or type(exc).__name__
            if attempt > self.retry.max_retries:
                raise FetchError(
                    message,
                    status_code=status,
                    request=describe(req),
                    attempts=attempt,
                    error_type=error_type,
                    retryable=True,
                )
            delay = self._backoff(attempt)
            if throttled and retry_after is not None:
                delay = max(delay, min(retry_after, self.retry.backoff_max))
            if on_retry is not None:
                on_retry(attempt, status, f"{error_type}: {message}", delay)
            await asyncio.sleep(delay)


async def _body(response: httpx.Response) -> bytes:
    """The body of a streamed ``response``, held by no one but the caller.

    httpx keeps a response and its stream in a reference cycle, so a body it reads itself
    (``aread``) lives until the cyclic collector runs, and a run raises the collector's
    threshold: every 12 MB page stayed in memory for seconds. Read here, the body is freed as
    soon as the caller drops it; the response left in the cycle is small.
    """
    return b"".join([part async for part in response.aiter_bytes()])


async def _decode_json(content: bytes) -> dict[str, Any]:
    return load_object(content)


class _Retryable(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _snippet(content: bytes, size: int = 200) -> str:
    text = content[:size].decode("utf-8", "replace")
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", text).strip() or "(empty body)"
