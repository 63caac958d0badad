"""Decoder processes (pages to Arrow out of the event loop's process)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest

from stacfetch import ConfigurationError, FailureCollector, Ingestor, RetryConfig
from stacfetch._engine.decoder import InvalidPageContent, decode_page
from stacfetch._engine.decoder_pool import DecoderPool
from stacfetch._engine.http import HttpSession
from stacfetch._engine.records import Page
from stacfetch._engine.search import SearchRequest
from stacfetch._formats.arrow import items_to_arrow
from stacfetch._testing.server import StacServer

from .fakeapi import ROOT, FakeApi, make_items
from .test_engine import run

UTC = timezone.utc
ITEMS = make_items("a", 400, datetime(2020, 1, 1, tzinfo=UTC), timedelta(hours=13))


def body(features: list[Any], **extra: Any) -> bytes:
    return orjson.dumps({"type": "FeatureCollection", "features": features, **extra})


# -- decode_page ----------------------------------------------------------------------------------
def test_decode_page_splits_head_stubs_and_table_row_for_row() -> None:
    features = [dict(it) for it in ITEMS[:30]]
    del features[3]["collection"]
    page = decode_page(body([*features, "junk"], links=[{"rel": "next", "href": "x"}]), "a")
    assert page.head == {"type": "FeatureCollection", "links": [{"rel": "next", "href": "x"}]}
    assert page.stubs is not None
    assert page.table is not None
    assert [s["id"] for s in page.stubs] == page.table.column("id").to_pylist()
    assert [s["id"] for s in page.stubs] == [f["id"] for f in features]
    assert page.stubs[3]["collection"] == "a"  # filled in where missing
    assert page.table.column("collection").to_pylist() == ["a"] * 30
    assert page.stubs[1]["properties"] == {"datetime": ITEMS[1]["properties"]["datetime"]}
    ranged = next(s for s in page.stubs if "start_datetime" in s["properties"])
    assert set(ranged["properties"]) == {"datetime", "start_datetime", "end_datetime"}
    expected = items_to_arrow([{**f, "collection": "a"} for f in features])
    assert page.table.equals(expected)


def test_decode_page_without_features_has_no_stubs() -> None:
    page = decode_page(b'{"type": "Catalog", "links": []}', "a")
    assert (page.stubs, page.table) == (None, None)
    assert page.head["type"] == "Catalog"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"<html>busy</html>", "json"),
        (b"[1, 2]", "json"),
        (b'{"features": [{"id": "x", "properties": "oops"}]}', "convert"),
    ],
)
def test_decode_page_errors_say_their_kind(content: bytes, kind: str) -> None:
    with pytest.raises(InvalidPageContent) as info:
        decode_page(content, "a")
    assert info.value.kind == kind
    assert info.value.message


# -- the pool -------------------------------------------------------------------------------------
async def test_pool_processes_decode_like_in_process_and_in_parallel() -> None:
    pages = [body(ITEMS[i : i + 50]) for i in range(0, 400, 50)]
    async with DecoderPool(2) as pool:
        await pool.start()
        assert await pool.ready() == 2
        pids = {child.proc.pid for child in pool._children}
        decoded = await asyncio.gather(*(pool.decode(p, "a") for p in pages))
        children = list(pool._children)
        assert (pool.pages_away, pool.pages_here) == (len(pages), 0)
    for content, page in zip(pages, decoded, strict=True):
        local = decode_page(content, "a")
        assert page.table is not None
        assert local.table is not None
        assert page.table.equals(local.table)
        assert page.stubs == local.stubs
        assert page.head == local.head
    assert pool.join(timeout=30)
    assert all(child.proc.returncode is not None for child in children)  # stopped on exit
    assert len(pids) == 2


async def test_pool_reports_bad_pages_and_stays_usable() -> None:
    async with DecoderPool(1) as pool:
        await pool.start()
        await pool.ready()
        with pytest.raises(InvalidPageContent) as info:
            await pool.decode(b"not json", "a")
        assert info.value.kind == "json"
        page = await pool.decode(body(ITEMS[:5]), "a")
        assert page.table is not None
        assert page.table.num_rows == 5
        assert not pool._broken
        assert pool.pages_away == 1


async def test_pool_falls_back_in_process_when_a_decoder_dies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with DecoderPool(1) as pool:
        await pool.start()
        await pool.ready()
        pool._children[0].proc.kill()
        pool._children[0].proc.wait()
        with caplog.at_level(logging.WARNING, logger="stacfetch"):
            page = await pool.decode(body(ITEMS[:7]), "a")
        assert page.table is not None
        assert page.table.num_rows == 7
        assert pool._broken
        assert "decoding in-process" in caplog.text
        assert (pool.pages_away, pool.pages_here) == (0, 1)


async def test_pages_before_the_decoders_are_ready_are_decoded_here() -> None:
    async with DecoderPool(1) as pool:
        assert (await pool.decode(body(ITEMS[:4]), "a")).table is not None  # not started
        await pool.start()
        page = await pool.decode(body(ITEMS[:4]), "a")  # the child is still importing
        assert page.table is not None
        assert page.table.num_rows == 4
        assert pool.pages_here == 2
        assert await pool.ready() == 1
        await pool.decode(body(ITEMS[:4]), "a")
        assert pool.pages_away == 1


async def test_waiters_do_not_hang_when_the_only_decoder_dies() -> None:
    async with DecoderPool(1) as pool:
        await pool.start()
        await pool.ready()
        pool._children[0].proc.kill()
        pages = await asyncio.wait_for(
            asyncio.gather(*(pool.decode(body(ITEMS[i : i + 3]), "a") for i in range(0, 30, 3))),
            timeout=30,
        )
    assert [p.table.num_rows for p in pages if p.table is not None] == [3] * 10


# -- the engine with decoders ---------------------------------------------------------------------
async def run_engine(
    api: FakeApi,
    decoder: DecoderPool | None,
    workers: int = 4,
    limit: int = 10,
    min_items: int = 0,
) -> tuple[list[pa.Table], list[dict[str, Any]], FailureCollector]:
    pages: list[Page] = []
    items, failures, _, _ = await run(
        api,
        workers=workers,
        limit=limit,
        pages=pages,
        decoder=decoder,
        decoder_min_items=min_items,
    )
    tables = []
    for page in pages:
        if page.table is not None:
            assert page.table.column("id").to_pylist() == [i["id"] for i in page.items]
            tables.append(page.table)
    return tables, items, failures


async def test_engine_with_decoders_delivers_each_item_once_as_arrow() -> None:
    api = FakeApi(ITEMS)  # range items overlap many chunks: duplicates get taken out of tables
    async with DecoderPool(2) as pool:
        await pool.start()
        await pool.ready()
        tables, stubs, failures = await run_engine(api, pool, workers=8, limit=7)
        assert pool.pages_away > 0
    assert not failures
    ids = [i for t in tables for i in t.column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == len(ITEMS)
    assert set(ids) == {it["id"] for it in ITEMS}
    assert [s["id"] for s in stubs] == ids
    _, plain, _ = await run_engine(FakeApi(ITEMS), None, workers=8, limit=7)
    assert {it["id"] for it in plain} == set(ids)


async def test_small_runs_by_the_counts_do_not_start_decoders() -> None:
    async with DecoderPool(2) as pool:
        tables, items, failures = await run_engine(FakeApi(ITEMS), pool, min_items=10 * len(ITEMS))
        assert not pool._children  # never started
        assert pool.pages_away == 0
        assert pool.pages_here > 0  # decoded to Arrow in this process instead
    assert not failures
    ids = [i for t in tables for i in t.column("id").to_pylist()]
    assert sorted(ids) == sorted(it["id"] for it in ITEMS)
    assert {it["id"] for it in items} == set(ids)
    async with DecoderPool(2) as pool:  # without counts the size is unknown: started
        await run_engine(FakeApi(ITEMS, counts=False), pool, min_items=10 * len(ITEMS))
        assert len(pool._children) == 2


async def test_items_that_do_not_convert_fail_their_chunk_only() -> None:
    api = FakeApi(ITEMS)
    original = api.search

    def search(request_body: dict[str, Any]) -> dict[str, Any]:
        page = original(request_body)
        page["features"] = [
            {**f, "properties": "not an object"} if f["id"] == ITEMS[5]["id"] else f
            for f in page["features"]
        ]
        return page

    api.search = search  # type: ignore[method-assign,assignment]
    async with DecoderPool(1) as pool:
        await pool.start()
        await pool.ready()
        tables, _, failures = await run_engine(api, pool, workers=4, limit=20)
    assert len(failures) >= 1
    assert {r.error_type for r in failures} == {"InvalidItems"}
    assert "properties is not an object" in failures[0].message
    ids = {i for t in tables for i in t.column("id").to_pylist()}
    assert ITEMS[5]["id"] not in ids
    assert len(ids) > len(ITEMS) // 2  # the other chunks went on


async def test_invalid_json_from_a_decoder_is_retried() -> None:
    answers = [b"<html>oops</html>", body(ITEMS[:3])]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=answers.pop(0))

    retry = RetryConfig(max_retries=2, backoff_base=0.001, backoff_max=0.01)
    async with (
        HttpSession(retry, max_concurrency=2, transport=httpx.MockTransport(handler)) as http,
        DecoderPool(1) as pool,
    ):
        await pool.start()
        await pool.ready()
        attempts: list[str] = []

        async def decode(content: bytes) -> Any:
            return await pool.decode(content, "a")

        page = await http.fetch(
            SearchRequest("GET", f"{ROOT}/search"),
            decode,
            on_retry=lambda attempt, status, error, delay: attempts.append(error),
        )
    assert page.table is not None
    assert page.table.num_rows == 3
    assert len(attempts) == 1
    assert attempts[0].startswith("InvalidJSON")
    assert pool.pages_away == 1


# -- through the Ingestor -------------------------------------------------------------------------
def test_ingest_with_and_without_decoders_gives_the_same_frame() -> None:
    items = [dict(it) for it in ITEMS]
    with StacServer(items) as server:
        frames = [
            Ingestor(
                server.url,
                collections=["a"],
                concurrency=4,
                limit=25,
                progress=False,
                decoders=n,
            ).ingest()
            for n in (0, 2)
        ]
    a, b = (f.sort_values("id").reset_index(drop=True) for f in frames)
    assert len(a) == len(ITEMS)
    assert list(a.columns) == list(b.columns)
    assert a["id"].tolist() == b["id"].tolist()
    assert a["datetime"].tolist() == b["datetime"].tolist()
    assert a.geometry.equals(b.geometry)


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_decoders_must_be_a_count(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"decoders: expected an integer >= 0"):
        Ingestor("https://example.org/stac", collections=["a"], decoders=value)


async def test_decoders_work_from_the_runner_thread_of_a_running_loop() -> None:
    """In Jupyter the run happens on a fresh loop in a worker thread (stacfetch._run.sync)."""
    from stacfetch._run.sync import run_sync

    async def decode_in_pool() -> tuple[int, int]:
        async with DecoderPool(1) as pool:
            await pool.start()
            await pool.ready()
            page = await pool.decode(body(ITEMS[:9]), "a")
            assert page.table is not None
            return page.table.num_rows, pool.pages_away

    assert asyncio.get_running_loop().is_running()  # as in a notebook cell
    assert run_sync(decode_in_pool) == (9, 1)


def test_to_parquet_through_decoder_processes_writes_each_item_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above DECODER_MIN_ITEMS the decoders start; parts are cut from their Arrow tables."""
    from stacfetch import read_geoparquet
    from stacfetch._engine.pages import DECODER_MIN_ITEMS

    away: list[int] = []
    close = DecoderPool.aclose

    async def counting_close(pool: DecoderPool) -> None:
        away.append(pool.pages_away)
        await close(pool)

    monkeypatch.setattr(DecoderPool, "aclose", counting_close)
    n = DECODER_MIN_ITEMS + 2_000
    items = make_items("a", n, datetime(2020, 1, 1, tzinfo=UTC), timedelta(minutes=7))
    with StacServer(items, page_delay=0.2) as server:  # a run long enough to use them
        ing = Ingestor(
            server.url, collections=["a"], concurrency=4, limit=500, progress=False, decoders=2
        )
        path = ing.to_parquet(tmp_path / "out", rows_per_part=5_000)
    assert away
    assert away[0] > 0  # pages went through the decoder processes
    parts = sorted(path.glob("*.parquet"))
    gdf = read_geoparquet(path)
    assert len(gdf) == gdf["id"].nunique() == n
    assert set(gdf["id"]) == {it["id"] for it in items}
    assert len(parts) >= n // 5_000
