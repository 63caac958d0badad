"""Retry policy, backoff timing, Retry-After, shared throttling and redaction (MockTransport)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import httpx
import pytest

from stacfetch import FetchError, RetryConfig
from stacfetch._engine.http import (
    AdaptiveLimiter,
    HttpSession,
    describe,
    origin_of,
    parse_retry_after,
    redact_body,
    redact_url,
)
from stacfetch._engine.search import SearchRequest

FAST = RetryConfig(max_retries=3, backoff_base=0.001, backoff_max=0.05)
REQ = SearchRequest("POST", "https://api.example.org/search", body={"limit": 1})


def session(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> HttpSession:
    kw.setdefault("trusted_origins", {origin_of("https://api.example.org")})
    return HttpSession(
        kw.pop("retry", FAST),  # type: ignore[arg-type]
        max_concurrency=4,
        transport=httpx.MockTransport(handler),
        **kw,  # type: ignore[arg-type]
    )


def scripted(
    *responses: httpx.Response | Exception,
) -> tuple[Callable[..., httpx.Response], list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


OK = httpx.Response(200, json={"type": "FeatureCollection", "features": []})


async def test_retries_5xx_then_succeeds() -> None:
    handler, seen = scripted(httpx.Response(503), httpx.Response(502), OK)
    retries: list[tuple[int, int | None]] = []
    async with session(handler) as http:
        data = await http.get_json(REQ, on_retry=lambda a, s, e, d: retries.append((a, s)))
    assert data["features"] == []
    assert len(seen) == 3
    assert retries == [(1, 503), (2, 502)]
    assert all(r.method == "POST" for r in seen)  # POST searches are retried too


async def test_gives_up_after_max_retries_with_redacted_request() -> None:
    handler, seen = scripted(httpx.Response(500, text="<html><b>boom</b></html>"))
    req = SearchRequest("GET", "https://api.example.org/search", params={"api_key": "s3cr3t"})
    async with session(handler) as http:
        with pytest.raises(FetchError) as info:
            await http.get_json(req)
    assert len(seen) == FAST.max_retries + 1
    err = info.value
    assert err.status_code == 500
    assert err.attempts == 4
    assert "boom" in str(err)
    assert "s3cr3t" not in repr(err.request)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_other_4xx_fail_without_retry(status: int) -> None:
    handler, seen = scripted(httpx.Response(status, json={"detail": "nope"}))
    async with session(handler) as http:
        with pytest.raises(FetchError) as info:
            await http.get_json(REQ)
    assert len(seen) == 1
    assert info.value.status_code == status


async def test_403_with_throttling_hint_is_retried() -> None:
    handler, seen = scripted(httpx.Response(403, text="Rate limit exceeded"), OK)
    async with session(handler) as http:
        await http.get_json(REQ)
    assert len(seen) == 2


async def test_plain_403_is_not_retried() -> None:
    handler, seen = scripted(httpx.Response(403, text="Forbidden"))
    async with session(handler) as http:
        with pytest.raises(FetchError):
            await http.get_json(REQ)
    assert len(seen) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
)
async def test_transport_errors_are_retried(failure: Exception) -> None:
    handler, seen = scripted(failure, OK)
    async with session(handler) as http:
        await http.get_json(REQ)
    assert len(seen) == 2


async def test_invalid_json_in_200_is_retried() -> None:
    handler, seen = scripted(httpx.Response(200, text="<html>maintenance</html>"), OK)
    async with session(handler) as http:
        await http.get_json(REQ)
    assert len(seen) == 2


async def test_429_honours_retry_after_and_slows_everyone() -> None:
    handler, _ = scripted(httpx.Response(429, headers={"Retry-After": "0.3"}), OK)
    delays: list[float] = []
    async with session(handler, retry=RetryConfig(max_retries=2, backoff_base=0.001)) as http:
        t0 = time.monotonic()
        await http.get_json(REQ, on_retry=lambda a, s, e, d: delays.append(d))
        elapsed = time.monotonic() - t0
        limiter = http.limiter(REQ.url)
    assert delays == [pytest.approx(0.3)]
    assert elapsed >= 0.3
    assert limiter.throttles == 1
    assert limiter.limit < 4


async def test_retry_after_is_capped() -> None:
    handler, _ = scripted(httpx.Response(429, headers={"Retry-After": "3600"}), OK)
    delays: list[float] = []
    cfg = RetryConfig(max_retries=1, backoff_base=0.001, backoff_max=0.05)
    async with session(handler, retry=cfg) as http:
        await http.get_json(REQ, on_retry=lambda a, s, e, d: delays.append(d))
    assert delays[0] <= 0.05


def test_backoff_is_exponential_capped_and_jittered() -> None:
    cfg = RetryConfig(backoff_base=0.5, backoff_max=8)
    assert [cfg.backoff_delay(a, jitter=False) for a in range(1, 7)] == [0.5, 1, 2, 4, 8, 8]
    rng = random.Random(1)
    draws = [cfg.backoff_delay(3, rng=rng) for _ in range(200)]
    assert min(draws) >= 1.0
    assert max(draws) <= 2.0
    assert len(set(draws)) > 100


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


async def test_limiter_caps_in_flight_and_recovers() -> None:
    limiter = AdaptiveLimiter(3)
    active = peak = 0

    async def job() -> None:
        nonlocal active, peak
        async with limiter.slot():
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1
            limiter.on_success()

    await asyncio.gather(*(job() for _ in range(20)))
    assert peak == 3
    limiter.on_throttle(None)
    limiter.on_throttle(None)  # within the cooldown: halved only once
    assert limiter.limit == 1.5
    for _ in range(30):
        limiter.on_success()
    assert limiter.limit == 3


async def test_credentials_never_cross_origin() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return OK

    def sign(request: httpx.Request) -> None:
        request.headers["X-Signature"] = "signed"

    async with session(
        handler, headers={"Authorization": "Bearer T0P"}, request_modifier=sign
    ) as http:
        await http.get_json(SearchRequest("GET", "https://api.example.org/search"))
        await http.get_json(SearchRequest("GET", "https://elsewhere.example.com/search"))
    assert seen[0].headers["Authorization"] == "Bearer T0P"
    assert seen[0].headers["X-Signature"] == "signed"
    assert "Authorization" not in seen[1].headers
    assert "X-Signature" not in seen[1].headers


def test_redaction() -> None:
    url = "https://user:pw@api.example.org/s?token=next:c:1&subscription-key=abc&SIG=zz&limit=5"
    red = redact_url(url)
    assert "pw" not in red
    assert "abc" not in red
    assert "zz" not in red
    assert "next%3Ac%3A1" in red
    assert "limit=5" in red
    body = redact_body({"filter": {"op": "="}, "api_key": "k", "nested": [{"password": "p"}]})
    assert body == {"filter": {"op": "="}, "api_key": "***", "nested": [{"password": "***"}]}
    d = describe(SearchRequest("GET", "https://api.example.org/s", params={"access_token": "x"}))
    assert "x" not in d["url"].split("access_token=")[1]
