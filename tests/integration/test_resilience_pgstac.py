"""Faults through a real HTTP proxy in front of the real pgstac server.

Every run is compared with the fault-free reference id set: no item lost, none duplicated, and
the proxy's counters prove the faults happened.
"""

from __future__ import annotations

import collections
import http.server
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from stacfetch import (
    IncompleteIngestError,
    Ingestor,
    NotAStacApiError,
)
from stacfetch._model.datetimes import parse_datetime
from tests.support.faultproxy import FaultProxy, RequestInfo, overlaps

pytestmark = pytest.mark.integration

Ref = Callable[[Mapping[str, Any]], set[tuple[str, str]]]
QUICK = {"backoff_base": 0.05, "backoff_max": 1.0, "max_retries": 10, "timeout": 20.0}


def keys_of(gdf: Any) -> list[tuple[str, str]]:
    return list(zip(gdf["collection"], gdf["id"], strict=True))


async def test_mixed_faults_lose_and_duplicate_nothing(
    fault_proxy: Callable[..., FaultProxy], reference_ids: Ref
) -> None:
    proxy = fault_proxy(
        seed=7,
        error_rate=0.10,
        throttle_rate=0.05,
        drop_rate=0.02,
        html_error_rate=0.02,
        slow_rate=0.05,
        slow_seconds=0.3,
        retry_after=1,
    )
    ing = Ingestor(
        proxy.url,
        collections=["sf-a", "sf-b"],
        concurrency=8,
        limit=100,
        retry=QUICK,
        progress=False,
    )
    gdf = await ing.aingest()
    keys = keys_of(gdf)
    assert not ing.failures, ing.failures.to_records()
    assert len(keys) == len(set(keys))
    expected = reference_ids({"collections": ["sf-a"]}) | reference_ids({"collections": ["sf-b"]})
    assert set(keys) == expected
    counters = proxy.counters
    for kind in ("error", "throttle", "drop", "html_error", "slow"):
        assert counters[kind] > 0, counters
    retries = sum(p.retries for p in ing.tracker.entries.values())
    faults = sum(counters[k] for k in ("error", "throttle", "drop", "html_error"))
    assert retries == faults


async def test_permanent_failure_window_then_retry(
    fault_proxy: Callable[..., FaultProxy], reference_ids: Ref, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = fault_proxy()
    window = ("2021-03-01T00:00:00Z", "2021-03-15T00:00:00Z")
    rule = proxy.fail_when(overlaps(*window))
    ing = Ingestor(
        proxy.url,
        collections=["sf-a"],
        datetime="2020-06/2021-12",
        concurrency=6,
        limit=100,
        retry={**QUICK, "max_retries": 2},
        progress=False,
    )
    with caplog.at_level(logging.WARNING, logger="stacfetch"):
        gdf = await ing.aingest()
    records = list(ing.failures)
    assert records
    assert len({r.chunk_id for r in records}) == len(records)  # each failed chunk once
    lo, hi = parse_datetime(window[0]), parse_datetime(window[1])
    assert lo is not None
    assert hi is not None
    failed_intervals = []
    for r in records:
        iv = parse_datetime(r.interval)
        assert iv is not None
        assert iv.start is None or iv.start <= hi.start
        assert iv.end is None or iv.end >= lo.start
        assert r.status_code == 503
        assert r.attempts == 3
        assert r.collection_id == "sf-a"
        assert r.method == "POST"
        failed_intervals.append(r.interval)
    assert len(caplog.records) >= len(records)
    full = reference_ids(
        {"collections": ["sf-a"], "datetime": parse_datetime("2020-06/2021-12").to_param()}
    )  # type: ignore[union-attr]
    lost = set().union(
        *(reference_ids({"collections": ["sf-a"], "datetime": iv}) for iv in failed_intervals)
    )
    got = set(keys_of(gdf))
    assert full - lost <= got  # everything outside the failed chunks arrived
    assert got < full
    assert len(ing.failures.to_dataframe()) == len(records)

    proxy.heal(rule)
    gdf = await ing.aretry_failed()
    keys = keys_of(gdf)
    assert not ing.failures
    assert len(keys) == len(set(keys))
    assert set(keys) == full


async def test_strict_raises_with_the_failures(fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy()
    proxy.fail_when(overlaps("2021-09-01T00:00:00Z", "2021-09-02T00:00:00Z"))
    ing = Ingestor(
        proxy.url,
        collections=["sf-b"],
        datetime="2021-08/2021-10",
        concurrency=4,
        retry={**QUICK, "max_retries": 1},
        progress=False,
        strict=True,
    )
    with pytest.raises(IncompleteIngestError) as info:
        await ing.aingest()
    assert info.value.failures is ing.failures
    assert len(ing.failures) >= 1


async def test_stalled_server_becomes_retries_then_a_failure_record(
    fault_proxy: Callable[..., FaultProxy],
) -> None:
    proxy = fault_proxy(slow_rate=1.0, slow_seconds=3.0)
    ing = Ingestor(
        proxy.url,
        collections=["sf-b"],
        datetime="2021-07-01/2021-07-03",
        concurrency=2,
        retry={"timeout": 0.4, "max_retries": 1, "backoff_base": 0.01},
        progress=False,
    )
    items = [it async for it in ing.stream()]
    assert items == []
    assert ing.failures
    assert {r.error_type for r in ing.failures} == {"ReadTimeout"}
    assert all(r.attempts == 2 for r in ing.failures)


async def test_server_capacity_limit_slows_everyone_and_completes(
    fault_proxy: Callable[..., FaultProxy], reference_ids: Ref
) -> None:
    proxy = fault_proxy(max_concurrent=3)
    ing = Ingestor(
        proxy.url,
        collections=["sf-b"],
        concurrency=16,
        limit=50,
        retry=QUICK,
        progress=False,
    )
    keys = [(it["collection"], it["id"]) async for it in ing.stream()]
    assert proxy.counters["over_capacity"] > 0
    assert len(keys) == len(set(keys))
    assert set(keys) == reference_ids({"collections": ["sf-b"]})
    assert not ing.failures


async def test_concurrency_cap_holds(fault_proxy: Callable[..., FaultProxy]) -> None:
    proxy = fault_proxy(slow_rate=1.0, slow_seconds=0.05)
    ing = Ingestor(
        proxy.url, collections=["sf-a", "sf-b"], concurrency=3, limit=200, progress=False
    )
    n = sum([1 async for _ in ing.stream()])
    assert n == 4500
    assert proxy.max_in_flight <= 3


async def test_headers_reach_the_catalog_and_stay_out_of_records(
    fault_proxy: Callable[..., FaultProxy], caplog: pytest.LogCaptureFixture
) -> None:
    proxy = fault_proxy()
    seen: list[dict[str, str]] = []

    def spy(req: RequestInfo) -> bool:
        seen.append(req.headers)
        return "/search" in req.path and "2021-10" in str(req.param("datetime"))

    proxy.fail_when(spy)
    secret = "Bearer sekrit-token-123"
    ing = Ingestor(
        proxy.url,
        collections=["sf-b"],
        datetime="2021-09/2021-11",
        concurrency=2,
        headers={"Authorization": secret},
        retry={**QUICK, "max_retries": 0},
        progress=False,
    )
    with caplog.at_level(logging.DEBUG, logger="stacfetch"):
        await ing.aingest()
    search_headers = [h for h in seen if h]
    assert search_headers
    assert all(
        {k.lower(): v for k, v in h.items()}.get("authorization") == secret for h in search_headers
    )
    assert ing.failures
    text = repr(ing.failures.to_records()) + caplog.text + repr(ing) + ing.failures._repr_html_()
    assert "sekrit" not in text


@pytest.fixture
def html_site() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>Welcome to our homepage</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_not_a_stac_api(html_site: str, stac_url: str) -> None:
    for url in (html_site, f"{stac_url}/does-not-exist", f"{stac_url}/conformance"):
        with pytest.raises(NotAStacApiError, match="catalog_url"):
            await Ingestor(url, collections=["sf-a"], progress=False).aingest()


def test_sync_ingest_counts_match(stac_url: str, reference_ids: Ref) -> None:
    ing = Ingestor(stac_url, collections=["sf-b"], datetime="2021-11", progress=False)
    gdf = ing.ingest()
    counts = collections.Counter(gdf["collection"])
    assert counts["sf-b"] == len(
        reference_ids({"collections": ["sf-b"], "datetime": parse_datetime("2021-11").to_param()})
    )  # type: ignore[union-attr]
