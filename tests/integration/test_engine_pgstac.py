"""The engine against a real stac-fastapi-pgstac: exactly once for many split configurations.

Every fetched id set is compared with a sequential reference search (plain httpx paging,
independent of stacfetch) on the same server, and checked for duplicates.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from stacfetch import CollectionNotFoundError, IngestModule, Ingestor, WorkflowContext
from stacfetch._model.datetimes import parse_datetime
from tests.support.faultproxy import FaultProxy
from tests.support.pgstac import PgstacServer

pytestmark = pytest.mark.integration

Ref = Callable[[Mapping[str, Any]], set[tuple[str, str]]]


async def fetch_keys(url: str, **kwargs: Any) -> tuple[list[tuple[str, str]], Ingestor]:
    ing = Ingestor(url, progress=False, **kwargs)
    keys = [(it["collection"], it["id"]) async for it in ing.stream()]
    return keys, ing


def ref_body(
    collections: list[str], dt: str | None = None, bbox: list[float] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"collections": collections}
    if dt is not None:
        interval = parse_datetime(dt)
        assert interval is not None
        body["datetime"] = interval.to_param()
    if bbox is not None:
        body["bbox"] = bbox
    return body


@pytest.fixture
def context_on(pgstac: PgstacServer) -> Iterator[None]:
    pgstac.set_context(True)
    try:
        yield
    finally:
        pgstac.set_context(False)


CONFIGS = [
    # workers, limit, datetime, bbox
    (1, 1000, None, None),
    (16, 10, "2021-06-01T00:00:00Z/2021-06-20T00:00:00Z", None),
    (4, 100, "2021", None),
    (8, 37, "../2020-03-01T00:00:00Z", None),
    (8, 250, "2022-10-01T00:00:00Z/..", None),
    (2, 1000, "2020-01-01T00:00:00Z/2020-01-01T00:00:00Z", None),
    (12, 50, "2020-06/2021-02", [-20.0, -60.0, 60.0, 60.0]),
    (16, 1000, None, None),
]


@pytest.mark.parametrize(("workers", "limit", "dt", "bbox"), CONFIGS)
async def test_matches_reference_without_counts(
    stac_url: str, reference_ids: Ref, workers: int, limit: int, dt: str | None, bbox: Any
) -> None:
    keys, ing = await fetch_keys(
        stac_url, collections=["sf-a"], concurrency=workers, limit=limit, datetime=dt, bbox=bbox
    )
    assert not ing.failures
    assert len(keys) == len(set(keys)), collections.Counter(keys).most_common(3)
    expected = reference_ids(ref_body(["sf-a"], dt, bbox))
    assert set(keys) == expected
    if dt is None:
        assert len(expected) == 3000


@pytest.mark.usefixtures("context_on")
@pytest.mark.parametrize(
    ("workers", "limit", "chunk_size", "dt"),
    [(4, 100, 300, None), (16, 20, 50, "2021-03/2021-09"), (1, 1000, None, None)],
)
async def test_matches_reference_with_counts(
    stac_url: str,
    reference_ids: Ref,
    workers: int,
    limit: int,
    chunk_size: int | None,
    dt: str | None,
) -> None:
    keys, ing = await fetch_keys(
        stac_url,
        collections=["sf-a"],
        concurrency={"workers": workers, "chunk_size": chunk_size},
        limit=limit,
        datetime=dt,
    )
    assert not ing.failures
    assert len(keys) == len(set(keys))
    assert set(keys) == reference_ids(ref_body(["sf-a"], dt))
    entry = next(iter(ing.tracker.entries.values()))
    assert entry.total is not None  # numberMatched was used to plan
    if chunk_size:
        assert entry.chunks_planned > 1


async def test_boundary_and_same_instant_items(
    stac_url: str, reference_ids: Ref, seeded_items: dict[str, list[dict[str, Any]]]
) -> None:
    cases = collections.Counter(it["properties"]["test:case"] for it in seeded_items["sf-a"])
    assert cases["boundary"] >= 1
    assert cases["same-instant"] >= 50
    assert cases["range-null"] >= 1
    same = next(
        it for it in seeded_items["sf-a"] if it["properties"]["test:case"] == "same-instant"
    )
    instant = same["properties"]["datetime"]
    keys, _ = await fetch_keys(
        stac_url, collections=["sf-a"], datetime=instant, limit=10, concurrency=4
    )
    assert len(keys) == len(set(keys)) >= 50
    assert set(keys) == reference_ids(ref_body(["sf-a"], instant))


async def test_matrix_of_two_collections(stac_url: str, reference_ids: Ref) -> None:
    keys, ing = await fetch_keys(
        stac_url, collections=["sf-a", "sf-b"], concurrency=6, limit=200, datetime="2021-07/2021-10"
    )
    assert len(keys) == len(set(keys))
    assert set(keys) == reference_ids(ref_body(["sf-a"], "2021-07/2021-10")) | reference_ids(
        ref_body(["sf-b"], "2021-07/2021-10")
    )
    assert {c for c, _ in keys} == {"sf-a", "sf-b"}
    assert {p.label for p in ing.tracker.entries.values()} == {"sf-a", "sf-b"}


async def test_one_discovery_per_catalog(
    fault_proxy: Callable[..., FaultProxy], reference_ids: Ref
) -> None:
    proxy = fault_proxy()
    keys, _ = await fetch_keys(
        proxy.url, collections=["sf-a", "sf-b"], concurrency=8, limit=100, datetime="2021-11"
    )
    targets = [r.target.split("?")[0].rstrip("/") for r in proxy.records]
    counts = collections.Counter(t for t in targets if not t.endswith("/search"))
    assert counts[""] == 1  # landing page read once, shared by both entries
    assert counts["/collections/sf-a"] == 1
    assert counts["/collections/sf-b"] == 1
    assert set(counts) <= {"", "/conformance", "/collections/sf-a", "/collections/sf-b"}
    assert len(set(keys)) == len(keys) > 0


async def test_unknown_collection_fails_before_fetching(
    fault_proxy: Callable[..., FaultProxy],
) -> None:
    proxy = fault_proxy()
    ing = Ingestor(proxy.url, collections=["sf-a", "no-such-collection"], progress=False)
    with pytest.raises(CollectionNotFoundError, match="no-such-collection"):
        await ing.aingest()
    assert not any("/search" in r.target for r in proxy.records)


async def test_ingest_module_seed_contract(stac_url: str, reference_ids: Ref) -> None:
    module = IngestModule({"concurrency": 4, "filters": {"datetime": "2021-12"}})
    ctx = WorkflowContext(data={"collection_id": "sf-b", "catalog_url": stac_url})
    keys = [(it["collection"], it["id"]) async for it in module.fetch(ctx)]
    assert len(keys) == len(set(keys))
    assert set(keys) == reference_ids(ref_body(["sf-b"], "2021-12"))
