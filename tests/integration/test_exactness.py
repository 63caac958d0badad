"""Exactly once on every server behaviour: default orders, paging quirks, buggy filters, shapes.

Each case serves one collection from a real HTTP server on 127.0.0.1 (``StacServer``) that
behaves like one of the real implementations stacfetch meets: pgstac's datetime descending,
ascending, sorted by id (ids embed dates, so a page *looks* sorted by datetime), in the order
items were loaded (``rustac serve``), datetime descending with range items last; with and
without ``numberMatched``; without ``next`` links; with a datetime filter that drops items.
The result must be exactly the items a plain client gets from the same search: none lost,
none twice, and no failure where the server answered everything.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

import stacfetch
from stacfetch._model.events import ChunkSplit, Notice
from stacfetch._testing.server import StacServer
from tests.support.events import Events
from tests.support.shapes import SHAPES, make_shape

pytestmark = pytest.mark.integration

ORDERS = ("datetime-desc", "datetime-asc", "id", "insertion", "desc-nulls-last")
N = 1200


def mixed_items(n: int) -> list[dict[str, Any]]:
    """Instants and range items (``datetime: null``) together, ids in date order."""
    items = make_shape("uniform", n - n // 10, "c") + make_shape("annual", n // 10, "c", seed=1)
    for i, item in enumerate(sorted(items, key=lambda it: str(it["properties"]))):
        item["id"] = f"S2A_MSIL2A_{i:06d}"
    return items


async def fetch(server: StacServer, **kwargs: Any) -> tuple[list[str], Any, Events]:
    events = Events()
    ing = stacfetch.Ingestor(
        server.url,
        collections=["c"],
        progress=events,
        decoders=0,
        **{"concurrency": 8, "limit": 100, **kwargs},
    )
    gdf = await ing.aingest()
    return list(gdf["id"]), ing.failures, events


def plain(server: StacServer, **search: Any) -> list[str]:
    """What a plain sequential client gets: the user's own search, every ``next`` link."""
    ids: list[str] = []
    body: dict[str, Any] | None = {"collections": ["c"], "limit": 500, **search}
    with httpx.Client() as client:
        while body is not None:
            page = client.post(f"{server.url}/search", json=body).json()
            ids += [f["id"] for f in page["features"]]
            nxt = [ln for ln in page["links"] if ln["rel"] == "next"]
            body = nxt[0]["body"] if nxt else None
    return ids


def exact(ids: list[str], items: list[dict[str, Any]]) -> None:
    assert len(ids) == len(set(ids)), "duplicates"
    missing = {it["id"] for it in items} - set(ids)
    extra = set(ids) - {it["id"] for it in items}
    assert not missing, f"{len(missing)} items lost"
    assert not extra, f"{len(extra)} items that do not match"


@pytest.mark.parametrize("counts", [True, False], ids=["counts", "no-counts"])
@pytest.mark.parametrize("order", ORDERS)
async def test_every_default_order(order: str, counts: bool) -> None:
    items = mixed_items(N)
    with StacServer(items, order=order, counts=counts) as server:
        ids, failures, events = await fetch(server)
    exact(ids, items)
    assert not failures
    assert events.of(ChunkSplit), "the search was not split: the test proves nothing"
    assert server.counters["items_served"] <= 2.0 * N


@pytest.mark.parametrize("counts", [True, False], ids=["counts", "no-counts"])
@pytest.mark.parametrize("shape", SHAPES)
async def test_every_shape_splits_and_stays_exact(shape: str, counts: bool) -> None:
    items = make_shape(shape, N)
    with StacServer(items, order="id", counts=counts) as server:
        ids, failures, events = await fetch(server)
    exact(ids, items)
    assert not failures
    splits = events.of(ChunkSplit)
    assert splits
    if shape == "one-timestamp":  # time cannot separate these items
        assert {s.axis for s in splits} == {"space"}
    if shape == "annual":  # time children would each get every item of their years
        assert splits[0].axis == "space"
    served = server.counters["items_served"]
    assert served <= (1.6 if counts else 2.6) * N, f"{served} items on the wire for {N}"


@pytest.mark.parametrize("counts", [True, False], ids=["counts", "no-counts"])
@pytest.mark.parametrize("shape", ["uniform", "one-timestamp"])
async def test_server_without_next_links(shape: str, counts: bool) -> None:
    """Only the first page of every search, no ``next``: splitting must reach every item."""
    items = make_shape(shape, N)
    with StacServer(items, order="insertion", counts=counts, next_links=False) as server:
        ids, failures, _ = await fetch(server)
    exact(ids, items)
    assert not failures


async def test_buggy_datetime_filter_falls_back_to_the_users_search() -> None:
    """A server whose datetime filter drops range items: a plain client (no datetime) gets all
    of them, so must stacfetch; the disagreement is noticed and said."""
    items = mixed_items(N)
    with StacServer(
        items, order="id", datetime_filter_misses=lambda it: it["properties"]["datetime"] is None
    ) as server:
        ids, failures, events = await fetch(server)
    exact(ids, items)
    assert not failures
    notices = events.of(Notice)
    assert notices
    assert "time filtering disagrees" in notices[0].message


async def test_buggy_datetime_filter_without_counts_or_next_links_is_not_silent() -> None:
    """No counts, no paging and a datetime filter that drops items: the probe's page holds some
    of them, so the disagreement shows; stacfetch splits in space instead and gets everything
    (a plain client gets one page from such a server). Had the page held none of the dropped
    kind, nothing could tell: docs/decisions/0001 says so."""
    items = mixed_items(N)
    random.Random(0).shuffle(items)
    with StacServer(
        items,
        order="insertion",
        counts=False,
        next_links=False,
        datetime_filter_misses=lambda it: it["properties"]["datetime"] is None,
    ) as server:
        ids, failures, events = await fetch(server)
    assert not failures
    exact(ids, items)
    assert events.of(Notice)


@pytest.mark.parametrize("order", ["id", "desc-nulls-last"])
async def test_user_datetime_and_bbox_are_kept(order: str) -> None:
    items = mixed_items(N)
    box = [-60.0, -30.0, 90.0, 45.0]
    window = "2021-03-01T00:00:00Z/2021-09-30T23:59:59.999999Z"
    with StacServer(items, order=order) as server:
        ids, failures, _ = await fetch(server, datetime=window, bbox=box)
        reference = plain(server, datetime=window, bbox=box)
    assert not failures
    assert len(reference) > 100
    assert sorted(ids) == sorted(reference)


async def test_intersects_tiles_cover_the_users_geometry() -> None:
    items = make_shape("one-timestamp", N)
    triangle = {"type": "Polygon", "coordinates": [[[-170, -55], [170, -55], [0, 58], [-170, -55]]]}
    with StacServer(items, order="id") as server:
        ids, failures, events = await fetch(server, intersects=triangle)
        reference = plain(server, intersects=triangle)
    assert not failures
    assert {s.axis for s in events.of(ChunkSplit)} == {"space"}
    assert len(reference) > 200
    assert sorted(ids) == sorted(reference)


async def test_max_items_pages_in_order_with_few_requests() -> None:
    items = mixed_items(N)
    with StacServer(items, order="id") as server:
        ids, failures, _ = await fetch(server, max_items=3)
        searches = server.counters["searches"]
    assert not failures
    assert ids == sorted(it["id"] for it in items)[:3]  # the first 3 in the server's order
    assert searches == 1
