"""Collections of four shapes on a latency-bound server: stacfetch vs sequential pystac-client.

Shapes (tests/support/shapes.py): one timestamp (a DEM), annual ranges (composites), a burst
(80 % of items in one day), uniform. The server is stacfetch's in-memory StacServer in this
process (pre-serialised items; each page sleeps ``--page-delay`` + ``--item-delay`` per item,
so its CPU stays out of the way) with a default order that is not datetime (``--order``, ``id``
by default, as ``rustac serve`` with items loaded in id order). Each contender runs in a child
process, its search clock started after its imports (both import pystac-client, which takes
seconds where Jupyter's packages give jsonschema its format checkers; the time with imports is
printed too); the server counts the items it sent (traffic) per run.

    python benchmarks/bench_shapes.py --items 20000 --concurrency 16 --repeat 1

``--datetime-misses N`` gives the server a datetime filter that misses every N-th item: the
time fallback (a space split, or paging unsplit) against sequential paging.

Prints one row per shape and contender: seconds, items, items sent by the server per item
of the collection, and the ratio to pystac-client in the same round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stacfetch._testing.server import StacServer  # noqa: E402
from tests.support.shapes import SHAPES, make_shape  # noqa: E402

CHILD = """
import json, sys, time
spec = json.loads(sys.argv[1])
t0 = time.perf_counter()
import pystac_client
if spec["contender"] != "pystac":
    import asyncio
    import stacfetch
t1 = time.perf_counter()  # the search's clock starts after the imports (as in a notebook)
if spec["contender"] == "pystac":
    client = pystac_client.Client.open(spec["url"])
    search = client.search(collections=["c"], limit=spec["limit"])
    ids = [it["id"] for it in search.items_as_dicts()]
else:
    ing = stacfetch.Ingestor(spec["url"], collections=["c"], concurrency=spec["concurrency"],
                             limit=spec["limit"], progress=False)
    async def main():
        return [it["id"] for it in [x async for x in ing.stream()]]
    ids = asyncio.run(main())
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "with_imports": t2 - t0, "items": len(ids),
                  "unique": len(set(ids))}))
"""


def run(contender: str, server: StacServer, args: argparse.Namespace) -> dict[str, Any]:
    before = server.counters["items_served"]
    spec = {
        "contender": contender,
        "url": server.url,
        "limit": args.limit,
        "concurrency": args.concurrency,
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["served"] = server.counters["items_served"] - before
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--page-delay", type=float, default=0.3)
    parser.add_argument("--item-delay", type=float, default=0.001)
    parser.add_argument("--order", default="id")
    parser.add_argument("--no-counts", action="store_true")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument(
        "--datetime-misses",
        type=int,
        default=0,
        metavar="N",
        help="the server's datetime filter misses every N-th item (a server bug stacfetch must "
        "notice and fall back from); 0: a faithful filter",
    )
    args = parser.parse_args()
    every = args.datetime_misses
    misses = (lambda item: zlib.crc32(item["id"].encode()) % every == 0) if every else None
    print(
        f"# {args.items} items, concurrency {args.concurrency}, limit {args.limit}, order "
        f"{args.order}, counts {'off' if args.no_counts else 'on'}, page {args.page_delay} s "
        f"+ {args.item_delay * 1000:g} ms/item"
        + (f", datetime filter misses 1/{every}" if every else "")
    )
    print(
        "| shape | contender | median s | with imports s | items | sent / items "
        "| vs pystac-client | with imports |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for shape in args.shapes.split(","):
        items = make_shape(shape, args.items)
        with StacServer(
            items,
            page_delay=args.page_delay,
            item_delay=args.item_delay,
            order=args.order,
            counts=not args.no_counts,
            max_limit=10_000,
            datetime_filter_misses=misses,
        ) as server:
            runs: dict[str, list[dict[str, Any]]] = {"pystac": [], "stacfetch": []}
            for _ in range(args.repeat):
                for contender in runs:  # interleaved rounds
                    runs[contender].append(run(contender, server, args))
        base = statistics.median(r["seconds"] for r in runs["pystac"])
        base_all = statistics.median(r["with_imports"] for r in runs["pystac"])
        for contender, rs in runs.items():
            secs = statistics.median(r["seconds"] for r in rs)
            whole = statistics.median(r["with_imports"] for r in rs)
            sent = statistics.median(r["served"] for r in rs) / args.items
            ok = all(r["items"] == r["unique"] == args.items for r in rs)
            print(
                f"| {shape} | {contender} | {secs:.2f} | {whole:.2f} "
                f"| {rs[-1]['items']}{'' if ok else ' (!)'} | {sent:.2f} | {base / secs:.1f}x "
                f"| {base_all / whole:.1f}x |",
                flush=True,
            )
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
