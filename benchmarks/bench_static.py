"""stac-fastapi-static: a server where every search with a filter walks the whole catalog.

stac-fastapi-static needs older starlette and fastapi than the rest of the environment, so it
runs from its own virtual environment (``--server-python``), made once with:

    python -m venv /tmp/sfs-venv
    /tmp/sfs-venv/bin/pip install stac-fastapi-static==1.0.1 uvicorn "starlette<0.46" \\
        "fastapi<0.116" pystac

That interpreter also writes the self-contained catalog (``bench_scale.py``'s small items, one
collection). Each contender runs in a child process and starts its clock after its imports:

    python benchmarks/bench_static.py --server-python /tmp/sfs-venv/bin/python --items 2000

Prints one row per contender and round: seconds, items, distinct items, and for stacfetch the
searches it sent and whether it noticed that splits do not pay here.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

CATALOG = """
import sys
sys.path.insert(0, sys.argv[3])
import pystac
from benchmarks.bench_scale import small_item
n, out = int(sys.argv[1]), sys.argv[2]
items = [pystac.Item.from_dict(small_item(i)) for i in range(n)]
extent = pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]),
                       pystac.TemporalExtent([[items[0].datetime, items[-1].datetime]]))
collection = pystac.Collection("c", "benchmark items", extent=extent)
for item in items:
    collection.add_item(item)
catalog = pystac.Catalog("root", "stacfetch static benchmark")
catalog.add_child(collection)
catalog.normalize_hrefs(out)
catalog.save(pystac.CatalogType.SELF_CONTAINED)
"""

CHILD = """
import json, sys, time
spec = json.loads(sys.argv[1])
if spec["contender"] == "pystac":
    import pystac_client
    t0 = time.perf_counter()
    search = pystac_client.Client.open(spec["url"]).search(collections=["c"], limit=spec["limit"])
    ids = [it["id"] for it in search.items_as_dicts()]
    extra = {}
else:
    import asyncio
    import pystac_client  # imported by stacfetch's discovery: outside the clock for both
    import stacfetch
    from stacfetch._model.events import Notice
    notices = []
    class Sink:
        def emit(self, event):
            if isinstance(event, Notice):
                notices.append(event.message)
    ing = stacfetch.Ingestor(spec["url"], collections=["c"], concurrency=spec["concurrency"],
                             limit=spec["limit"], progress=Sink())
    async def main():
        return [it["id"] async for it in ing.stream()]
    t0 = time.perf_counter()
    ids = asyncio.run(main())
    extra = {"noticed": bool(notices), "failures": len(ing.failures)}
print(json.dumps({"seconds": time.perf_counter() - t0, "items": len(ids),
                  "unique": len(set(ids)), **extra}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"stac-fastapi-static did not answer at {url}")


def run(contender: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = {"contender": contender, "url": url, "limit": args.limit,
            "concurrency": args.concurrency}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server-python", required=True)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog"
        subprocess.run(
            [args.server_python, "-c", CATALOG, str(args.items), str(catalog), str(ROOT)],
            check=True,
        )
        port = free_port()
        env = {
            **os.environ,
            "CATALOG_HREF": str(catalog / "catalog.json"),
            "APP_PORT": str(port),
            "RELOAD": "false",
            "ASSUME_BEST_PRACTICE_LAYOUT": "true",
        }
        server = subprocess.Popen(
            [args.server_python, "-m", "stac_fastapi.static.app"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_up(url)
            rows: dict[str, list[dict[str, Any]]] = {"pystac": [], "stacfetch": []}
            for _ in range(args.repeat):
                for contender in rows:
                    rows[contender].append(run(contender, url, args))
        finally:
            server.terminate()
            server.wait(10)
    print(f"# {args.items} items, limit {args.limit}, stacfetch concurrency {args.concurrency}")
    print("| contender | median s | runs (s) | items (distinct) | noticed |")
    print("|---|---:|---|---|---|")
    for contender, results in rows.items():
        secs = [r["seconds"] for r in results]
        counts = ", ".join(f"{r['items']} ({r['unique']})" for r in results)
        noticed = ", ".join(str(r.get("noticed", "-")) for r in results)
        runs = ", ".join(f"{s:.2f}" for s in secs)
        print(f"| {contender} | {statistics.median(secs):.2f} | {runs} | {counts} | {noticed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
