"""``stacfetch._testing.server.StacServer``: same answers as the real pgstac server, paging,
knobs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import stacfetch
from stacfetch._testing.server import StacServer
from tests.conftest import SEED
from tests.support.itemgen import make_collection, write_ndjson
from tests.support.pgstac import reference_search

pytestmark = pytest.mark.integration

Items = dict[str, list[dict[str, Any]]]
RefIds = Callable[[Mapping[str, Any]], set[tuple[str, str]]]
BOTH = ["sf-a", "sf-b"]


@pytest.fixture(scope="module")
def server(seeded_items: Items) -> Iterator[StacServer]:
    """The seeded items in a StacServer (no delay, counts on)."""
    collections = [make_collection(c, start, end) for c, (_, start, end) in SEED.items()]
    items = [item for group in seeded_items.values() for item in group]
    with StacServer(items, collections) as srv:
        yield srv


def keys(url: str, body: Mapping[str, Any], page_size: int = 1000) -> list[tuple[str, str]]:
    """Every (collection, id) of a search, following ``next`` links exactly (POST first)."""
    return [(f["collection"], f["id"]) for f in reference_search(url, body, page_size=page_size)]


def get_keys(url: str) -> list[tuple[str, str]]:
    """Every (collection, id) of a GET search, following GET ``next`` links."""
    out: list[tuple[str, str]] = []
    next_url: str | None = url
    with httpx.Client(timeout=60) as client:
        while next_url:
            page = client.get(next_url).raise_for_status().json()
            out += [(f["collection"], f["id"]) for f in page["features"]]
            link = next((ln for ln in page["links"] if ln["rel"] == "next"), None)
            assert link is None or link["method"] == "GET"
            next_url = link["href"] if link else None
    return out


def _searches(items: Items) -> list[dict[str, Any]]:
    same_instant = Counter(i["properties"]["datetime"] for i in items["sf-a"]).most_common(1)[0][0]
    some_ids = [items["sf-a"][k]["id"] for k in (0, 7, 99)] + [items["sf-b"][3]["id"], "nope"]
    return [
        {"collections": ["sf-a"]},
        {"collections": BOTH},
        {"collections": BOTH, "datetime": "2021-03-01T00:00:00Z/2021-06-01T00:00:00Z"},
        {"collections": ["sf-a"], "datetime": "2020-01-01T00:00:00Z"},  # the extent's first instant
        {"collections": ["sf-a"], "datetime": same_instant},  # more items than a page
        {"collections": BOTH, "datetime": "../2021-07-01T00:00:00Z"},
        {"collections": BOTH, "datetime": "2021-10-01T00:00:00Z/.."},
        {
            "collections": ["sf-a"],
            "datetime": "2021-01-01T00:00:00.000001Z/2021-01-31T23:59:59.999999Z",
        },
        {"collections": ["sf-b"], "datetime": "2021-08-15T00:00:00Z/2021-08-16T00:00:00Z"},
        {"collections": BOTH, "bbox": [-10.0, 35.0, 30.0, 60.0]},
        {"collections": BOTH, "bbox": [100, -40, 179, 10], "datetime": "2021-06-01T00:00:00Z/.."},
        {"collections": BOTH, "ids": some_ids},
    ]


def test_answers_equal_pgstac(
    server: StacServer, seeded_items: Items, reference_ids: RefIds
) -> None:
    for body in _searches(seeded_items):
        ours = keys(server.url, body, page_size=500)
        assert len(ours) == len(set(ours)), f"duplicates for {body}"
        assert set(ours) == reference_ids(body), f"differs from pgstac for {body}"


def test_paging_post_and_get_each_item_once(server: StacServer, seeded_items: Items) -> None:
    expected = {("sf-a", i["id"]) for i in seeded_items["sf-a"]}
    for found in (
        keys(server.url, {"collections": ["sf-a"]}, page_size=97),
        get_keys(f"{server.url}/search?collections=sf-a&limit=113"),
        get_keys(f"{server.url}/collections/sf-a/items?limit=250"),
        get_keys(f"{server.url}/search?collections=sf-a&limit=101&sortby=%2Bdatetime"),
    ):
        assert len(found) == len(set(found)) == len(expected)
        assert set(found) == expected


def test_page_shape_counts_and_order(server: StacServer) -> None:
    body = {"collections": ["sf-a"], "datetime": "2021-01-01T00:00:00Z/2021-12-31T00:00:00Z"}
    page = httpx.post(f"{server.url}/search", json={**body, "limit": 50}).json()
    assert page["type"] == "FeatureCollection"
    assert page["numberReturned"] == 50
    assert page["numberMatched"] == len(keys(server.url, body))
    starts = [
        f["properties"].get("start_datetime") or f["properties"]["datetime"]
        for f in page["features"]
    ]
    assert len(starts) == 50
    nxt = next(ln for ln in page["links"] if ln["rel"] == "next")
    assert nxt["method"] == "POST"
    assert {k: v for k, v in nxt["body"].items() if k != "token"} == {**body, "limit": 50}
    assert (
        httpx.get(f"{server.url}/search?collections=sf-a&limit=100000").json()["numberReturned"]
        == 3000
    )


def test_landing_and_collections(server: StacServer) -> None:
    landing = httpx.get(f"{server.url}/").json()
    assert landing["type"] == "Catalog"
    assert any(c.endswith("item-search") for c in landing["conformsTo"])
    methods = {ln.get("method") for ln in landing["links"] if ln["rel"] == "search"}
    assert methods == {"GET", "POST"}
    assert {c["id"] for c in httpx.get(f"{server.url}/collections").json()["collections"]} == set(
        BOTH
    )
    assert httpx.get(f"{server.url}/conformance").json()["conformsTo"] == landing["conformsTo"]
    coll = httpx.get(f"{server.url}/collections/sf-b").json()
    assert coll["extent"]["temporal"]["interval"][0][0].startswith("2021-06-01")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/search", {"collections": ["nope"]}, 404),
        ("GET", "/collections/nope", None, 404),
        ("GET", "/collections/nope/items", None, 404),
        ("POST", "/search", {"datetime": "yesterday"}, 400),
        ("POST", "/search", {"datetime": "2022-01-01T00:00:00Z/2021-01-01T00:00:00Z"}, 400),
        ("POST", "/search", {"bbox": [1, 2, 3]}, 400),
        ("GET", "/search?bbox=a,b,c,d", None, 400),
        ("POST", "/search", {"limit": 0}, 400),
        ("PUT", "/search", None, 405),
    ],
)
def test_errors_are_json(
    server: StacServer, method: str, path: str, body: Any, status: int
) -> None:
    resp = httpx.request(method, f"{server.url}{path}", json=body)
    assert resp.status_code == status
    assert resp.json()["description"]


def test_max_limit_is_a_silent_cap(seeded_items: Items) -> None:
    with StacServer(seeded_items["sf-b"], max_limit=40, default_limit=7) as srv:
        assert len(httpx.post(f"{srv.url}/search", json={"limit": 1000}).json()["features"]) == 40
        assert len(httpx.get(f"{srv.url}/search").json()["features"]) == 7


def test_delay_and_concurrency_cap(seeded_items: Items) -> None:
    items = seeded_items["sf-b"]
    with StacServer(items, page_delay=0.3, item_delay=0.01, max_concurrent=2) as srv:
        t0 = time.perf_counter()
        httpx.post(f"{srv.url}/search", json={"limit": 20}).raise_for_status()
        assert time.perf_counter() - t0 >= 0.5  # 0.3 + 20 * 0.01

        def one(_: int) -> httpx.Response:
            return httpx.post(f"{srv.url}/search", json={"limit": 1}, timeout=10)

        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(one, range(5)))
        throttled = [r for r in answers if r.status_code == 429]
        assert len(throttled) == 3
        assert all(r.headers["retry-after"] == "1" for r in throttled)
        assert srv.counters["throttled"] == 3
        assert srv.counters["max_in_flight"] >= 3
        cpu = srv.cpu_seconds
        assert cpu is not None
        assert 0 < cpu < 1.0


def test_fail_when_and_heal(server: StacServer) -> None:
    url = f"{server.url}/search"
    seen: list[dict[str, Any]] = []

    def in_2021(search: dict[str, Any]) -> bool:
        seen.append(search)
        span = search["datetime"]
        return span is not None and span[0] is not None and span[0].year == 2021

    rule = server.fail_when(in_2021, status=502)
    other = server.fail_when(lambda s: s["collections"] == ["sf-b"])
    try:
        window = {"collections": ["sf-a"], "datetime": "2021-02-01T00:00:00Z/.."}
        assert httpx.post(url, json=window).status_code == 502
        assert (
            httpx.post(url, json={**window, "datetime": "2020-02-01T00:00:00Z/.."}).status_code
            == 200
        )
        assert httpx.get(f"{url}?collections=sf-b").status_code == 503
        assert seen[0]["collections"] == ["sf-a"]
        assert seen[0]["datetime"][1] is None
        assert server.counters["failed_by_rule"] >= 2
        server.heal(rule)
        assert httpx.post(url, json=window).status_code == 200
        assert httpx.get(f"{url}?collections=sf-b").status_code == 503
    finally:
        server.heal()
    assert httpx.get(f"{url}?collections=sf-b").status_code == 200
    assert other != rule


def test_ingestor_fetches_the_reference_set(server: StacServer, reference_ids: RefIds) -> None:
    dt = "2020-06-01T00:00:00Z/2022-06-01T00:00:00Z"
    ing = stacfetch.Ingestor(
        server.url, collections=BOTH, datetime=dt, concurrency=8, limit=250, progress=False
    )
    gdf = ing.ingest()
    found = list(zip(gdf["collection"], gdf["id"], strict=True))
    assert len(found) == len(set(found))
    assert set(found) == reference_ids({"collections": BOTH, "datetime": dt})
    assert len(ing.failures) == 0


async def test_usable_inside_a_running_loop(seeded_items: Items) -> None:
    srv = await StacServer(seeded_items["sf-b"][:50]).astart()
    try:
        async with httpx.AsyncClient() as client:
            page = (await client.post(f"{srv.url}/search", json={"limit": 100})).json()
        assert page["numberMatched"] == page["numberReturned"] == 50
        items = [
            item
            async for item in stacfetch.Ingestor(
                srv.url, collections=["sf-b"], progress=False
            ).stream()
        ]
        assert len(items) == 50
    finally:
        await srv.astop()
    with StacServer(seeded_items["sf-b"][:5]) as sync_srv:  # the sync API works here too
        resp = await asyncio.to_thread(httpx.get, f"{sync_srv.url}/search")
        assert resp.json()["numberReturned"] == 5


def test_command_line_server(seeded_items: Items, tmp_path: Path) -> None:
    path = tmp_path / "items.ndjson"
    write_ndjson(seeded_items["sf-b"], path)
    args = [sys.executable, "-m", "stacfetch._testing.server", "serve", "--ndjson", str(path)]
    proc = subprocess.Popen(
        [*args, "--page-delay", "0.01", "--max-concurrent", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert len(keys(url, {"collections": ["sf-b"]})) == len(seeded_items["sf-b"])
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert '"items_served":1500' in err
