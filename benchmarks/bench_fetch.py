"""Benchmark: fetching every item of a search, stacfetch against pystac-client, rustac and a raw
ceiling, on the same server with the same items in the same run (issue 6).

Regimes (``--regime``, comma-separated, run one after the other):
  remote  stacfetch's in-memory StacServer as a subprocess, emulating a remote API: each page
          sleeps ``--page-delay`` + ``--item-delay`` x items (0.3 s + 1 ms: ~1.3 s per
          1000-item page), 429 beyond ``--max-concurrent`` (32) requests in flight
  pgstac  a real stac-fastapi-pgstac on PostgreSQL on this machine (tests.support.pgstac);
          loading 50,000 items takes about a minute
  rustac  ``rustac serve`` (in-memory backend) as a subprocess, fed an ndjson file

Contenders (``--contenders``, comma-separated; ``N`` is a concurrency from ``--concurrency``):
  pystac+sg     pystac-client ``items_as_dicts()`` then stac-geoparquet
                ``parse_stac_items_to_arrow(items).read_all()``: what users do to get a table
  pystac        the same without the conversion
  rustac+arrow  ``rustac.search_sync`` then ``pa.table(rustac.to_arrow(items))``
  rustac        the same without the conversion
  raw-N         the ceiling: httpx, the datetime range cut into N equal parts fetched in
                parallel, each following ``next`` links exactly; orjson-parsed only to find
                the next link and count the items; the settings stacfetch holds during runs
                (``stacfetch._engine.tuning``: the collector's threshold, 256 KiB socket
                reads), so that it stays a ceiling
  wire-N        the network's ceiling: as raw-N, but no item is parsed: each page's tail
                (after its last ``"links":``, where the in-memory server puts the page's own
                links and counts) gives the next link and ``numberReturned`` (remote regime)
  floor-N       the decoding floor of a faithful Arrow result on this machine: as wire-N, and
                each body goes to a pool of worker processes (one per core, at most 4, as
                stacfetch's decoders) that take the geometries out of the text (pyarrow's
                reader cannot read coordinates nested to different depths) and run pyarrow's
                JSON reader on the rest, nothing more: no stubs, no WKB, no table sent back,
                no GeoDataFrame. The fastest JSON-to-Arrow reader measured here: a
                faithful table built with it costs at least this
  wire+count-N  wire-N after one count probe: a search of the whole span with limit 100
                (the size of stacfetch's first page of a search) answered before the N
                ranges start, as any client that sizes its split from the server's count
                must wait for (it also checks ``numberMatched``)
  floor+count-N floor-N after the same count probe
  ingest-N      ``stacfetch.Ingestor(..., concurrency=N).ingest()`` -> GeoDataFrame (with
                its default decoder processes: one per core, at most 4)
  stream-N      ``async for item in stacfetch.Ingestor(..., concurrency=N).stream()``

Every run is a fresh subprocess (imports out of the timing). Client CPU and peak RSS include
the run's own child processes (stacfetch's decoders): CPU from ``RUSAGE_CHILDREN``, RSS by
sampling the process tree every 50 ms. Runs are
interleaved: round r runs every contender once, in an order rotated by r, for ``--repeat``
rounds; the tables quote medians, and ratios between medians of the same invocation. Every
run must return exactly the items that were loaded (deduplicated by (collection, id)); a run
that did not is VOID and is printed loudly. The server's CPU during each run (process tree,
from /proc via psutil) is reported as a share of the run's wall time, so the figure is the
client's.

Usage (from the repository root):
    python benchmarks/bench_fetch.py --smoke                       # < 2 min, small and quick
    python benchmarks/bench_fetch.py --regime remote --items 50000 --repeat 3
    python benchmarks/bench_fetch.py --regime rustac --items 50000 --repeat 3
    python benchmarks/bench_fetch.py --regime pgstac --items 50000 --repeat 3 \
        --contenders pystac+sg,pystac,rustac,raw-8,ingest-8,stream-8,ingest-16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COLLECTION = "bench"
DEFAULT_CONTENDERS = "pystac+sg,pystac,rustac+arrow,rustac,raw-N,ingest-N,stream-N"
BASELINE = "pystac+sg"


# --- items ----------------------------------------------------------------------------------


def _item_factory() -> Callable[[int, int], dict[str, Any]]:
    """The realistic item generator of the conversion benchmark (Sentinel-2 / Landsat-like)."""
    sys.path.insert(0, str(HERE))
    from bench_convert import make_item

    return make_item


def write_items(n: int, path: Path, seed: int = 0) -> tuple[str, str]:
    """Write ``n`` items of collection ``bench`` as ndjson; return the (start, end) instants
    that bound them (a closed interval every contender searches)."""
    make_item = _item_factory()
    lo = hi = None
    with path.open("wb") as out:
        for i in range(n):
            item = make_item(i, seed)
            item["collection"] = COLLECTION
            props = item["properties"]
            start = props.get("start_datetime") or props["datetime"]
            end = props.get("end_datetime") or props["datetime"]
            lo = start if lo is None or start < lo else lo
            hi = end if hi is None or end > hi else hi
            out.write(orjson.dumps(item) + b"\n")
    assert lo is not None
    assert hi is not None
    return _whole_second(lo, 0), _whole_second(hi, 1)


def _whole_second(stamp: str, up: int) -> str:
    t = datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(microsecond=0)
    return (t + timedelta(seconds=up)).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_items(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for line in f:
            yield orjson.loads(line)


# --- servers --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


@contextlib.contextmanager
def serve(
    regime: str, ndjson: Path, span: tuple[str, str], args: argparse.Namespace
) -> Iterator[tuple[str, list[int]]]:
    """Start the regime's server; yield its URL and the pids whose process trees are its CPU."""
    if regime == "pgstac":
        sys.path.insert(0, str(ROOT))
        from tests.support.itemgen import make_collection, parse_datetime
        from tests.support.pgstac import PgstacServer

        t0 = time.perf_counter()
        with PgstacServer() as server:
            lo, hi = (parse_datetime(v) for v in span)
            server.load_collections([make_collection(COLLECTION, lo, hi)])
            server.load_items(read_items(ndjson))
            print(f"  pgstac up and loaded in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            assert server.root is not None
            assert server._api is not None
            with open(os.path.join(server.root, "data", "postmaster.pid")) as f:
                postmaster = int(f.readline())
            yield server.url, [server._api.pid, postmaster]
        return
    port = _free_port()
    if regime == "remote":
        cmd = [sys.executable, "-m", "stacfetch._testing.server", "serve", "--ndjson", str(ndjson)]
        cmd += ["--port", str(port), "--page-delay", str(args.page_delay)]
        cmd += ["--item-delay", str(args.item_delay), "--max-concurrent", str(args.max_concurrent)]
    elif regime == "rustac":
        exe = shutil.which("rustac")
        if exe is None:
            raise RuntimeError("the rustac command is not installed (pip install rustac)")
        cmd = [exe, "serve", "--create-collections", "--addr", f"127.0.0.1:{port}", str(ndjson)]
    else:
        raise ValueError(f"unknown regime {regime!r}")
    log = ndjson.with_name(f"{regime}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/", proc, timeout=600)
        yield url, [proc.pid]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by the process trees rooted at ``pids`` (live and reaped)."""
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = proc.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
    return total


# --- one run (in a child process) -----------------------------------------------------------


def _pystac(spec: dict[str, Any], convert: bool) -> int:
    from pystac_client import Client

    search = Client.open(spec["url"]).search(
        collections=[COLLECTION], datetime=spec["datetime"], limit=spec["limit"]
    )
    items = list(search.items_as_dicts())
    if convert:
        from stac_geoparquet.arrow import parse_stac_items_to_arrow

        table = parse_stac_items_to_arrow(items).read_all()
        assert table.num_rows == len(items)
    return _unique(items)


def _rustac(spec: dict[str, Any], convert: bool) -> int:
    import rustac

    items = rustac.search_sync(
        spec["url"], collections=[COLLECTION], datetime=spec["datetime"], limit=spec["limit"]
    )
    if convert:
        import pyarrow as pa

        table = pa.table(rustac.to_arrow(items))
        assert table.num_rows == len(items)
    return _unique(items)


def _unique(items: Any) -> int:
    keys = {(item.get("collection"), item["id"]) for item in items}
    return len(keys)


async def _raw(
    spec: dict[str, Any],
    n: int,
    parse: bool = True,
    on_body: Callable[[bytes], None] | None = None,
    count: bool = False,
) -> int:
    from stacfetch._engine.tuning import run_settings

    with run_settings():  # stacfetch's run settings (collector, socket reads): still a ceiling
        if count:
            await _count(spec)
        return await _raw_walk(spec, n, parse, on_body)


COUNT_LIMIT = 100
"""The page size of the count probe of ``wire+count-N`` and ``floor+count-N``: the size of
stacfetch's first page of a search (the page whose count sizes its first split)."""


async def _count(spec: dict[str, Any]) -> int:
    """The count probe: the whole span's first page of :data:`COUNT_LIMIT` items."""
    import httpx

    body = {"collections": [COLLECTION], "datetime": spec["datetime"], "limit": COUNT_LIMIT}
    async with httpx.AsyncClient(timeout=600) as client:
        resp = await client.post(f"{spec['url']}/search", json=body)
        resp.raise_for_status()
        matched = orjson.loads(resp.content).get("numberMatched")
    if not isinstance(matched, int):
        raise RuntimeError(f"count probe: no numberMatched ({matched!r})")
    return matched


def _read_page(content: bytes) -> int:
    """A worker of floor-N: geometries out of the text, then pyarrow's reader; rows read."""
    import io

    import pyarrow.json as pa_json

    from stacfetch._formats.pagejson import without_geometries

    data, _ = without_geometries(content)
    options = pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1)
    table = pa_json.read_json(io.BytesIO(data), read_options=options)
    return len(table.column("features")[0]) if "features" in table.column_names else 0


async def _floor(spec: dict[str, Any], n: int, count: bool = False) -> int:
    import asyncio
    from concurrent.futures import ProcessPoolExecutor

    from stacfetch._engine.decoder import default_decoders

    with ProcessPoolExecutor(default_decoders()) as pool:
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[int]] = []

        def read(content: bytes) -> None:
            pending.append(loop.run_in_executor(pool, _read_page, content))

        returned = await _raw(spec, n, parse=False, on_body=read, count=count)
        rows = sum(await asyncio.gather(*pending))
    if rows != returned:
        raise RuntimeError(f"floor: the reader read {rows} features of {returned}")
    return returned


async def _raw_walk(
    spec: dict[str, Any], n: int, parse: bool, on_body: Callable[[bytes], None] | None = None
) -> int:
    import asyncio

    import httpx

    lo, hi = (datetime.fromisoformat(v.replace("Z", "+00:00")) for v in spec["datetime"].split("/"))
    step = (hi - lo) / n
    cuts = [lo + step * k for k in range(n)] + [hi]
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    seen: set[tuple[str, str]] = set()
    returned = [0]

    async def one(client: httpx.AsyncClient, a: datetime, b: datetime) -> None:
        body: dict[str, Any] | None = {"collections": [COLLECTION], "limit": spec["limit"]}
        body["datetime"] = f"{a.strftime(fmt)}/{b.strftime(fmt)}"  # type: ignore[index]
        method, url = "POST", f"{spec['url']}/search"
        while True:
            # Read the body as stacfetch's session does (httpx keeps a response in a reference
            # cycle, so a body it reads itself would wait for the collector): still a ceiling.
            req = client.build_request(method, url, json=body if method == "POST" else None)
            resp = await client.send(req, stream=True)
            try:
                resp.raise_for_status()
                content = b"".join([part async for part in resp.aiter_bytes()])
            finally:
                await resp.aclose()
            if parse:
                page = orjson.loads(content)
                seen.update((f.get("collection"), f["id"]) for f in page["features"])
            else:  # the wire ceiling: no item is parsed; the page's tail tells links and count
                page = orjson.loads(b"{" + content[content.rindex(b'"links":') :])
                returned[0] += page["numberReturned"]
                if on_body is not None:
                    on_body(content)
            del content
            link = next((ln for ln in page.get("links", []) if ln.get("rel") == "next"), None)
            del page  # hold no page while waiting for the next one
            if link is None:
                return
            method, url = link.get("method", "GET").upper(), link["href"]
            new = link.get("body")
            body = {**(body or {}), **(new or {})} if link.get("merge") else new

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await asyncio.gather(*(one(client, cuts[k], cuts[k + 1]) for k in range(n)))
    return len(seen) if parse else returned[0]


class _PlanClock:
    """An event sink noting when the plan was ready (discovery and count probes done)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.planned: float | None = None

    def emit(self, event: Any) -> None:
        if type(event).__name__ == "EntryPlanned" and self.planned is None:
            self.planned = time.perf_counter() - self.t0


def _stacfetch(spec: dict[str, Any], n: int, stream: bool, clock: _PlanClock) -> int:
    import stacfetch

    ing = stacfetch.Ingestor(
        spec["url"],
        collections=[COLLECTION],
        datetime=spec["datetime"],
        concurrency=n,
        limit=spec["limit"],
        progress=clock,
    )
    if stream:
        import asyncio

        async def consume() -> int:
            keys = {(item.get("collection"), item["id"]) async for item in ing.stream()}
            return len(keys)

        count = asyncio.run(consume())
    else:
        gdf = ing.ingest()
        count = len(set(zip(gdf["collection"], gdf["id"], strict=True)))
        assert count == len(gdf), "duplicate rows in the GeoDataFrame"
    if len(ing.failures):
        print(f"stacfetch failures: {len(ing.failures)}", file=sys.stderr)
    return count


def _warm_imports(name: str) -> None:
    """Import what a contender needs before the clock starts."""
    kind = name.split("-")[0]
    if kind.startswith("pystac"):
        import pystac_client
        import stac_geoparquet.arrow  # noqa: F401
    elif kind.startswith("rustac"):
        import pyarrow
        import rustac  # noqa: F401
    elif kind in ("floor", "floor+count"):
        import pyarrow.json  # noqa: F401

        import stacfetch._formats.pagejson
    elif kind in ("ingest", "stream"):
        import geopandas  # noqa: F401
        import pystac_client  # noqa: F401

        import stacfetch
        import stacfetch._formats.tables  # noqa: F401
    import httpx  # noqa: F401


def _total_gb() -> float:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) / 2**20


class _TreeRss:
    """Samples the RSS of this process plus its children (decoders) every 50 ms; the peak."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.peak = 0.0
        self._done = threading.Event()
        me = psutil.Process()

        def run() -> None:
            while not self._done.wait(0.05):
                total = 0
                for proc in [me, *me.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
                self.peak = max(self.peak, total / 2**20)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak


def wait_children(timeout: float = 30.0) -> None:
    """Wait for this process's children (stacfetch's decoders, stopped at the end of a run and
    reaped in the background) to exit, so that their CPU is in ``RUSAGE_CHILDREN``."""
    import psutil

    psutil.wait_procs(psutil.Process().children(), timeout=timeout)
    deadline = time.monotonic() + timeout
    while psutil.Process().children() and time.monotonic() < deadline:
        time.sleep(0.01)


def _cpu() -> float:
    """CPU seconds of this process and of its children that ended (stacfetch's decoders)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed run of one contender; returns seconds, item count, client CPU and peak RSS."""
    name = spec["contender"]
    # A memory cap, so that a runaway contender fails here instead of waking the kernel's OOM
    # killer on a shared machine (rustac + to_arrow needed ~16 GB for 50,000 items).
    cap = int((spec.get("mem_gb") or _total_gb() / 2) * 2**30)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    _warm_imports(name)
    import asyncio

    sampler = _TreeRss()
    cpu0, t0, clock = _cpu(), time.perf_counter(), _PlanClock()
    if name in ("pystac+sg", "pystac"):
        count = _pystac(spec, convert=name == "pystac+sg")
    elif name in ("rustac+arrow", "rustac"):
        count = _rustac(spec, convert=name == "rustac+arrow")
    else:
        kind, n = name.rsplit("-", 1)
        counted = kind.endswith("+count")
        kind = kind.removesuffix("+count")
        if kind in ("raw", "wire"):
            count = asyncio.run(_raw(spec, int(n), parse=kind == "raw", count=counted))
        elif kind == "floor":
            count = asyncio.run(_floor(spec, int(n), count=counted))
        else:
            count = _stacfetch(spec, int(n), stream=kind == "stream", clock=clock)
    seconds = time.perf_counter() - t0
    wait_children()  # (after the clock: the run has returned its result)
    return {
        "seconds": seconds,
        "items": count,
        "client_cpu": _cpu() - cpu0,
        "peak_mb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, sampler.stop()),
        "plan_s": clock.planned,
    }


# --- the parent -----------------------------------------------------------------------------


def measure(spec: dict[str, Any], server_pids: list[int]) -> dict[str, Any]:
    """Run one contender in a fresh subprocess; add the server's CPU over the run."""
    before = tree_cpu(server_pids)
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    server_cpu = tree_cpu(server_pids) - before
    if done.returncode != 0:
        tail = "\n    ".join(done.stderr.strip().splitlines()[-5:])
        return {"error": f"exit {done.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_cpu"] = server_cpu
    if done.stderr.strip():
        result["stderr"] = done.stderr.strip().splitlines()[-1]
    return result


def expand(contenders: str, concurrency: list[int]) -> list[str]:
    names: list[str] = []
    for name in (c.strip() for c in contenders.split(",") if c.strip()):
        if name.endswith("-N"):
            names += [f"{name[:-2]}-{n}" for n in concurrency]
        else:
            names.append(name)
    return list(dict.fromkeys(names))


def run_regime(
    regime: str, args: argparse.Namespace, ndjson: Path, span: tuple[str, str]
) -> dict[str, list[dict[str, Any]]]:
    names = expand(args.contenders, args.concurrency)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with serve(regime, ndjson, span, args) as (url, pids):
        spec = {"url": url, "datetime": f"{span[0]}/{span[1]}", "limit": args.limit}
        spec["mem_gb"] = args.mem_gb
        for _ in range(args.warmup):  # server caches (pgstac) and page cache
            measure({**spec, "contender": f"raw-{max(args.concurrency)}"}, pids)
        for rnd in range(args.repeat):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in order:
                result = measure({**spec, "contender": name}, pids)
                results[name].append(result)
                print(
                    f"  [{regime} round {rnd + 1}] {_line(name, result, args.items)}",
                    file=sys.stderr,
                )
    return results


def _line(name: str, r: dict[str, Any], expected: int) -> str:
    if "error" in r:
        return f"{name}: FAILED {r['error']}"
    flag = "" if r["items"] == expected else f"  <<< VOID: {r['items']} of {expected} items >>>"
    cpu = f"client CPU {r['client_cpu']:.1f} s, server CPU {r['server_cpu']:.1f} s"
    return f"{name}: {r['seconds']:.2f} s, {r['items']} items, {cpu}{flag}"


def _ok(r: dict[str, Any], expected: int) -> bool:
    return "error" not in r and r["items"] == expected


def _ratio(runs: list[dict[str, Any]], ref: list[dict[str, Any]], expected: int) -> str:
    """Median over rounds of ref seconds / runs seconds, both from the same round."""
    pairs = [
        b["seconds"] / a["seconds"]
        for a, b in zip(runs, ref, strict=False)
        if _ok(a, expected) and _ok(b, expected)
    ]
    return f"{statistics.median(pairs):.2f}x" if pairs else "-"


def table(
    regime: str, results: dict[str, list[dict[str, Any]]], expected: int
) -> tuple[str, list[str]]:
    """A markdown table of medians and same-round ratios, and the list of void runs."""
    void = [
        f"{regime} {name} run {k + 1}: {_line(name, r, expected)}"
        for name, runs in results.items()
        for k, r in enumerate(runs)
        if not _ok(r, expected)
    ]
    rows = [
        "| contender | runs | median s | items/s | vs pystac+sg | vs wire-N | vs wire+count-N "
        "| vs raw-N | plan s | client CPU s | server CPU / wall | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        good = [r for r in runs if _ok(r, expected)]
        if not good:
            continue
        med = {k: statistics.median(r[k] for r in good) for k in ("seconds", "client_cpu")}
        share = statistics.median(r["server_cpu"] / r["seconds"] for r in good)
        peak = statistics.median(r["peak_mb"] for r in good)
        plans = [r["plan_s"] for r in good if r.get("plan_s") is not None]
        plan = f"{statistics.median(plans):.1f}" if plans else "-"
        n = name.rsplit("-", 1)[-1]
        raw = results.get(f"raw-{n}")
        vs_raw = _ratio(runs, raw, expected) if raw and name.startswith(("st", "in")) else "-"
        wire = results.get(f"wire-{n}")
        measured = name.startswith(("st", "in", "raw", "floor", "wire+"))
        vs_wire = _ratio(runs, wire, expected) if wire and measured else "-"
        counted = results.get(f"wire+count-{n}")
        later = name.startswith(("st", "in", "floor"))
        vs_counted = _ratio(runs, counted, expected) if counted and later else "-"
        vs_base = _ratio(runs, results[BASELINE], expected) if BASELINE in results else "-"
        rows.append(
            f"| {name} | {len(good)} | {med['seconds']:.2f} | {expected / med['seconds']:,.0f} "
            f"| {vs_base} | {vs_wire} | {vs_counted} | {vs_raw} | {plan} "
            f"| {med['client_cpu']:.1f} | {share:.0%} | {peak:,.0f} |"
        )
    return "\n".join(rows), void


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--regime", default="remote", help="remote, pgstac, rustac (comma-separated)"
    )
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed raw runs before the rounds")
    parser.add_argument("--contenders", default=DEFAULT_CONTENDERS)
    parser.add_argument("--concurrency", default="1,4,8,16,32", help="the N of raw/ingest/stream")
    parser.add_argument("--limit", type=int, default=1000, help="page size asked by everyone")
    parser.add_argument("--page-delay", type=float, default=0.3)
    parser.add_argument("--item-delay", type=float, default=0.001)
    parser.add_argument("--max-concurrent", type=int, default=32)
    parser.add_argument(
        "--mem-gb", type=float, default=None, help="memory cap of each run (default: half the RAM)"
    )
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument(
        "--smoke", action="store_true", help="a quick check: 3000 items, 1 round, few contenders"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so servers get stopped
    if args.smoke:
        args.items, args.repeat, args.warmup, args.limit = 3000, 1, 0, 500
        args.regime = "remote,rustac"
        args.contenders = "pystac+sg,rustac,raw-N,ingest-N,stream-N"
        args.concurrency = "4,16"
    args.concurrency = [int(c) for c in str(args.concurrency).split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    report, voids = [], []
    try:
        ndjson = tmp / "items.ndjson"
        t0 = time.perf_counter()
        span = write_items(args.items, ndjson)
        print(
            f"{args.items} items written in {time.perf_counter() - t0:.0f} s, {span[0]}/{span[1]}",
            file=sys.stderr,
        )
        for regime in args.regime.split(","):
            results = run_regime(regime, args, ndjson, span)
            text, void = table(regime, results, args.items)
            title = f"{regime}: {args.items:,} items, limit {args.limit}, {args.repeat} rounds"
            report.append(f"### {title}\n\n{text}\n")
            voids += void
            if args.json:
                with args.json.open("a") as f:
                    f.write(
                        json.dumps(
                            {
                                "regime": regime,
                                "items": args.items,
                                "limit": args.limit,
                                "results": results,
                            }
                        )
                        + "\n"
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(report))
    if voids:
        print("\n!!!!!!!!!! VOID RUNS (items lost or duplicated, or the run failed) !!!!!!!!!!")
        print("\n".join(voids))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
