"""``rustac serve`` as a test server: the memory backend on NDJSON, or the DuckDB backend on a
stac-geoparquet file.

The DuckDB backend loads DuckDB extensions (spatial, parquet, json, icu, httpfs) when it opens
a connection, and would download them from DuckDB's own extension host, which CI cannot reach.
The test extras install them from the package registry instead (the ``duckdb-extension-*``
wheels); :func:`duckdb_home` links them into a private home folder in the layout DuckDB looks
for (``~/.duckdb/extensions/<version>/<platform>/``), and the server runs with that ``HOME``.
A wheel's DuckDB version must be the one compiled into rustac: DuckDB refuses an extension
built for another version, which is why the test extras pin rustac and the wheels together.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

EXTENSIONS = ("spatial", "parquet", "json", "icu", "httpfs")
_PLATFORMS = {"x86_64": "linux_amd64", "aarch64": "linux_arm64", "arm64": "linux_arm64"}


def rustac_exe() -> str:
    exe = shutil.which("rustac")
    assert exe is not None, "the rustac command (pip install rustac) is part of the test extras"
    return exe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def duckdb_home(folder: Path) -> Path:
    """A home folder whose ``.duckdb/extensions`` holds the extensions of the installed
    ``duckdb-extension-*`` wheels (linked, not copied)."""
    for name in EXTENSIONS:
        spec = importlib.util.find_spec(f"duckdb_extension_{name}")
        assert spec is not None, f"duckdb-extension-{name} is missing (part of the test extras)"
        assert spec.origin is not None
        files = sorted(Path(spec.origin).parent.glob(f"extensions/v*/{name}.duckdb_extension"))
        assert files, f"duckdb-extension-{name} holds no {name}.duckdb_extension"
        version = files[-1].parent.name
        target = folder / ".duckdb" / "extensions" / version / _PLATFORMS[platform.machine()]
        target.mkdir(parents=True, exist_ok=True)
        link = target / files[-1].name
        if not link.exists():
            link.symlink_to(files[-1])
    return folder


def translate(source: Path, target: Path) -> Path:
    """``rustac translate``: NDJSON items to a stac-geoparquet file (rustac's own writer)."""
    subprocess.run([rustac_exe(), "translate", str(source), str(target)], check=True, timeout=300)
    return target


@contextlib.contextmanager
def serve(data: Path, *, duckdb: bool = False, probe: str = "/") -> Iterator[str]:
    """Run ``rustac serve`` on ``data`` until the block ends; yields the API's URL.

    ``probe`` is the path that must answer 200 before the server counts as up (the DuckDB
    backend opens its connections on the first search, so give it a search there)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [rustac_exe(), "serve", "--addr", f"127.0.0.1:{port}"]
    env = dict(os.environ)
    if duckdb:
        cmd += ["--use-duckdb", "true"]
        env["HOME"] = str(duckdb_home(data.parent / "home"))
    else:
        cmd += ["--create-collections"]
    logfile = data.with_suffix(".log")
    with logfile.open("wb") as log:
        proc = subprocess.Popen(
            [*cmd, str(data)], stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, "rustac serve exited: " + logfile.read_text()[-2000:]
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + probe, timeout=60).status_code == 200:
                        break
                assert time.monotonic() < deadline, (
                    "rustac serve did not answer in 120 s: " + logfile.read_text()[-2000:]
                )
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
