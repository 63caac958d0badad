"""A server where a search with an added filter costs a whole walk of the catalog, one at a
time (stac-fastapi-static reads every item file to evaluate ``datetime``): splitting must not
make stacfetch many times slower than paging the plain search, and must stay exact.

``StacServer(filter_delay=...)`` makes every search with a ``datetime`` or ``bbox`` filter
wait that long, serialised; the user's own search (no filter) stays fast.
"""

from __future__ import annotations

from typing import Any

import pytest

import stacfetch
from stacfetch._engine.records import PROBE_LIMIT
from stacfetch._model.events import ChunkSplit, ChunkStarted, Notice, PageFetched
from stacfetch._testing.server import StacServer
from tests.support.events import Events
from tests.support.shapes import make_shape

pytestmark = pytest.mark.integration

N = 2000


def fetch(server: StacServer, concurrency: int = 16) -> tuple[list[str], Any, Events]:
    events = Events()
    ing = stacfetch.Ingestor(
        server.url,
        collections=["c"],
        concurrency=concurrency,
        limit=500,
        progress=events,
        decoders=0,
    )
    gdf = ing.ingest()
    return list(gdf["id"]), ing.failures, events


@pytest.mark.parametrize("counts", [True, False], ids=["counts", "no-counts"])
@pytest.mark.parametrize("shape", ["uniform", "one-timestamp"])
def test_expensive_filters_stop_the_split_and_page_the_search(shape: str, counts: bool) -> None:
    items = make_shape(shape, N)
    with StacServer(items, order="id", counts=counts, filter_delay=1.0) as server:
        ids, failures, events = fetch(server)
        searches = server.counters["searches"]
    assert len(ids) == len(set(ids)) == N
    assert set(ids) == {it["id"] for it in items}
    assert not failures
    [notice] = events.of(Notice)
    assert "much slower than the search itself" in notice.message
    # the probe, one child (one walk), the plain search's pages: not 16 walks at once
    assert searches <= 2 + N // 500 + 1, f"{searches} searches"


@pytest.mark.parametrize("shape", ["uniform", "one-timestamp"])
def test_cheap_filters_split_as_usual(shape: str) -> None:
    items = make_shape(shape, N)
    with StacServer(items, order="id", counts=False, page_delay=0.05) as server:
        ids, failures, events = fetch(server)
        searches = server.counters["searches"]
    assert set(ids) == {it["id"] for it in items}
    assert len(ids) == N
    assert not failures
    assert not events.of(Notice)
    assert events.of(ChunkSplit)
    assert searches > 2 + N // 500 + 1  # the children ran


def wave_child(events: Events) -> str:
    """The chunk that ran first among the children of the entry's first split."""
    first_split = events.of(ChunkSplit)[0]
    started = [e.chunk_id for e in events.of(ChunkStarted)]
    return started[started.index(first_split.chunk_id) + 1]


def test_an_overdue_first_child_is_abandoned_without_waiting_for_its_page() -> None:
    items = make_shape("uniform", N)
    # a filtered page takes 3 s; the verdict's bound is 3x the probe's time (at least 0.5 s)
    with StacServer(items, order="id", counts=False, filter_delay=3.0) as server:
        ids, failures, events = fetch(server)
    assert set(ids) == {it["id"] for it in items}
    assert len(ids) == N
    assert not failures
    assert events.of(Notice)
    wave = wave_child(events)
    assert not [e for e in events.of(PageFetched) if e.chunk_id == wave]  # abandoned


def test_the_first_child_samples_with_a_small_page_then_pages_in_full() -> None:
    items = make_shape("uniform", N)
    with StacServer(items, order="id", counts=False, page_delay=0.05) as server:
        ids, _, events = fetch(server, concurrency=2)  # 4 children of ~500 items
    assert set(ids) == {it["id"] for it in items}
    wave = wave_child(events)
    pages = [e.new + e.duplicates for e in events.of(PageFetched) if e.chunk_id == wave]
    assert pages[0] <= PROBE_LIMIT < 500  # the verdict's page: probe-sized
    assert max(pages) > PROBE_LIMIT  # then the child pages with the user's limit
