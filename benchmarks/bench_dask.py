"""Benchmark: ``to_parquet`` on one machine vs on a Dask LocalCluster, same server, same items.

Starts a real stac-fastapi-pgstac (``tests.support.pgstac``) loaded with ``--items`` generated
items in one collection (or uses ``--url``/``--collection``), starts a ``LocalCluster`` once
(its start-up is reported, not timed), then runs, interleaved for ``--repeat`` rounds after one
warm-up round:

  single  ``Ingestor(url, collections=[c], concurrency=N, limit=L).to_parquet(dir)``
  dask    the same with ``client=`` a LocalCluster of ``--workers`` processes x ``--threads``

Every run must write exactly the loaded items, once each (checked by reading the dataset back);
a run that did not is VOID. Medians are printed, and one Markdown line for docs/benchmarks.md.

Usage (from the repository root):
    python benchmarks/bench_dask.py                          # 20,000 items, 3 rounds
    python benchmarks/bench_dask.py --items 50000 --workers 4 --threads 2 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COLLECTION = "bench"
START = datetime(2020, 1, 1, tzinfo=timezone.utc)
END = datetime(2022, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


@contextlib.contextmanager
def server(args: argparse.Namespace) -> Iterator[tuple[str, str, int | None]]:
    """Yield (url, collection, expected item count or None)."""
    if args.url:
        yield args.url, args.collection, None
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.itemgen import generate_items, make_collection
    from tests.support.pgstac import PgstacServer

    t0 = time.perf_counter()
    with PgstacServer() as pg:
        pg.load_collections([make_collection(COLLECTION, START, END)])
        loaded = pg.load_items(generate_items(COLLECTION, args.items, START, END))
        print(f"  pgstac up, {loaded} items loaded in {time.perf_counter() - t0:.0f} s")
        yield pg.url, COLLECTION, loaded


def check(path: Path, expected: int | None) -> tuple[int, bool]:
    import pyarrow.parquet as pq

    ids: list[tuple[str, str]] = []
    for part in sorted(path.glob("e*.parquet")):
        keys = pq.read_table(part, columns=["collection", "id"])
        ids += zip(
            keys.column("collection").to_pylist(), keys.column("id").to_pylist(), strict=True
        )
    ok = len(ids) == len(set(ids)) and (expected is None or len(ids) == expected)
    return len(ids), ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--url", help="use this STAC API instead of starting pgstac")
    parser.add_argument("--collection", default=COLLECTION)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    import stacfetch
    from stacfetch._dask.driver import dask_to_parquet

    work = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    times: dict[str, list[float]] = {"single": [], "dask": []}
    void = 0
    with server(args) as (url, collection, expected):
        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=args.threads,
            processes=True,
            dashboard_address=":0",
        )
        client = Client(cluster)
        up = time.perf_counter() - t0
        print(f"  LocalCluster {args.workers}x{args.threads} up in {up:.1f} s")

        def ingestor() -> Any:
            return stacfetch.Ingestor(
                url,
                collections=[collection],
                concurrency=args.concurrency,
                limit=args.limit,
                progress=False,
            )

        runners: dict[str, Callable[[Path], Path]] = {
            "single": lambda out: ingestor().to_parquet(out),
            "dask": lambda out: asyncio.run(dask_to_parquet(ingestor(), out, client)),
        }
        try:
            for r in range(args.repeat + 1):
                order = list(runners) if r % 2 == 0 else list(reversed(runners))
                for name in order:
                    out = work / f"{name}-{r}.parquet"
                    t = time.perf_counter()
                    runners[name](out)
                    elapsed = time.perf_counter() - t
                    count, ok = check(out, expected)
                    shutil.rmtree(out, ignore_errors=True)
                    label = "warm-up" if r == 0 else f"round {r}"
                    flag = "" if ok else "  VOID: wrong item set"
                    print(f"  {label:8} {name:6} {elapsed:7.2f} s  {count} items{flag}")
                    void += not ok
                    if r and ok:
                        times[name].append(elapsed)
                    expected = expected if expected is not None else count
        finally:
            client.close()
            cluster.close()
            shutil.rmtree(work, ignore_errors=True)
    if void or not all(times.values()):
        print(f"{void} VOID run(s): no result", file=sys.stderr)
        return 1
    single, dask = (statistics.median(times[k]) for k in ("single", "dask"))
    n = expected or 0
    cpus = os.cpu_count()
    print(
        f"\n| pgstac {n:,} items, concurrency {args.concurrency}, limit {args.limit}, "
        f"{cpus} CPUs ({platform.python_version()}) | single machine {single:.1f} s "
        f"({n / single:,.0f} items/s) | LocalCluster {args.workers}x{args.threads} {dask:.1f} s "
        f"({n / dask:,.0f} items/s) | dask/single {dask / single:.2f} | median of {args.repeat} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
