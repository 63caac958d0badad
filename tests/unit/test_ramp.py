"""The gate on an entry's first split (stacfetch._engine.ramp)."""

from __future__ import annotations

import asyncio

from stacfetch._engine.pages import in_time
from stacfetch._engine.ramp import FLOOR_SECONDS, SLOWER, SLOWER_SHARED, Ramp


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
