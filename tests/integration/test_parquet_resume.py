"""to_parquet against the real pgstac server: round trip, resume after SIGKILL, file mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

import stacfetch
from stacfetch import ConfigurationError, Ingestor
from stacfetch._run.resume import MANIFEST_NAME
from tests.support.faultproxy import FaultProxy

pytestmark = pytest.mark.integration
Ref = Callable[[Mapping[str, Any]], set[tuple[str, str]]]

SCRIPT = """
import sys, stacfetch
url, out = sys.argv[1], sys.argv[2]
ing = stacfetch.Ingestor(url, collections=["sf-a", "sf-b"], concurrency=3, limit=50,
                         progress=False)
ing.to_parquet(out, rows_per_part=150)
print("finished", len(ing.failures))
"""


def parts(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("e*.parquet"))


def keys(path: Path) -> list[tuple[str, str]]:
    gdf = stacfetch.read_geoparquet(path)
    return list(zip(gdf["collection"], gdf["id"], strict=True))


def test_resume_after_sigkill_gives_the_exact_set(
    fault_proxy: Callable[..., FaultProxy], reference_ids: Ref, tmp_path: Path
) -> None:
    proxy = fault_proxy(slow_rate=1.0, slow_seconds=0.04)
    out = tmp_path / "out.parquet"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    kills = 0
    for wanted_parts in (2, 6):
        proc = subprocess.Popen(
            [sys.executable, str(script), proxy.url, str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while len(parts(out)) < wanted_parts and proc.poll() is None:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(30)
    assert kills >= 1
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert not manifest.get("complete")
    interrupted = len(keys(out))
    done = subprocess.run(
        [sys.executable, str(script), proxy.url, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "finished 0" in done.stdout
    got = keys(out)
    expected = reference_ids({"collections": ["sf-a"]}) | reference_ids({"collections": ["sf-b"]})
    assert 0 < interrupted < len(expected)
    assert len(got) == len(set(got))
    assert set(got) == expected
    assert json.loads((out / MANIFEST_NAME).read_text())["complete"] is True


def test_roundtrip_api_parquet_file_mode(stac_url: str, tmp_path: Path, reference_ids: Ref) -> None:
    out = Ingestor(stac_url, collections=["sf-b"], datetime="2021-08", progress=False).to_parquet(
        tmp_path / "b.parquet", rows_per_part=100
    )
    assert len(parts(out)) > 1
    api = stacfetch.read_geoparquet(out)
    expected = reference_ids(
        {"collections": ["sf-b"], "datetime": "2021-08-01T00:00:00Z/2021-08-31T23:59:59.999999Z"}
    )
    assert set(zip(api["collection"], api["id"], strict=True)) == expected
    # file mode reads the dataset back: same items, same frame
    files = Ingestor(source_file=str(out / "e*.parquet"), progress=False).ingest()
    assert sorted(files["id"]) == sorted(api["id"])
    assert set(files.columns) >= {"id", "collection", "geometry", "datetime", "assets"}
    # run again: complete output, nothing fetched twice
    again = Ingestor(stac_url, collections=["sf-b"], datetime="2021-08", progress=False)
    again.to_parquet(out)
    assert len(stacfetch.read_geoparquet(out)) == len(api)


def test_output_of_another_search_is_refused(stac_url: str, tmp_path: Path) -> None:
    out = tmp_path / "x.parquet"
    Ingestor(stac_url, collections=["sf-b"], datetime="2021-07-01", progress=False).to_parquet(out)
    other = Ingestor(stac_url, collections=["sf-b"], datetime="2021-07-02", progress=False)
    with pytest.raises(ConfigurationError, match="different search"):
        other.to_parquet(out)
    other.to_parquet(out, overwrite=True)
    assert json.loads((out / MANIFEST_NAME).read_text())["complete"] is True
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match="non-empty directory"):
        other.to_parquet(tmp_path / "foreign", overwrite=True)


TIMED_SCRIPT = """
import sys, stacfetch
url, out = sys.argv[1], sys.argv[2]
ing = stacfetch.Ingestor(url, collections=["a"], concurrency=2, limit=25, progress=False)
ing.to_parquet(out)
print("finished", len(ing.failures))
"""


def test_a_run_killed_halfway_resends_at_most_60_percent(tmp_path: Path) -> None:
    """Parts are flushed on time (FLUSH_SECONDS), not only every rows_per_part (20,000) rows:
    a 3,000-item run SIGKILLed halfway, more than 6 s (three flushes) in, keeps most of what it
    fetched."""
    from datetime import UTC, datetime, timedelta

    from stacfetch._testing.server import StacServer
    from tests.unit.fakeapi import make_items

    items = make_items("a", 3000, datetime(2020, 1, 1, tzinfo=UTC), timedelta(hours=3))
    with StacServer(items) as fast:  # the requests of a whole run, uninterrupted
        whole = Ingestor(fast.url, collections=["a"], concurrency=2, limit=25, progress=False)
        whole.to_parquet(tmp_path / "whole.parquet")
        total = fast.counters["requests"]
    assert total >= 120  # 3,000 items in pages of 25
    script = tmp_path / "run.py"
    script.write_text(TIMED_SCRIPT)
    out = tmp_path / "out.parquet"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    with StacServer(items, page_delay=0.2) as server:  # a run of about 12 s
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, str(script), server.url, str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        while server.counters["requests"] < total // 2 or time.monotonic() - started < 6:
            assert proc.poll() is None, "the run ended before it was half done"
            assert time.monotonic() - started < 180, "the run made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        before = server.counters["requests"]
        assert before < total
        assert json.loads((out / MANIFEST_NAME).read_text()).get("complete") is not True
        kept = len(keys(out))
        done = subprocess.run(
            [sys.executable, str(script), server.url, str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        resent = server.counters["requests"] - before
    print(f"whole run {total} requests; killed after {before}; resume sent {resent}; kept {kept}")
    assert resent <= 0.6 * total
    got = keys(out)
    assert len(got) == len(set(got)) == len(items)
    assert json.loads((out / MANIFEST_NAME).read_text())["complete"] is True
