"""The ``stacfetch`` command against the real stac-fastapi-pgstac server (in-process), and the
offline demo as a real subprocess.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from stacfetch._cli import main
from stacfetch._model.datetimes import parse_datetime
from tests.support.faultproxy import FaultProxy, overlaps

pytestmark = pytest.mark.integration

Ref = Callable[[Mapping[str, Any]], set[tuple[str, str]]]
REPO = Path(__file__).resolve().parents[2]
WINDOW = "2021-07/2021-09"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def counts_in(out: str, collections_: list[str]) -> dict[str, int]:
    """``{collection: rows}`` from the per-collection lines of the frame summary."""
    found: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in collections_:
            found[parts[0]] = int(parts[1].replace(",", ""))
    return found


def expected_counts(reference_ids: Ref, dt: str) -> dict[str, int]:
    interval = parse_datetime(dt)
    assert interval is not None
    body = {"collections": ["sf-a", "sf-b"], "datetime": interval.to_param()}
    return dict(collections.Counter(c for c, _ in reference_ids(body)))


def test_ingest_two_collections_prints_a_summary(
    capsys: pytest.CaptureFixture[str], stac_url: str, reference_ids: Ref
) -> None:
    code, out, err = run(
        capsys,
        "ingest",
        stac_url,
        "-c",
        "sf-a",
        "-c",
        "sf-b",
        "--datetime",
        WINDOW,
        "--concurrency",
        "6",
        "--limit",
        "100",
        "--no-progress",
    )
    assert code == 0, err
    expected = expected_counts(reference_ids, WINDOW)
    assert counts_in(out, ["sf-a", "sf-b"]) == expected
    assert "2 entries" in out
    assert f"{sum(expected.values()):,} items" in out
    assert "columns: " in out
    assert "failed chunk" not in out


def test_a_window_failing_for_good_exits_1(
    capsys: pytest.CaptureFixture[str], fault_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = fault_proxy()
    proxy.fail_when(overlaps("2021-09-01T00:00:00Z", "2021-09-02T00:00:00Z"))
    code, out, err = run(
        capsys,
        "ingest",
        proxy.url,
        "-c",
        "sf-b",
        "--datetime",
        "2021-08/2021-10",
        "--concurrency",
        "4",
        "--retries",
        "1",
        "--no-progress",
    )
    assert code == 1
    assert "failed chunk" in out  # the failure summary lists them
    assert "503" in out
    assert "2021-09" in out
    assert "incomplete" in err
    assert "Traceback" not in err


def test_strict_exits_1_when_a_window_fails(
    capsys: pytest.CaptureFixture[str], fault_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = fault_proxy()
    proxy.fail_when(overlaps("2021-09-01T00:00:00Z", "2021-09-02T00:00:00Z"))
    code, _, err = run(
        capsys,
        "ingest",
        proxy.url,
        "-c",
        "sf-b",
        "--datetime",
        "2021-08/2021-10",
        "--retries",
        "0",
        "--strict",
        "--no-progress",
    )
    assert code == 1
    assert "failed" in err


def test_run_a_workflow_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stac_url: str, reference_ids: Ref
) -> None:
    path = tmp_path / "workflow.yaml"
    path.write_text(
        f"""
name: cli-test
catalog_url: {stac_url}
strategy:
  matrix:
    - collection_id: sf-a
    - collection_id: sf-b
ingest:
  concurrency: {{workers: 4, chunk_size: 300}}
  limit: 200
  filters:
    datetime: {WINDOW}
progress: false
"""
    )
    code, out, err = run(capsys, "run", str(path))
    assert code == 0, err
    assert "running workflow 'cli-test'" in out
    assert counts_in(out, ["sf-a", "sf-b"]) == expected_counts(reference_ids, WINDOW)


def test_run_a_workflow_with_an_unknown_collection_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stac_url: str
) -> None:
    path = tmp_path / "workflow.json"
    path.write_text(f'{{"catalog_url": "{stac_url}", "strategy": {{"matrix": ["no-such"]}}}}')
    code, _, err = run(capsys, "run", str(path), "--no-progress")
    assert code == 2
    assert "no-such" in err


def test_demo_finishes_offline(tmp_path: Path) -> None:
    out = tmp_path / "x.parquet"
    dead = "http://127.0.0.1:9"  # any request off this machine would fail through it
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "ALL_PROXY": dead,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "stacfetch._cli", "demo", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.exists()
    assert "sentinel-2-l2a" in proc.stdout
    assert "landsat-c2-l2" in proc.stdout
    assert "every item exactly once" in proc.stdout
    assert str(out) in proc.stdout


# -- GeoParquet output (Ingestor.to_parquet) -------------------------------------------------------
def read_rows(path: Path) -> dict[str, int]:
    import pyarrow.dataset as ds

    table = ds.dataset(str(path), format="parquet").to_table(columns=["collection"])
    return dict(collections.Counter(table.column("collection").to_pylist()))


def test_ingest_writes_geoparquet(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stac_url: str, reference_ids: Ref
) -> None:
    target = tmp_path / "out.parquet"
    code, out, err = run(
        capsys,
        "ingest",
        stac_url,
        "-c",
        "sf-a,sf-b",
        "--datetime",
        WINDOW,
        "-o",
        str(target),
        "--no-progress",
    )
    assert code == 0, err
    expected = expected_counts(reference_ids, WINDOW)
    assert f"wrote {sum(expected.values()):,} items to" in out
    assert read_rows(target) == expected


def test_run_writes_the_workflow_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stac_url: str, reference_ids: Ref
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        f"catalog_url: {stac_url}\nstrategy: {{matrix: [sf-b]}}\n"
        f"ingest: {{filters: {{datetime: '{WINDOW}'}}}}\noutput: result.parquet\n"
    )
    code, out, err = run(capsys, "run", str(path), "--no-progress")
    assert code == 0, err
    assert "result.parquet" in out
    assert (tmp_path / "result.parquet").exists()  # relative to the workflow file
    assert read_rows(tmp_path / "result.parquet") == {
        "sf-b": expected_counts(reference_ids, WINDOW)["sf-b"]
    }
