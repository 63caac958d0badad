"""to_parquet on a Dask LocalCluster (two worker processes) against the real pgstac server.

Every dataset is compared with the single-machine run and the sequential reference: the same
(collection, id) set, no duplicates. The fault proxy in front of pgstac shows what the server
saw: requests in flight at once, throttling pauses, a failure window.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed", reason="needs the optional extra stacfetch[dask]")

import dask
import pyarrow.parquet as pq
from distributed import Client, LocalCluster, get_task_stream

import stacfetch
from stacfetch import Ingestor
from stacfetch._dask.read import read_dask_geodataframe
from stacfetch._formats.geoparquet import write_geoparquet
from stacfetch._formats.tables import items_to_arrow
from stacfetch._model.datetimes import parse_datetime
from stacfetch._model.events import ChunkSplit, EntryPlanned, Event, PageFetched
from stacfetch._run.part_dedup import deduplicate_parts
from stacfetch._run.resume import MANIFEST_NAME, Manifest
from tests.support.faultproxy import FaultProxy, overlaps
from tests.support.itemgen import generate_items

pytestmark = pytest.mark.integration

Ref = Callable[[Mapping[str, Any]], set[tuple[str, str]]]
QUICK = {"backoff_base": 0.05, "backoff_max": 1.0, "max_retries": 10, "timeout": 20.0}


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two worker processes, one thread each; leases of a killed worker expire in seconds."""
    quick_leases = {
        "distributed.scheduler.locks.lease-timeout": "4s",
        "distributed.scheduler.locks.lease-validation-interval": "500ms",
    }
    with dask.config.set(quick_leases):
        cluster = LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        )
        dask_client = Client(cluster)
        try:
            yield dask_client
        finally:
            dask_client.close()
            cluster.close()


class Events:
    """A progress sink keeping every event the driver emits."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def on_dask(ing: Ingestor, out: Path, client: Client, **kwargs: Any) -> Path:
    """``ing.to_parquet(out, client=client)``: the public path users take."""
    return ing.to_parquet(out, client=client, **kwargs)


def keys(path: Path) -> list[tuple[str, str]]:
    gdf = stacfetch.read_geoparquet(path)
    return list(zip(gdf["collection"], gdf["id"], strict=True))


def parts(path: Path) -> list[Path]:
    return sorted(path.glob("e*.parquet"))


SEARCH: dict[str, Any] = {"collections": ["sf-a", "sf-b"], "datetime": "2021-03/2021-12"}
"""Both collections, about 2,250 items: range items and boundaries of both entries inside."""


def expected_ids(reference_ids: Ref) -> set[tuple[str, str]]:
    """The sequential reference of ``SEARCH``."""
    interval = parse_datetime(SEARCH["datetime"])
    assert interval is not None
    body = {"datetime": interval.to_param()}
    return reference_ids({"collections": ["sf-a"], **body}) | reference_ids(
        {"collections": ["sf-b"], **body}
    )


def test_same_set_as_one_machine_and_the_reference(
    stac_url: str, client: Client, reference_ids: Ref, tmp_path: Path
) -> None:
    sink = Events()
    ing = Ingestor(stac_url, **SEARCH, concurrency=3, limit=100, progress=sink)
    out = on_dask(ing, tmp_path / "dask.parquet", client)
    got = keys(out)
    assert len(got) == len(set(got))
    expected = expected_ids(reference_ids)
    assert set(got) == expected
    single = Ingestor(stac_url, **SEARCH, concurrency=3, limit=100, progress=False)
    assert set(keys(single.to_parquet(tmp_path / "one.parquet"))) == expected
    assert not ing.failures
    assert Manifest.open(out, ing.run.signature()).complete
    # parts are named after chunks; the copies two chunks both fetched were removed once
    assert all(len(p.name.split("-")[1]) == 16 for p in parts(out))
    removed = [e for e in sink.events if isinstance(e, PageFetched) and e.chunk_id == "dedup"]
    assert removed
    assert all(e.new < 0 for e in removed)
    progress = ing.tracker.entries
    assert sum(p.items for p in progress.values()) == len(expected)
    assert all(p.status == "done" for p in progress.values())
    # read back lazily: one partition per part, the same rows
    ddf = read_dask_geodataframe(out)
    assert type(ddf).__module__.startswith("dask_geopandas")
    assert ddf.npartitions == len(parts(out))
    lazy = ddf.compute()
    assert set(zip(lazy["collection"], lazy["id"], strict=True)) == expected
    assert "UTC" in str(lazy["datetime"].dtype)
    assert set(lazy.columns) == set(stacfetch.read_geoparquet(out).columns)
    assert list(read_dask_geodataframe(out, columns=["id"]).columns) == ["id", "geometry"]
    # one schema for every part (0005): standard readers read the Dask output whole
    import dask_geopandas

    assert len({pq.read_schema(p).to_string() for p in parts(out)}) == 1
    everything = set(stacfetch.read_geoparquet(out).columns)
    table = pq.read_table(out)
    assert table.num_rows == len(expected)
    assert set(table.column_names) == everything
    theirs = dask_geopandas.read_parquet(out).compute()
    assert len(theirs) == len(expected)
    assert set(theirs.columns) == everything


def test_concurrency_cap_holds_across_workers(
    fault_proxy: Callable[..., FaultProxy], client: Client, reference_ids: Ref, tmp_path: Path
) -> None:
    proxy = fault_proxy(slow_rate=1.0, slow_seconds=0.05)
    sink = Events()
    ing = Ingestor(proxy.url, collections=["sf-b"], concurrency=1, limit=50, progress=sink)
    with get_task_stream(client) as stream:
        out = on_dask(ing, tmp_path / "cap.parquet", client)
    assert set(keys(out)) == reference_ids({"collections": ["sf-b"]})
    assert proxy.max_in_flight == 1  # two workers, a budget of one request at a time
    # chunks that proved large (5 pages and more to come) were split on the workers, and their
    # children submitted as new tasks
    splits = [e for e in sink.events if isinstance(e, ChunkSplit)]
    assert splits
    plan = next(e for e in sink.events if isinstance(e, EntryPlanned))
    progress = ing.tracker.entries[plan.entry_key]
    assert progress.chunks_planned == plan.chunks + sum(e.into for e in splits)
    assert progress.chunks_done == progress.chunks_planned
    # both workers really ran chunks at the same time
    spans = [
        (task["worker"], s["start"], s["stop"])
        for task in stream.data
        if str(task["key"]).startswith("stacfetch-chunk")
        for s in task["startstops"]
        if s["action"] == "compute"
    ]
    assert len({w for w, _, _ in spans}) == 2
    assert any(
        a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in spans for b in spans if a is not b
    )


def test_throttling_pauses_every_worker(
    fault_proxy: Callable[..., FaultProxy], client: Client, reference_ids: Ref, tmp_path: Path
) -> None:
    proxy = fault_proxy(throttle_rate=0.06, retry_after=1, retry_after_date_rate=0.0, seed=3)
    ing = Ingestor(
        proxy.url, collections=["sf-b"], concurrency=2, limit=50, retry=QUICK, progress=False
    )
    out = on_dask(ing, tmp_path / "throttled.parquet", client)
    got = keys(out)
    assert len(got) == len(set(got))
    assert set(got) == reference_ids({"collections": ["sf-b"]})
    assert not ing.failures
    records = proxy.records
    throttles = [r.at for r in records if r.outcome == "throttle"]
    assert throttles, proxy.counters
    # after a 429 with Retry-After: 1, no worker starts a request until the pause is over
    # (0.5 s of slack: tasks re-read the shared pause board every 0.25 s, and a task that
    # starts meanwhile reads it before its first request; 0.42 s was seen on a loaded machine)
    for t in throttles:
        during = [r for r in records if t + 0.5 < r.at < t + 0.9]
        assert not during, (t, during[:3])


def test_permanent_failure_window_then_retry_heals(
    fault_proxy: Callable[..., FaultProxy], client: Client, reference_ids: Ref, tmp_path: Path
) -> None:
    proxy = fault_proxy()
    window = ("2021-03-01T00:00:00Z", "2021-03-15T00:00:00Z")
    rule = proxy.fail_when(overlaps(*window))
    ing = Ingestor(
        proxy.url,
        collections=["sf-a"],
        datetime="2020-06/2021-12",
        concurrency=3,
        limit=100,
        retry={**QUICK, "max_retries": 2},
        progress=False,
    )
    out = on_dask(ing, tmp_path / "window.parquet", client)
    records = list(ing.failures)
    assert records
    assert len({r.chunk_id for r in records}) == len(records)
    for r in records:
        assert (r.status_code, r.attempts, r.method, r.collection_id) == (503, 3, "POST", "sf-a")
    full_iv = parse_datetime("2020-06/2021-12")
    assert full_iv is not None
    full = reference_ids({"collections": ["sf-a"], "datetime": full_iv.to_param()})
    failed = [r.interval for r in records]
    lost = set().union(*(reference_ids({"collections": ["sf-a"], "datetime": iv}) for iv in failed))
    got = set(keys(out))
    assert full - lost <= got < full
    assert not Manifest.open(out, ing.run.signature()).complete

    proxy.heal(rule)
    proxy.reset()
    out = on_dask(ing, out, client)  # resume: only what is pending is submitted
    again = keys(out)
    assert not ing.failures
    assert len(again) == len(set(again))
    assert set(again) == full
    assert Manifest.open(out, ing.run.signature()).complete
    spans = [parse_datetime(iv) for iv in failed]
    searched = [r for r in proxy.records if r.target.startswith("/search")]
    assert searched
    for r in searched:
        asked = parse_datetime(r.json["datetime"])
        assert asked is not None
        assert any(
            s is not None
            and (s.start is None or (asked.start is not None and s.start <= asked.start))
            and (s.end is None or (asked.end is not None and asked.end <= s.end))
            for s in spans
        ), r.json["datetime"]


def test_final_pass_keeps_one_copy_in_the_first_part(tmp_path: Path) -> None:
    start = datetime.fromisoformat("2021-01-01T00:00:00+00:00")
    items = generate_items("dup", 30, start, datetime.fromisoformat("2021-02-01T00:00:00+00:00"))
    write_geoparquet(items_to_arrow(items[:20]), tmp_path / "e00-00000000000000aa-00000.parquet")
    write_geoparquet(items_to_arrow(items[10:]), tmp_path / "e00-00000000000000bb-00000.parquet")
    write_geoparquet(items_to_arrow(items[:5]), tmp_path / "e00-00000000000000cc-00000.parquet")
    write_geoparquet(items_to_arrow(items[:5]), tmp_path / "e01-00000000000000aa-00000.parquet")
    assert deduplicate_parts(tmp_path) == {0: 15}
    assert deduplicate_parts(tmp_path) == {}
    first = pq.read_table(tmp_path / "e00-00000000000000aa-00000.parquet")
    second = pq.read_table(tmp_path / "e00-00000000000000bb-00000.parquet")
    assert first.num_rows == 20
    assert second.column("id").to_pylist() == [it["id"] for it in items[20:]]
    assert not (tmp_path / "e00-00000000000000cc-00000.parquet").exists()
    assert len(pq.read_table(tmp_path / "e01-00000000000000aa-00000.parquet")) == 5  # own entry
    assert b"geo" in (second.schema.metadata or {})


def test_worker_killed_mid_run_still_gives_the_exact_set(
    fault_proxy: Callable[..., FaultProxy], client: Client, reference_ids: Ref, tmp_path: Path
) -> None:
    proxy = fault_proxy(slow_rate=1.0, slow_seconds=0.1)
    ing = Ingestor(proxy.url, **SEARCH, concurrency=2, limit=100, retry=QUICK, progress=False)
    out = tmp_path / "killed.parquet"
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["path"] = on_dask(ing, out, client)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    victim = None
    while victim is None:
        assert thread.is_alive(), f"the run ended before a worker could be killed: {result}"
        assert time.monotonic() < deadline, "no chunk task ever ran"
        busy = {
            w: ks
            for w, ks in client.processing().items()
            if any(str(k).startswith("stacfetch-chunk") for k in ks)
        }
        if len(parts(out)) >= 3 and busy:
            victim = next(iter(busy))
        else:
            time.sleep(0.05)
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    thread.join(100)
    assert not thread.is_alive()
    assert "error" not in result, result.get("error")
    assert victim not in client.scheduler_info()["workers"]
    got = keys(result["path"])
    assert not ing.failures
    assert len(got) == len(set(got))
    assert set(got) == expected_ids(reference_ids)
    assert (out / MANIFEST_NAME).exists()
    assert Manifest.open(out, ing.run.signature()).complete


def test_cli_dask_option(
    client: Client,
    stac_url: str,
    reference_ids: Ref,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stacfetch._cli import main

    out = tmp_path / "cli.parquet"
    address = client.scheduler.address
    code = main(
        [
            "ingest",
            stac_url,
            "-c",
            "sf-b",
            "--datetime",
            "2021-12",
            "-o",
            str(out),
            "--dask",
            address,
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    expected = reference_ids(
        {"collections": ["sf-b"], "datetime": "2021-12-01T00:00:00Z/2021-12-31T23:59:59.999999Z"}
    )
    got = keys(out)
    assert len(got) == len(set(got))
    assert set(got) == expected
    assert main(["ingest", stac_url, "-c", "sf-b", "--dask", address]) == 2
    assert "--dask needs -o" in capsys.readouterr().err
