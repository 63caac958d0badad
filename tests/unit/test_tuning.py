"""The settings a run holds process-wide: the collector's threshold, httpcore's read size, and
the decoder processes' pipe capacity."""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpcore
import orjson
import pytest

from stacfetch import RetryConfig
from stacfetch._engine.decoder_pool import DecoderPool
from stacfetch._engine.http import HttpSession
from stacfetch._engine.search import SearchRequest
from stacfetch._engine.tuning import (
    RUN_READ_BYTES,
    RUN_THRESHOLD,
    gc_relaxed,
    large_reads,
    run_settings,
)
from stacfetch._testing.server import StacServer

from .fakeapi import make_items

UTC = timezone.utc


def _threshold() -> int:
    return gc.get_threshold()[0]


def _read_bytes() -> int:
    return httpcore.AsyncHTTP11Connection.READ_NUM_BYTES


SETTINGS = [
    pytest.param(gc_relaxed, _threshold, RUN_THRESHOLD, id="collector"),
    pytest.param(large_reads, _read_bytes, RUN_READ_BYTES, id="reads"),
]
Hold = Callable[[], AbstractContextManager[None]]


@pytest.mark.parametrize(("hold", "value", "raised"), SETTINGS)
def test_a_setting_nests_and_restores(hold: Hold, value: Callable[[], int], raised: int) -> None:
    before = value()
    assert before < raised  # the defaults are lower, so the test can tell
    with hold():
        assert value() >= raised
        with hold():
            assert value() >= raised
        assert value() >= raised  # the outer run still holds it
    assert value() == before


@pytest.mark.parametrize(("hold", "value", "raised"), SETTINGS)
def test_a_setting_restores_once_every_thread_is_done(
    hold: Hold, value: Callable[[], int], raised: int
) -> None:
    before = value()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with hold():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    with hold():
        thread.start()
        assert inside.wait(10)
    assert value() >= raised  # the other thread's run goes on
    release.set()
    thread.join()
    assert value() == before


def test_the_collector_stays_on_and_a_threshold_set_meanwhile_is_kept() -> None:
    before = gc.get_threshold()
    try:
        with gc_relaxed():
            assert gc.isenabled()
            gc.set_threshold(1234, *before[1:])
        assert gc.get_threshold()[0] == 1234
    finally:
        gc.set_threshold(*before)


def test_a_read_size_set_meanwhile_is_kept() -> None:
    before = _read_bytes()
    try:
        with large_reads():
            httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = 12345
        assert _read_bytes() == 12345
    finally:
        httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = before


def test_run_settings_hold_both() -> None:
    threshold, reads = _threshold(), _read_bytes()
    with run_settings():
        assert (_threshold(), _read_bytes()) >= (RUN_THRESHOLD, RUN_READ_BYTES)
    assert (_threshold(), _read_bytes()) == (threshold, reads)


async def test_pages_read_with_large_reads_are_the_same_pages() -> None:
    """A real server's multi-megabyte pages, read 64 KiB and then 256 KiB at a time."""
    items = make_items("big", 600, datetime(2021, 1, 1, tzinfo=UTC), timedelta(minutes=5))
    for item in items:
        item["properties"]["padding"] = "x" * 4000  # ~4 KB more per item: pages of ~2.5 MB
    with StacServer(items) as server:
        request = SearchRequest("POST", f"{server.url}/search", body={"limit": 600})
        bodies: list[bytes] = []

        async def keep(body: bytes) -> bytes:
            return body

        for hold in (None, large_reads):
            async with HttpSession(RetryConfig(), max_concurrency=2) as http:
                if hold is None:
                    bodies.append(await http.fetch(request, keep))
                    continue
                with hold():
                    assert _read_bytes() == RUN_READ_BYTES
                    bodies.append(await http.fetch(request, keep))
    assert len(bodies[0]) > 2_000_000
    assert bodies[0] == bodies[1]
    assert len(orjson.loads(bodies[1])["features"]) == 600


async def test_a_page_body_is_freed_when_dropped_not_by_the_collector() -> None:
    """httpx keeps each response in a reference cycle; a body it held would stay until the
    collector ran (rarely, with the run's threshold). With the collector off, eight 2.5 MB pages
    read and dropped leave less than two pages of memory behind (the server runs in this
    process and keeps a page of its own); with httpx reading the body, all eight stayed."""
    import tracemalloc

    items = make_items("big", 600, datetime(2021, 1, 1, tzinfo=UTC), timedelta(minutes=5))
    for item in items:
        item["properties"]["padding"] = "x" * 4000
    sizes: list[int] = []

    async def size(body: bytes) -> int:
        return len(body)

    with StacServer(items) as server:
        request = SearchRequest("POST", f"{server.url}/search", body={"limit": 600})
        async with HttpSession(RetryConfig(), max_concurrency=2) as http:
            await http.fetch(request, size)  # connections, imports: out of the count
            gc.collect()
            gc.disable()
            tracemalloc.start()
            try:
                for _ in range(8):
                    sizes.append(await http.fetch(request, size))
                held, _peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
                gc.enable()
    assert min(sizes) > 2_000_000
    assert held < 2 * min(sizes), f"{held:,} bytes still held after 8 pages of {min(sizes):,}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe capacity is Linux's")
async def test_decoder_pipes_are_widened() -> None:
    import fcntl

    import psutil

    getpipe = fcntl.F_GETPIPE_SZ  # type: ignore[attr-defined,unused-ignore]
    me = psutil.Process()
    before = {child.pid for child in me.children()}
    async with DecoderPool(1) as pool:
        await pool.start()
        assert await pool.ready() == 1
        (child,) = [
            c
            for c in me.children()
            if c.pid not in before and "stacfetch._engine.decoder" in " ".join(c.cmdline())
        ]
        # the decoder's own stdin and stdout, seen from outside (the pipes, opened anew)
        for fd in (0, 1):
            pipe = os.open(f"/proc/{child.pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
            try:
                assert fcntl.fcntl(pipe, getpipe) == 1 << 20, f"fd {fd}"
            finally:
                os.close(pipe)


def test_results_are_built_with_the_threshold_raised_and_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The frame, the dicts and the per-entry frames of a finished run are built as the run
    went on: with the collector's threshold raised (the run's objects are not walked again and
    again), and the user's threshold back afterwards."""
    from stacfetch import Entry, IngestConfig
    from stacfetch._formats.arrow import items_to_arrow
    from stacfetch._formats.sources import table_to_items
    from stacfetch._formats.tables import arrow_to_geodataframe
    from stacfetch._run import collect
    from stacfetch._run.run import Run

    items = make_items("c1", 30, datetime(2021, 1, 1, tzinfo=UTC), timedelta(hours=1))
    run = Run([Entry("https://x/stac", "c1")], IngestConfig())
    key = run.entries[0].key
    run.tables[key] = [items_to_arrow(items[:10]), items_to_arrow(items[10:])]
    seen: list[int] = []

    def frame(table: Any) -> Any:
        seen.append(_threshold())
        return arrow_to_geodataframe(table)

    def dicts(table: Any) -> Any:
        seen.append(_threshold())
        return table_to_items(table)

    monkeypatch.setattr(collect, "arrow_to_geodataframe", frame)
    monkeypatch.setattr(collect, "table_to_items", dicts)
    saved = gc.get_threshold()
    gc.set_threshold(700, *saved[1:])  # a user's default, below the run's: the raise shows
    try:
        before = gc.get_threshold()
        gdf = collect.result_frame(run)
        frames = collect.entry_frames(run)
        records = collect.result_dicts(run)
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*saved)
    assert seen == [RUN_THRESHOLD] * 3
    assert sorted(gdf["id"]) == sorted(i["id"] for i in items)
    assert len(frames[run.entries[0].label]) == 30
    assert {r["id"] for r in records} == {i["id"] for i in items}
