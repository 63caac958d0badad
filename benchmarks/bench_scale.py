"""Benchmark: is the cost per item linear? ``to_parquet`` of 10,000 / 100,000 / 1,000,000 items
and ``ingest()`` of 10,000 / 100,000, over HTTP from a latency-bound server.

The server is stacfetch's in-memory ``StacServer`` as a subprocess, as in bench_fetch's remote
regime: each page sleeps ``--page-delay`` + ``--item-delay`` x items (0.3 s + 1 ms), 429
beyond 32 requests in flight. Items are small (~1 KB: a polygon, four properties, two assets)
so that a million of them fit in the server's memory next to the client; one item per second
from 2020-01-01, so the first N items are exactly the search ``datetime=[t0, t0 + N - 1 s]``.

Every run is a fresh subprocess: wall time, client CPU of the whole process tree (the run and
its decoder processes), peak RSS of the tree (sampled every 50 ms), items/s, and a check that
the output holds exactly N distinct items (a run that does not is VOID).

Usage (from the repository root):
    python benchmarks/bench_scale.py                          # 10k, 100k, 1M; ~6 min
    python benchmarks/bench_scale.py --sizes 10000,100000 --modes parquet,ingest --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_fetch import COLLECTION, _TreeRss, serve, tree_cpu, wait_children  # noqa: E402

T0 = datetime(2020, 1, 1, tzinfo=timezone.utc)
FMT = "%Y-%m-%dT%H:%M:%SZ"


def small_item(i: int) -> dict[str, Any]:
    """Item ``i``: one second after item ``i - 1``, a small box somewhere on the globe."""
    x = (i * 0.37) % 350 - 175
    y = (i * 0.11) % 160 - 80
    box = [x, y, x + 0.5, y + 0.5]
    when = (T0 + timedelta(seconds=i)).strftime(FMT)
    ring = [[x, y], [x + 0.5, y], [x + 0.5, y + 0.5], [x, y + 0.5], [x, y]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"scale-{i:07d}",
        "collection": COLLECTION,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": box,
        "properties": {
            "datetime": when,
            "platform": "sentinel-2a" if i % 2 else "sentinel-2b",
            "eo:cloud_cover": (i * 7) % 100,
            "gsd": 10,
        },
        "assets": {
            "visual": {"href": f"https://example.com/{i}/visual.tif", "type": "image/tiff"},
            "thumbnail": {"href": f"https://example.com/{i}/thumb.png", "roles": ["thumbnail"]},
        },
        "links": [],
    }


def span(n: int) -> str:
    return f"{T0.strftime(FMT)}/{(T0 + timedelta(seconds=n - 1)).strftime(FMT)}"


# --- one run, in a child process --------------------------------------------------------------


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    import geopandas  # noqa: F401  (imports out of the timing)
    import pyarrow.parquet as pq
    import pystac_client  # noqa: F401

    import stacfetch

    ing = stacfetch.Ingestor(
        spec["url"],
        collections=[COLLECTION],
        datetime=span(spec["items"]),
        concurrency=spec["concurrency"],
        limit=spec["limit"],
        progress=False,
    )
    sampler = _TreeRss()
    cpu0, t0 = _cpu(), time.perf_counter()
    if spec["mode"] == "parquet":
        out = ing.to_parquet(spec["out"])
        seconds = time.perf_counter() - t0
        table = pq.read_table(out, columns=["collection", "id"])
        count = len(set(zip(table["collection"].to_pylist(), table["id"].to_pylist(), strict=True)))
        rows = table.num_rows
    else:
        gdf = ing.ingest()
        seconds = time.perf_counter() - t0
        count = len(set(zip(gdf["collection"], gdf["id"], strict=True)))
        rows = len(gdf)
    wait_children()  # the decoders exit after the run returns: their CPU counts too
    return {
        "seconds": seconds,
        "cpu": _cpu() - cpu0,
        "peak_mb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, sampler.stop()),
        "items": count if count == rows else -rows,
        "failures": len(ing.failures),
    }


# --- the parent -------------------------------------------------------------------------------


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    out = tempfile.mkdtemp(prefix="bench-scale-")
    try:
        cmd = [sys.executable, __file__, "--child", json.dumps({**spec, "out": f"{out}/o"})]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1:] or ["?"]}
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--modes", default="parquet,ingest")
    parser.add_argument("--ingest-max", type=int, default=100_000, help="largest ingest() run")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--page-delay", type=float, default=0.3)
    parser.add_argument("--item-delay", type=float, default=0.001)
    parser.add_argument("--max-concurrent", type=int, default=32)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [m.strip() for m in args.modes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-scale-data-"))
    try:
        ndjson = work / "items.ndjson"
        with ndjson.open("wb") as f:
            for i in range(max(sizes)):
                f.write(orjson.dumps(small_item(i)) + b"\n")
        mb = ndjson.stat().st_size / 2**20
        print(f"{max(sizes):,} items, {mb:,.0f} MB of JSON", file=sys.stderr)
        results: dict[tuple[str, int], list[dict[str, Any]]] = {}
        with serve("remote", ndjson, (T0.strftime(FMT), span(max(sizes))), args) as (url, pids):
            for rnd in range(args.repeat):
                for mode in modes:
                    for n in sizes:
                        if mode == "ingest" and n > args.ingest_max:
                            continue
                        before = tree_cpu(pids)
                        spec = {
                            "url": url,
                            "items": n,
                            "mode": mode,
                            "concurrency": args.concurrency,
                            "limit": args.limit,
                        }
                        r = measure(spec)
                        r["server_cpu"] = tree_cpu(pids) - before
                        results.setdefault((mode, n), []).append(r)
                        print(f"  [round {rnd + 1}] {mode} {n:,}: {r}", file=sys.stderr)
        print(
            "| run | items | wall s | items/s | client CPU s | CPU ms / 1000 items "
            "| peak RSS MB | server CPU s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for (mode, n), runs in results.items():
            good = [r for r in runs if r.get("items") == n and not r.get("failures")]
            if not good:
                print(f"| {mode} | {n:,} | VOID: {runs} |")
                continue
            wall = statistics.median(r["seconds"] for r in good)
            cpu = statistics.median(r["cpu"] for r in good)
            peak = statistics.median(r["peak_mb"] for r in good)
            server = statistics.median(r["server_cpu"] for r in good)
            name = "to_parquet" if mode == "parquet" else "ingest()"
            print(
                f"| {name} | {n:,} | {wall:.1f} | {n / wall:,.0f} | {cpu:.1f} "
                f"| {1e6 * cpu / n:.0f} | {peak:,.0f} | {server:.1f} |"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
