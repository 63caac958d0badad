"""The gate on an entry's first split (stacfetch._engine.ramp)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx

from stacfetch._engine.pages import in_time
from stacfetch._engine.ramp import FLOOR_SECONDS, SLOWER, SLOWER_SHARED, Ramp
from stacfetch._model.events import ChunkSplit, ChunkStarted, PageFetched

from .fakeapi import FakeApi, make_items
from .test_engine import run


async def test_other_children_wait_for_the_first_page_then_run() -> None:
    ramp = Ramp()
    ramp.probed(0.2, 100)
    assert ramp.start({"a", "b", "c"})
    assert await ramp.admit("a")
    waiting = asyncio.ensure_future(ramp.admit("b"))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # held until the first child's page says whether splits pay
    assert not ramp.observe("a", 0.3, 800)  # a bigger page, a little slower: splits pay
    assert await waiting
    assert await ramp.admit("c")
    assert not ramp.expensive


async def test_a_slow_small_page_drops_the_children_not_sent() -> None:
    ramp = Ramp()
    ramp.probed(0.2, 100)
    ramp.start({"a", "b", "c"})
    assert await ramp.admit("a")
    waiting = asyncio.ensure_future(ramp.admit("b"))
    assert ramp.observe("a", SLOWER * 0.2 + FLOOR_SECONDS, 10)
    assert not await waiting
    assert ramp.dropped == {"b", "c"}
    assert ramp.superseded("a")


async def test_a_failed_first_child_opens_the_gate() -> None:
    ramp = Ramp()
    ramp.probed(0.2, 100)
    ramp.start({"a", "b"})
    await ramp.admit("a")
    waiting = asyncio.ensure_future(ramp.admit("b"))
    ramp.finished("a")  # it failed before any page: no verdict, the others run
    assert await waiting
    assert not ramp.expensive


def test_fast_pages_never_count_as_slow_and_only_the_first_split_is_gated() -> None:
    ramp = Ramp()
    ramp.probed(0.01, 100)
    assert ramp.start({"a", "b"})
    ramp.wave.add("a")
    assert not ramp.observe("a", FLOOR_SECONDS * 0.9, 1)  # 45x the probe, but quick
    assert not ramp.start({"x", "y"})
    unprobed = Ramp()
    assert not unprobed.start({"a", "b"})  # nothing to compare with


async def test_an_overdue_wave_page_gives_the_verdict_without_its_page() -> None:
    ramp = Ramp()
    ramp.probed(0.3, 100)
    ramp.start({"a", "b", "c"})
    assert await ramp.admit("a")
    assert ramp.sampling("a")
    assert ramp.deadline(100) == max(FLOOR_SECONDS, SLOWER * 0.3)
    assert ramp.deadline(1000) == SLOWER * 0.3 * 10  # a bigger page may take longer
    waiting = asyncio.ensure_future(ramp.admit("b"))
    assert ramp.overdue("a")
    assert not await waiting
    assert ramp.expensive
    assert ramp.dropped == {"b", "c"}
    assert not ramp.sampling("a")
    assert not ramp.overdue("a")  # one verdict


async def test_in_time_cancels_a_slow_request_unless_it_was_retried() -> None:
    slow = asyncio.ensure_future(asyncio.sleep(10))
    assert not await in_time(slow, 0.01, lambda: False)
    assert slow.cancelled()
    quick = asyncio.ensure_future(asyncio.sleep(0.001, result="page"))
    assert await in_time(quick, 1.0, lambda: False)
    assert quick.result() == "page"
    retried = asyncio.ensure_future(asyncio.sleep(0.05, result="page"))
    assert await in_time(retried, 0.01, lambda: True)  # its time says nothing: waited for
    assert not retried.cancelled()
    assert await retried == "page"


def test_a_server_shared_with_other_requests_needs_a_slower_page() -> None:
    alone, shared = Ramp(), Ramp(shared=True)
    for ramp in (alone, shared):
        ramp.probed(0.5, 100)
        ramp.start({"a", "b"})
        ramp.wave.add("a")
    assert shared.deadline(100) == SLOWER_SHARED * 0.5 > alone.deadline(100) == SLOWER * 0.5
    assert alone.observe("a", 2.0, 100)  # 4x its probe on a server it has to itself
    assert not shared.observe("a", 2.0, 100)  # 4x while other pages load it: load, not walks


async def test_a_quick_slice_search_opens_the_first_split_at_once() -> None:
    ramp = Ramp()
    assert ramp.filtered(FLOOR_SECONDS * 0.8, 1, shared=False) is False  # before the probe
    ramp.probed(0.2, 100)
    assert not ramp.start({"a", "b", "c"})  # the verdict is in: nothing is gated
    assert await ramp.admit("b")
    assert not ramp.expensive


async def test_a_slow_slice_search_gives_the_verdict_once_the_probe_answers() -> None:
    ramp = Ramp()
    assert ramp.filtered(SLOWER * 0.2 + 1.0, 1, shared=False) is None  # no probe yet
    assert ramp.probed(0.2, 100) is True  # now: splits cost more; no split is made
    assert ramp.expensive
    assert not ramp.start({"a", "b"})
    # a slow slice on a shared server needs the larger factor
    shared = Ramp()
    shared.probed(0.2, 100)
    assert shared.filtered(SLOWER * 0.2 * 1.5, 1, shared=True) is False
    assert not shared.expensive


async def test_a_slow_slice_search_after_the_split_leaves_the_verdict_to_the_wave() -> None:
    ramp = Ramp()
    ramp.probed(0.2, 100)
    assert ramp.start({"a", "b", "c"})
    assert await ramp.admit("a")
    waiting = asyncio.ensure_future(ramp.admit("b"))
    assert ramp.filtered(SLOWER * 0.2 + 1.0, 1, shared=False) is None  # only the wave drops
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert not ramp.observe("a", 0.25, 100)  # the wave's page says splits pay
    assert await waiting
    # while a quick one opens the gate before the wave child's page is back
    early = Ramp()
    early.probed(0.2, 100)
    early.start({"a", "b"})
    assert await early.admit("a")
    assert early.filtered(0.1, 1, shared=False) is False
    assert await early.admit("b")


class _SlowApi(FakeApi):
    """Every search answers after 0.2 s (an async MockTransport handler)."""

    async def __call__(self, request: httpx.Request) -> httpx.Response:  # type: ignore[override]
        if request.url.path == "/search":
            await asyncio.sleep(0.2)
        return super().__call__(request)


async def test_with_the_slice_search_the_children_do_not_wait_for_a_wave_page() -> None:
    items = make_items("a", 300, datetime(2020, 1, 1, tzinfo=timezone.utc), timedelta(hours=13))
    api = _SlowApi(items, counts=True)
    found, failures, events, _ = await run(api, workers=8, limit=20)
    assert not failures
    assert {it["id"] for it in found} == {it["id"] for it in items}
    split = next(e for e in events if isinstance(e, ChunkSplit))
    after = events[events.index(split) :]
    first_page = next(i for i, e in enumerate(after) if isinstance(e, PageFetched))
    started = [e for e in after[:first_page] if isinstance(e, ChunkStarted)]
    # the slice's search (one item, sent beside the probe) gave the verdict: the children left
    # together, not one alone for its page first
    assert len(started) > 1, started
