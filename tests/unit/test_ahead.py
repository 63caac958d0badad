"""A chunk's next page is asked for while its page decodes (stacfetch._engine.chunk), and a page
asked for ahead that is not to be used is dropped unread: no item lost or kept twice."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from stacfetch._engine import chunk as chunk_module
from stacfetch._engine import fetch as fetch_module
from stacfetch._engine import http as http_module
from stacfetch._engine.decoder import DecodedPage, decode_page
from stacfetch._engine.decoder_pool import DecoderPool
from stacfetch._engine.splitting import Splitter
from stacfetch._model.events import fanout

from .fakeapi import FakeApi, make_items
from .test_engine import reference, run

UTC = timezone.utc
ITEMS = make_items("a", 300, datetime(2020, 1, 1, tzinfo=UTC), timedelta(hours=13))


class SlowDecoder(DecoderPool):
    """Decodes in this process, 30 ms after a page arrives: its head is known long before its
    features. Keeps when each decode ran."""

    def __init__(self) -> None:
        super().__init__(0)
        self.spans: list[tuple[float, float]] = []

    async def decode(
        self, content: bytes, collection: str | None, *, head: bool = True
    ) -> DecodedPage:
        began = time.monotonic()
        await asyncio.sleep(0.03)
        page = decode_page(content, collection, head=head)
        self.spans.append((began, time.monotonic()))
        return page


class TimedApi(FakeApi):
    """The API, noting when each search arrived."""

    def __init__(self, items: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(items, **kwargs)
        self.arrivals: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/search":
            self.arrivals.append(time.monotonic())
        return super().__call__(request)


@pytest.fixture
def one_chunk_per_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module, "CHUNKS_PER_CONNECTION", 1)


@pytest.mark.usefixtures("one_chunk_per_connection")
async def test_the_next_page_leaves_while_this_one_decodes() -> None:
    timed = api = TimedApi(ITEMS, counts=True)
    decoder = SlowDecoder()
    # one worker: a search arriving during a decode can only be a page asked for ahead
    items, failures, _, _ = await run(api, workers=1, limit=10, decoder=decoder)
    ids = [it["id"] for it in items]
    assert not failures
    assert len(ids) == len(set(ids))
    assert set(ids) == reference(api)
    during = [t for t in timed.arrivals if any(a < t < b for a, b in decoder.spans)]
    assert len(during) > len(timed.arrivals) // 2, (len(during), len(timed.arrivals))


@pytest.mark.usefixtures("one_chunk_per_connection")
async def test_without_counts_a_page_waits_for_the_items_of_the_last() -> None:
    # without counts a split depends on what was delivered: nothing is asked for ahead
    timed = api = TimedApi(ITEMS, counts=False)
    decoder = SlowDecoder()
    items, failures, _, _ = await run(api, workers=1, limit=10, decoder=decoder)
    assert not failures
    assert {it["id"] for it in items} == reference(api)
    # the search of a slice of the span runs beside the probe; no other search overlaps
    during = [t for t in timed.arrivals if any(a < t < b for a, b in decoder.spans)]
    assert len(during) <= 1


async def test_a_chunk_waiting_for_its_decode_leaves_its_connection_to_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limiters: list[Any] = []
    original = http_module.AdaptiveLimiter.__init__

    def keep(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        limiters.append(self)

    monkeypatch.setattr(http_module.AdaptiveLimiter, "__init__", keep)
    timed = api = TimedApi(ITEMS, counts=False)  # no counts: nothing is asked for ahead
    decoder = SlowDecoder()
    items, failures, _, _ = await run(api, workers=1, limit=10, decoder=decoder)
    assert not failures
    assert {it["id"] for it in items} == reference(api)
    during = [t for t in timed.arrivals if any(a < t < b for a, b in decoder.spans)]
    assert len(during) > 1  # other chunks' pages, while one decodes
    assert [limiter.max_in_flight for limiter in limiters] == [1]  # one connection, still


class EagerSplitter(Splitter):
    """Says every page pages on, so pages are asked for ahead even where a split follows."""

    def pages_on(self, *args: Any, **kwargs: Any) -> bool:
        return True


@pytest.mark.parametrize("counts", [True, False])
async def test_a_page_asked_for_ahead_but_not_used_is_dropped(
    counts: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped: list[Any] = []
    original = chunk_module._drop

    async def counting(ahead: Any) -> None:
        dropped.append(ahead)
        await original(ahead)

    monkeypatch.setattr(chunk_module, "_drop", counting)
    api = FakeApi(ITEMS, counts=counts)
    events: list[Any] = []
    splitter = EagerSplitter(workers=4, sink=fanout(events.append))
    items, failures, _, _ = await run(
        api, workers=4, limit=10, decoder=SlowDecoder(), splitter=splitter
    )
    ids = [it["id"] for it in items]
    assert not failures
    assert len(ids) == len(set(ids))  # nothing of a dropped page was kept
    assert set(ids) == reference(api)  # and nothing it held is missing
    assert dropped, "no page was dropped: the test proves nothing"
