"""Engine edge cases on an in-memory API (MockTransport); the real-server proof is in
tests/integration. Discovery is pre-seeded so these tests stay offline."""

from __future__ import annotations

import collections
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from stacfetch import FailureCollector, IngestFilters, RetryConfig
from stacfetch._engine.fetch import FetchEngine
from stacfetch._engine.http import HttpSession, origin_of
from stacfetch._engine.plan import plan_chunks
from stacfetch._engine.records import ChunkEnd, EntryTask, Page
from stacfetch._engine.search import ApiInfo
from stacfetch._engine.splitting import Splitter
from stacfetch._model.events import ChunkDone, ChunkSplit, EntryPlanned, Event, fanout
from stacfetch._model.progress import ProgressTracker
from stacfetch._model.types import Chunk, Entry, Interval

from .fakeapi import ROOT, FakeApi, make_items

UTC = timezone.utc
API = ApiInfo(
    ROOT, f"{ROOT}/search", ("GET", "POST"), f"{ROOT}/collections/{{collection_id}}/items"
)


class FakeClient:
    """Stands in for pystac-client's StacApiIO (discovery is not under test here)."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api

    def read_json(self, url: str) -> dict[str, Any]:
        cid = url.rstrip("/").rsplit("/", 1)[-1]
        if cid not in {it["collection"] for it in self.api.items}:
            raise LookupError(cid)
        return self.api.collection(cid)


async def run(
    api: FakeApi,
    filters: dict[str, Any] | None = None,
    *,
    workers: int = 4,
    limit: int = 10,
    chunk_size: int | None = None,
    collections_: tuple[str, ...] = ("a",),
    chunks: list[Chunk] | None = None,
    pages: list[Page] | None = None,
    **engine_kwargs: Any,
) -> tuple[list[dict[str, Any]], FailureCollector, list[Event], list[ChunkEnd]]:
    failures = FailureCollector()
    events: list[Event] = []
    ends: list[ChunkEnd] = []
    items: list[dict[str, Any]] = []
    retry = RetryConfig(max_retries=1, backoff_base=0.001, backoff_max=0.01)
    async with HttpSession(
        retry,
        max_concurrency=workers,
        transport=httpx.MockTransport(api),
        trusted_origins={origin_of(ROOT)},
    ) as http:
        engine = FetchEngine(
            http,
            sink=fanout(events.append, ProgressTracker()),
            failures=failures,
            workers=workers,
            limit=limit,
            chunk_size=chunk_size,
            catalogs={ROOT: (API, FakeClient(api))},
            **engine_kwargs,
        )
        f = IngestFilters(**(filters or {}))
        tasks = [EntryTask(Entry(ROOT, c), f, chunks=chunks) for c in collections_]
        async for out in engine.stream(tasks):
            if isinstance(out, Page):
                items.extend(out.items)
                if pages is not None:
                    pages.append(out)
            elif isinstance(out, ChunkEnd):
                ends.append(out)
    return items, failures, events, ends


def reference(api: FakeApi, collection: str = "a", **filters: Any) -> set[str]:
    body = {"collections": [collection], "limit": 10**9, **filters}
    return {it["id"] for it in api.search(body)["features"]}


ITEMS = make_items("a", 600, datetime(2020, 1, 1, tzinfo=UTC), timedelta(hours=13))


@pytest.mark.parametrize("counts", [True, False])
@pytest.mark.parametrize(("workers", "limit"), [(1, 1000), (1, 7), (4, 10), (16, 3)])
async def test_exactly_once_for_any_split(counts: bool, workers: int, limit: int) -> None:
    api = FakeApi(ITEMS, counts=counts)
    items, failures, _, _ = await run(api, workers=workers, limit=limit)
    ids = [it["id"] for it in items]
    assert not failures
    assert len(ids) == len(set(ids))
    assert set(ids) == reference(api)


async def test_closed_range_with_boundaries_and_range_items() -> None:
    api = FakeApi(ITEMS)
    dt = "2020-02-01T00:00:00Z/2020-05-01T00:00:00Z"
    items, _, _, _ = await run(api, {"datetime": dt}, workers=8, limit=5, chunk_size=20)
    ids = [it["id"] for it in items]
    assert len(ids) == len(set(ids))
    assert set(ids) == reference(api, datetime=dt)
    assert any(it["properties"]["datetime"] is None for it in items)


async def test_counts_drive_splits_to_the_target_size() -> None:
    api = FakeApi(ITEMS, counts=True)
    items, _, events, _ = await run(api, workers=4, limit=10, chunk_size=50)
    planned = [e for e in events if isinstance(e, EntryPlanned)]
    totals = [e.total for e in planned if e.total is not None]
    assert len(totals) == 1  # with the plan, or right after it (the probe runs alongside)
    assert totals[0] >= 600
    assert sum(e.chunks for e in planned) == planned[0].chunks
    assert any(isinstance(e, ChunkSplit) for e in events)
    done = [e.items for e in events if isinstance(e, ChunkDone)]
    assert max(done) <= 50 + 10  # no chunk delivered much more than the target
    assert {it["id"] for it in items} == reference(api)


async def test_without_counts_large_chunks_are_split_while_fetching() -> None:
    api = FakeApi(ITEMS, counts=False)
    items, _, events, ends = await run(api, workers=8, limit=10)
    assert any(isinstance(e, ChunkSplit) for e in events)
    assert any(end.children for end in ends)
    assert {it["id"] for it in items} == reference(api)


async def test_repeated_next_link_is_reported_not_spun() -> None:
    api = FakeApi(ITEMS, counts=False, loop_after=30)
    items, failures, _, _ = await run(
        api, {"datetime": "2020-03-01/2020-05-01"}, workers=1, limit=10
    )
    assert len(api.requests) < 50
    assert failures
    assert {f.error_type for f in failures} == {"PagingLoop"}
    assert all(f.items_delivered > 0 for f in failures)
    assert items  # what came before the loop is kept


async def test_stalled_empty_pages_stop() -> None:
    api = FakeApi(ITEMS[:20], counts=False, empty_pages=True)
    items, failures, _, _ = await run(api, workers=1, limit=100)
    assert {it["id"] for it in items} == reference(api)
    assert failures
    assert {f.error_type for f in failures} == {"PagingStalled"}


async def test_truncated_window_is_split_and_completed() -> None:
    api = FakeApi(ITEMS, counts=True, window=40)
    items, failures, _, _ = await run(api, workers=2, limit=20, chunk_size=10**6)
    assert not failures
    assert {it["id"] for it in items} == reference(api)


async def test_full_page_without_next_and_counts_is_checked() -> None:
    api = FakeApi(ITEMS, counts=False, window=40)
    items, _, _, _ = await run(api, workers=1, limit=20)
    ids = [it["id"] for it in items]
    assert len(ids) == len(set(ids))
    assert set(ids) == reference(api)


async def test_full_page_without_next_that_cannot_split_is_a_failure() -> None:
    """No count, a window of 40 items, and items time and space cannot separate (one
    timestamp, no geometry): the engine cannot reach what lies beyond the window, and says so
    in the failure table instead of ending as if the search were complete."""
    flat = [
        {**item, "geometry": None, "bbox": None, "properties": {"datetime": "2021-04-22T00:00:00Z"}}
        for item in ITEMS[:100]
    ]
    api = FakeApi(flat, counts=False, window=40)
    items, failures, _, _ = await run(api, workers=2, limit=20)
    assert len(items) == 40
    [record] = list(failures)
    assert record.error_type == "Truncated"
    assert "may be missing" in record.message


async def test_failed_chunk_is_recorded_and_the_rest_completes() -> None:
    bad = "2020-06"

    def fail(body: dict[str, Any]) -> int | None:
        dt = body.get("datetime") or ""
        return 503 if dt.startswith(bad) or f"/{bad}" in dt else None

    api = FakeApi(ITEMS, counts=False, fail=fail)
    items, failures, _, ends = await run(api, {"datetime": "2020-04-01/2020-09-01"}, workers=4)
    assert failures
    assert all(f.status_code == 503 and f.attempts == 2 for f in failures)
    assert all(f.chunk is not None for f in failures)
    assert sum(1 for e in ends if not e.ok) == len(failures)
    got = {it["id"] for it in items}
    assert got <= reference(api, datetime="2020-04-01T00:00:00Z/2020-09-01T23:59:59.999999Z")
    assert len(got) > 100


async def test_two_entries_interleave_and_stay_separate() -> None:
    both = ITEMS + make_items("b", 200, datetime(2020, 3, 1, tzinfo=UTC), timedelta(hours=7))
    api = FakeApi(both)
    items, failures, _, _ = await run(api, workers=3, limit=25, collections_=("a", "b"))
    by = collections.Counter(it["collection"] for it in items)
    assert by == {"a": len(reference(api, "a")), "b": len(reference(api, "b"))}
    assert not failures


async def test_remote_splits_are_reported_not_run() -> None:
    api = FakeApi(ITEMS, counts=False)
    whole = Interval(datetime(2019, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC))
    chunk = plan_chunks(Entry(ROOT, "a"), whole, {}, 1, now=datetime(2022, 1, 1, tzinfo=UTC))
    remote = Splitter(workers=8, sink=fanout(), local=False)
    items, _, _, ends = await run(api, workers=8, chunks=chunk, splitter=remote)
    children = [c for e in ends for c in e.children]
    assert children  # reported for a scheduler elsewhere to run
    assert len(items) < 600  # ... and not run here
    assert all(c.parent_id for c in children)


async def test_ids_search_is_chunked_by_ids() -> None:
    api = FakeApi(ITEMS)
    wanted = [f"a-{i:05d}" for i in range(0, 600, 7)]
    items, _, _, _ = await run(api, {"ids": wanted}, limit=10)
    assert sorted(it["id"] for it in items) == sorted(wanted)


async def test_max_items_is_exact() -> None:
    items, _, _, _ = await run(FakeApi(ITEMS, counts=False), workers=8, limit=7, max_items=50)
    assert len(items) == 50
    assert len({it["id"] for it in items}) == 50


async def test_modifier_sees_each_page_like_pystac_client() -> None:
    pages: list[int] = []

    def sign_inplace(page: dict[str, Any]) -> None:  # the shape planetary_computer's has
        pages.append(len(page["features"]))
        for item in page["features"]:
            item["assets"]["data"] = {"href": f"https://signed.example/{item['id']}?sig=x"}

    items, _, _, _ = await run(FakeApi(ITEMS[:100]), limit=10, modifier=sign_inplace)
    assert sum(pages) >= 100
    assert all(it["assets"]["data"]["href"].endswith("?sig=x") for it in items)
    assert len(items) == 100
