"""The test servers themselves: seeded pgstac, its semantics, and the fault proxy."""

from __future__ import annotations

import email.utils
import itertools
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.faultproxy import FaultProxy, overlaps
from tests.support.itemgen import format_datetime, item_interval, parse_datetime
from tests.support.pgstac import PgstacServer, reference_search

pytestmark = pytest.mark.integration

Items = dict[str, list[dict[str, Any]]]
RefIds = Callable[[Mapping[str, Any]], set[tuple[str, str]]]
MicroS = timedelta(microseconds=1)


def expected(items: Items, collection: str, lo: datetime, hi: datetime) -> set[tuple[str, str]]:
    """Local model of the server: closed-interval overlap of the item's interval with [lo, hi]."""
    out = set()
    for item in items[collection]:
        start, end = item_interval(item)
        if start <= hi and end >= lo:
            out.add((collection, item["id"]))
    return out


def window(lo: datetime, hi: datetime) -> str:
    return f"{format_datetime(lo)}/{format_datetime(hi)}"


# ------------------------------------------------------------------------- the pgstac server
def test_landing_page_and_search(stac_url: str) -> None:
    landing = httpx.get(f"{stac_url}/").json()
    assert landing["type"] == "Catalog"
    assert any("item-search" in c for c in landing["conformsTo"])
    page = httpx.post(f"{stac_url}/search", json={"collections": ["sf-a"], "limit": 5}).json()
    assert page["type"] == "FeatureCollection"
    assert len(page["features"]) == 5
    assert "numberMatched" not in page  # context is off by default
    assert any(link["rel"] == "next" for link in page["links"])


def test_seeded_counts_match(
    pgstac: PgstacServer, seeded_items: Items, reference_ids: RefIds
) -> None:
    for collection, items in seeded_items.items():
        found = reference_ids({"collections": [collection]})
        assert found == {(collection, item["id"]) for item in items}
        assert len(found) == len(items) == pgstac.count_items(collection)
    both = reference_ids({"collections": list(seeded_items)})
    assert len(both) == sum(len(v) for v in seeded_items.values())


def test_seeded_items_have_the_awkward_cases(seeded_items: Items) -> None:
    items = seeded_items["sf-a"]
    cases = Counter(item["properties"]["test:case"] for item in items)
    assert cases["same-instant"] >= 50
    for case in ("boundary", "near-boundary", "range-null", "range-short", "range-wide"):
        assert cases[case] >= 3, case
    stamps = {item["properties"].get("datetime") for item in items}
    instants = {parse_datetime(s) for s in stamps if s}
    firsts = {"2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", "2022-12-31T23:59:59Z"}
    assert {parse_datetime(s) for s in firsts} <= instants
    assert any(s and s.endswith("T23:59:59.999999Z") for s in stamps)
    clouds = [item["properties"].get("eo:cloud_cover", "missing") for item in items]
    kinds = {type(c).__name__ for c in clouds}
    assert {"int", "float", "str", "NoneType"} <= kinds  # "str" is the "missing" marker


def test_closed_intervals(seeded_items: Items, reference_ids: RefIds) -> None:
    """``a/b`` and ``b/c`` both return the item stamped exactly ``b``; ``b - 1µs`` only ``a/b``."""
    stamps = Counter(item_interval(i)[0] for i in seeded_items["sf-a"] if not _is_range(i))
    b = next(t for t in sorted(stamps) if t - MicroS in stamps and t.hour == 0 and not t.minute)
    at_b = {("sf-a", i["id"]) for i in seeded_items["sf-a"] if item_interval(i)[0] == b}
    before = {("sf-a", i["id"]) for i in seeded_items["sf-a"] if item_interval(i)[0] == b - MicroS}
    a, c = b - timedelta(days=3), b + timedelta(days=3)
    left = reference_ids({"collections": ["sf-a"], "datetime": window(a, b)})
    right = reference_ids({"collections": ["sf-a"], "datetime": window(b, c)})
    assert at_b <= left
    assert at_b <= right
    assert before <= left
    assert not before & right
    assert left == expected(seeded_items, "sf-a", a, b)
    assert right == expected(seeded_items, "sf-a", b, c)


@pytest.mark.parametrize(
    ("lo", "hi"),
    [
        ("2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"),
        ("2020-06-15T12:00:00Z", "2020-09-01T00:00:00Z"),
        ("2021-05-31T23:59:59.999999Z", "2021-06-01T00:00:00.000001Z"),
        ("2021-12-31T23:59:59Z", "2022-01-01T00:00:00Z"),
        ("2022-12-31T23:59:59Z", "2022-12-31T23:59:59Z"),
    ],
)
def test_server_matches_local_interval_model(
    seeded_items: Items, reference_ids: RefIds, lo: str, hi: str
) -> None:
    """Range items (with or without ``datetime``) match by start/end, instants by datetime."""
    start, end = parse_datetime(lo), parse_datetime(hi)
    for collection in seeded_items:
        body = {"collections": [collection], "datetime": f"{lo}/{hi}"}
        assert reference_ids(body) == expected(seeded_items, collection, start, end)


def test_null_datetime_items_come_back_in_every_overlapping_window(
    seeded_items: Items, reference_ids: RefIds, stac_url: str
) -> None:
    item = next(
        i
        for i in seeded_items["sf-a"]
        if i["properties"]["test:case"] == "range-null"
        and item_interval(i)[1] - item_interval(i)[0] > timedelta(days=60)
    )
    key = ("sf-a", item["id"])
    start, end = item_interval(item)
    edges = [start + (end - start) * k / 4 for k in range(5)]
    for lo, hi in itertools.pairwise(edges):
        assert key in reference_ids({"collections": ["sf-a"], "datetime": window(lo, hi)})
    after = reference_ids({"collections": ["sf-a"], "datetime": window(end + MicroS, end + MicroS)})
    assert key not in after
    page = reference_search(stac_url, {"ids": [item["id"]]})
    assert "datetime" not in page[0]["properties"]  # pgstac drops the null datetime key


def test_context_toggle_at_runtime(pgstac: PgstacServer, seeded_items: Items) -> None:
    body = {"collections": ["sf-b"], "limit": 1}
    try:
        pgstac.set_context(True)
        page = httpx.post(f"{pgstac.url}/search", json=body).json()
        assert page["numberMatched"] == len(seeded_items["sf-b"])
        pgstac.set_context(False)
        page = httpx.post(f"{pgstac.url}/search", json=body).json()
        assert "numberMatched" not in page
    finally:
        pgstac.set_context(False)


# ------------------------------------------------------------------------- the fault proxy
def test_proxy_passes_traffic_cleanly_at_rate_zero(
    fault_proxy: Callable[..., FaultProxy], reference_ids: RefIds
) -> None:
    proxy = fault_proxy()
    body = {"collections": ["sf-b"], "datetime": "2021-07-01T00:00:00Z/2021-09-01T00:00:00Z"}
    through = reference_search(proxy.url, body, page_size=50)
    assert {(i["collection"], i["id"]) for i in through} == reference_ids(body)
    page = httpx.post(f"{proxy.url}/search", json={"limit": 1}).json()
    assert page["links"][0]["href"].startswith(proxy.url)  # Host header kept
    get = httpx.get(f"{proxy.url}/collections/sf-b/items", params={"limit": 3})
    assert get.status_code == 200
    assert len(get.json()["features"]) == 3
    counters = proxy.counters
    assert counters["requests"] == counters["passed"] > 1
    assert set(counters) == {"requests", "passed", "max_in_flight"}


def _hit(url: str, n: int = 20) -> list[httpx.Response | Exception]:
    out: list[httpx.Response | Exception] = []
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            try:
                out.append(client.post(f"{url}/search", json={"collections": ["sf-a"]}))
            except httpx.HTTPError as exc:
                out.append(exc)
    return out


def _statuses(results: list[httpx.Response | Exception]) -> set[Any]:
    return {r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in results}


def test_proxy_error_faults(fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy(error_rate=1.0)
    results = _hit(proxy.url, 40)
    assert _statuses(results) <= {500, 502, 503, 504}
    assert len(_statuses(results)) >= 3
    assert proxy.counters["error"] == 40


def test_proxy_throttle_faults(fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy(throttle_rate=1.0, retry_after=2, retry_after_date_rate=0.5)
    results = [r for r in _hit(proxy.url, 30) if isinstance(r, httpx.Response)]
    assert {r.status_code for r in results} == {429}
    values = [r.headers["retry-after"] for r in results]
    assert "2" in values
    dates = [email.utils.parsedate_to_datetime(v) for v in values if not v.isdigit()]
    assert dates
    assert proxy.counters["throttle"] == 30


@pytest.mark.parametrize("mode", ["close", "truncate"])
def test_proxy_drop_faults(fault_proxy: Callable[..., FaultProxy], mode: str) -> None:
    proxy = fault_proxy(drop_rate=1.0, drop_modes=(mode,))
    results = _hit(proxy.url, 10)
    assert all(isinstance(r, httpx.RemoteProtocolError) for r in results), results
    assert proxy.counters[f"drop_{mode}"] == proxy.counters["drop"] == 10


def test_proxy_html_error_faults(fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy(html_error_rate=1.0)
    results = [r for r in _hit(proxy.url, 5) if isinstance(r, httpx.Response)]
    assert [r.status_code for r in results] == [503] * 5
    assert results[0].headers["content-type"].startswith("text/html")
    assert results[0].text.lstrip().startswith("<html>")
    assert proxy.counters["html_error"] == 5


def test_proxy_slow_faults(fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy(slow_rate=1.0, slow_seconds=0.3)
    t0 = time.monotonic()
    results = _hit(proxy.url, 3)
    assert time.monotonic() - t0 >= 0.9
    assert _statuses(results) == {200}
    assert proxy.counters["slow"] == 3


def test_proxy_leaves_discovery_endpoints_alone(fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy(error_rate=0.5, drop_rate=0.5, slow_rate=1.0, slow_seconds=5.0)
    with httpx.Client(timeout=3) as client:
        for path in ("/", "/conformance", "/collections", "/collections/sf-a", "/queryables"):
            assert client.get(f"{proxy.url}{path}").status_code == 200, path
    assert proxy.counters["passed"] == proxy.counters["requests"] == 5


def test_fail_when_and_heal(fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy()
    rule = proxy.fail_when(overlaps("2021-03-01T00:00:00Z", "2021-03-31T23:59:59Z"))
    inside = {"collections": ["sf-a"], "datetime": "2021-03-10T00:00:00Z/2021-03-20T00:00:00Z"}
    edge = {"collections": ["sf-a"], "datetime": "2021-02-01T00:00:00Z/2021-03-01T00:00:00Z"}
    outside = {"collections": ["sf-a"], "datetime": "2021-05-01T00:00:00Z/2021-06-01T00:00:00Z"}
    open_end = {"collections": ["sf-a"], "datetime": "2021-03-15T00:00:00Z/.."}
    with httpx.Client(timeout=30) as client:
        search = f"{proxy.url}/search"
        for _ in range(3):
            assert client.post(search, json=inside).status_code == 503
        assert client.post(search, json=edge).status_code == 503  # closed interval
        assert client.post(search, json=open_end).status_code == 503
        assert client.post(search, json={"collections": ["sf-a"]}).status_code == 503
        assert client.get(search, params={"datetime": inside["datetime"]}).status_code == 503
        assert client.post(search, json=outside).status_code == 200
        assert client.get(f"{proxy.url}/collections/sf-a").status_code == 200
        proxy.heal(rule)
        assert client.post(search, json=inside).status_code == 200
    assert proxy.counters["rule"] == 7
    assert [r.outcome for r in proxy.records].count("rule") == 7


def test_proxy_tracks_and_caps_concurrency(fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy(slow_rate=1.0, slow_seconds=0.8)
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: _statuses(_hit(proxy.url, 1)), range(6)))
    assert all(s == {200} for s in statuses)
    assert proxy.max_in_flight == 6
    capped = fault_proxy(slow_rate=1.0, slow_seconds=0.8, max_concurrent=2)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: _hit(capped.url, 1)[0], range(6)))
    codes = Counter(r.status_code for r in results if isinstance(r, httpx.Response))
    assert codes[429] == capped.counters["over_capacity"] >= 1
    assert codes[200] >= 2


# ------------------------------------------------------------------------- helpers
def _is_range(item: Mapping[str, Any]) -> bool:
    props = item["properties"]
    return bool(props.get("start_datetime"))
