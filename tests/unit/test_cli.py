"""The ``stacfetch`` command in-process: parsing, exit codes, clear errors, no stray requests.

A small in-memory :class:`StacServer` stands in for the API: its request counter proves that
configuration errors are reported before anything is sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stacfetch
from stacfetch import Ingestor
from stacfetch._cli import build_parser, describe_frame, ingest_kwargs, join_dash_values, main
from stacfetch._testing.server import StacServer


def make_items(collection: str, n: int, month: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": f"{collection}-{i:04d}",
            "collection": collection,
            "bbox": [i % 10, 40.0, i % 10 + 1, 41.0],
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[i % 10, 40.0], [i % 10 + 1, 40.0], [i % 10 + 1, 41.0], [i % 10, 40.0]]
                ],
            },
            "properties": {"datetime": f"2023-{month:02d}-{i % 28 + 1:02d}T10:00:00Z"},
            "links": [],
            "assets": {},
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def server() -> Iterator[StacServer]:
    items = make_items("a", 120, month=1) + make_items("b", 80, month=2)
    with StacServer(items) as srv:
        yield srv


@pytest.fixture
def no_requests(server: StacServer) -> Iterator[StacServer]:
    """The server, asserting that the test sent it nothing."""
    before = server.counters["requests"]
    yield server
    assert server.counters["requests"] == before, "a request was sent"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- basics -------------------------------------------------------------------------------------
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"stacfetch {stacfetch.__version__}"


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("ingest", "run", "demo"):
        assert command in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert "usage: stacfetch" in err


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ingest", "http://127.0.0.1:1", "-c", "a", "--colour")
    assert code == 2
    assert "--colour" in err


# -- parsing ------------------------------------------------------------------------------------
def parse_ingest(*argv: str) -> dict[str, Any]:
    args = build_parser().parse_args(join_dash_values(["ingest", "http://x.org", *argv]))
    return ingest_kwargs(args)


def test_collections_repeat_and_commas() -> None:
    kwargs = parse_ingest("-c", "a,b", "--collection", "c", "-c", " d ")
    assert kwargs["collections"] == ["a", "b", "c", "d"]


def test_options_map_to_ingestor_arguments() -> None:
    kwargs = parse_ingest(
        "-c",
        "a",
        "--datetime",
        "2024-06",
        "--bbox",
        "-10,35,30,60",
        "--sortby",
        "-datetime",
        "--ids",
        "x,y",
        "--concurrency",
        "4",
        "--chunk-size",
        "500",
        "--limit",
        "250",
        "--max-items",
        "9",
        "--retries",
        "2",
        "--timeout",
        "30",
        "--header",
        "Authorization: Bearer t:k",
        "--header",
        "X-Trace:1",
        "--query",
        '{"eo:cloud_cover": {"lt": 10}}',
        "--no-progress",
        "--strict",
        "--decoders",
        "0",
    )
    assert kwargs["bbox"] == "-10,35,30,60"
    assert kwargs["sortby"] == "-datetime"
    assert kwargs["concurrency"] == {"workers": 4, "chunk_size": 500}
    assert kwargs["retry"] == {"max_retries": 2, "timeout": 30.0}
    assert kwargs["headers"] == {"Authorization": "Bearer t:k", "X-Trace": "1"}
    assert kwargs["query"] == {"eo:cloud_cover": {"lt": 10}}
    assert (kwargs["limit"], kwargs["max_items"], kwargs["ids"]) == (250, 9, "x,y")
    assert kwargs["progress"] is False
    assert kwargs["strict"] is True
    assert kwargs["decoders"] == 0
    ing = Ingestor("http://x.org", **kwargs)  # everything is valid for the Ingestor
    assert ing.decoders == 0
    assert ing.config.filters.bbox == [-10.0, 35.0, 30.0, 60.0]
    assert ing.config.filters.sortby == [{"field": "datetime", "direction": "desc"}]


def test_progress_flags() -> None:
    assert parse_ingest("-c", "a")["progress"] == "auto"
    assert parse_ingest("-c", "a", "--progress")["progress"] == "bars"
    assert parse_ingest("-c", "a", "--no-progress")["progress"] is False
    assert "concurrency" not in parse_ingest("-c", "a")
    assert parse_ingest("-c", "a")["decoders"] is None  # the Ingestor's default


def test_filter_text_and_json() -> None:
    assert parse_ingest("-c", "a", "--filter", "eo:cloud_cover < 10")["filter"] == (
        "eo:cloud_cover < 10"
    )
    cql = {"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]}
    assert parse_ingest("-c", "a", "--filter", json.dumps(cql))["filter"] == cql


def test_intersects_inline_file_feature_and_collection(tmp_path: Path) -> None:
    poly = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    assert parse_ingest("-c", "a", "--intersects", json.dumps(poly))["intersects"] == poly
    feature = tmp_path / "aoi.geojson"
    feature.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": poly}))
    assert parse_ingest("-c", "a", "--intersects", str(feature))["intersects"] == poly
    two = tmp_path / "two.geojson"
    features = [{"type": "Feature", "properties": {}, "geometry": poly}] * 2
    two.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    combined = parse_ingest("-c", "a", "--intersects", str(two))["intersects"]
    assert combined["type"] == "MultiPolygon"
    assert len(combined["coordinates"]) == 2


def test_dash_values_are_joined_only_for_bbox_and_sortby() -> None:
    assert join_dash_values(["--bbox", "-1,2,3,4", "-c", "a"]) == ["--bbox=-1,2,3,4", "-c", "a"]
    assert join_dash_values(["--sortby", "-datetime"]) == ["--sortby=-datetime"]
    assert join_dash_values(["--bbox", "-c"]) == ["--bbox", "-c"]  # an option stays one
    assert join_dash_values(["--datetime", "-x"]) == ["--datetime", "-x"]


# -- configuration errors: exit 2, a clear message, no traceback, no request -------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--bbox", "1,2,3"], "bbox"),
        (["--bbox", "0,50,10,40"], "south"),
        (["--datetime", "2024-13"], "datetime"),
        (["--datetime", "2024-06-10/2024-06-01"], "datetime"),
        (["--concurrency", "0"], "workers"),
        (["--limit", "0"], "limit"),
        (["--max-items", "0"], "max_items"),
        (["--query", "{not json"], "--query"),
        (["--query", "[1, 2]"], "--query"),
        (["--filter", "{bad"], "--filter"),
        (["--header", "no-colon"], "--header"),
        (["--intersects", "no/such/file.geojson"], "--intersects"),
        (["--intersects", '{"type": "Blob"}'], "intersects"),
        (["--ids", ","], "ids"),
        (["--retries", "-1"], "max_retries"),
    ],
)
def test_configuration_errors_exit_2_before_any_request(
    capsys: pytest.CaptureFixture[str],
    no_requests: StacServer,
    argv: list[str],
    expected: str,
) -> None:
    code, out, err = run(capsys, "ingest", no_requests.url, "-c", "a", *argv)
    assert code == 2, err
    assert err.startswith("stacfetch: error: ")
    assert expected in err
    assert "Traceback" not in err
    assert out == ""


def test_missing_collection_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], no_requests: StacServer
) -> None:
    code, _, err = run(capsys, "ingest", no_requests.url)
    assert code == 2
    assert "-c COLLECTION" in err


def test_bad_url_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ingest", "ftp://example.com/stac", "-c", "a")
    assert code == 2
    assert "http" in err


def test_non_integer_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ingest", "http://127.0.0.1:1", "-c", "a", "--limit", "many")
    assert code == 2
    assert "--limit" in err


# -- runs against a local in-memory server --------------------------------------------------------
def test_ingest_prints_a_summary_of_the_frame(
    capsys: pytest.CaptureFixture[str], server: StacServer
) -> None:
    code, out, err = run(capsys, "ingest", server.url, "-c", "a", "-c", "b", "--no-progress")
    assert code == 0, err
    assert "2 entries" in out
    assert "200 items" in out
    lines = out.splitlines()
    assert any(line.split() == ["a", "120"] for line in lines)
    assert any(line.split() == ["b", "80"] for line in lines)
    assert "2023-01-01T10:00:00Z .. 2023-02-28T10:00:00Z" in out
    assert "columns: " in out


def test_unknown_collection_exits_2(capsys: pytest.CaptureFixture[str], server: StacServer) -> None:
    code, _, err = run(capsys, "ingest", server.url, "-c", "nope", "--no-progress")
    assert code == 2
    assert "nope" in err
    assert "Traceback" not in err


def test_failed_chunks_exit_1_with_a_failure_summary(capsys: pytest.CaptureFixture[str]) -> None:
    with StacServer(make_items("a", 50)) as srv:
        srv.fail_when(lambda search: True)
        code, out, err = run(
            capsys, "ingest", srv.url, "-c", "a", "--retries", "0", "--no-progress"
        )
    assert code == 1
    assert "failed" in out
    assert "503" in out
    assert "incomplete" in err


def test_strict_exits_1_and_says_the_output_is_incomplete(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_path = tmp_path / "x.parquet"
    with StacServer(make_items("a", 50)) as srv:
        srv.fail_when(lambda search: True)
        code, out, err = run(
            capsys, "ingest", srv.url, "-c", "a", "--retries", "0", "--strict", "-o", str(out_path)
        )
    assert code == 1
    assert "failed" in out
    assert f"{out_path} is incomplete (--strict)" in err
    assert "run the same command again" in err


def test_strict_without_output_prints_no_result(capsys: pytest.CaptureFixture[str]) -> None:
    with StacServer(make_items("a", 50)) as srv:
        srv.fail_when(lambda search: True)
        code, out, err = run(capsys, "ingest", srv.url, "-c", "a", "--retries", "0", "--strict")
    assert code == 1
    assert "columns:" not in out
    assert "--strict: no result" in err


def test_output_goes_through_to_parquet(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: StacServer,
    tmp_path: Path,
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    real = Ingestor.to_parquet

    def to_parquet(self: Ingestor, path: str, **kwargs: Any) -> Any:
        calls.append((path, kwargs))
        return real(self, path, **kwargs)

    monkeypatch.setattr(Ingestor, "to_parquet", to_parquet)
    target = str(tmp_path / "out.parquet")
    code, out, _ = run(capsys, "ingest", server.url, "-c", "a", "-o", target, "--no-progress")
    assert code == 0
    assert calls == [(target, {"overwrite": False})]
    assert f"wrote 120 items to {target} (a 120)" in out
    code, out, _ = run(capsys, "ingest", server.url, "-c", "a", "-o", target, "--no-progress")
    assert code == 0  # the same command again: resumed, nothing left to fetch
    assert f"wrote 0 new items to {target}; it holds 120 items (a 120)" in out
    code, out, _ = run(capsys, "ingest", server.url, "-c", "a", "-o", target, "--overwrite")
    assert code == 0
    assert calls[-1] == (target, {"overwrite": True})
    assert f"wrote 120 items to {target} (a 120)" in out
    code, _, err = run(capsys, "ingest", server.url, "-c", "b", "-o", target, "--no-progress")
    assert code == 2  # another search's output: refused, with the reason
    assert "different search" in err


def test_verbose_logs_and_cleans_up(capsys: pytest.CaptureFixture[str], server: StacServer) -> None:
    logger = logging.getLogger("stacfetch")
    handlers, level = list(logger.handlers), logger.level
    code, _, _ = run(capsys, "ingest", server.url, "-c", "b", "--no-progress", "-vv")
    assert code == 0
    assert logger.handlers == handlers
    assert logger.level == level


# -- stacfetch run: workflow errors -------------------------------------------------------------
def test_run_missing_workflow_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "run", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "workflow file not found" in err
    assert "nope.yaml" in err


def test_run_invalid_yaml_names_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("strategy:\n  matrix: [a, b\ningest: {}\n")
    code, _, err = run(capsys, "run", str(path))
    assert code == 2
    assert "invalid YAML at line" in err
    assert "Traceback" not in err


def test_run_unknown_key_names_file_and_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_requests: StacServer
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        f"catalog_url: {no_requests.url}\nstrategy:\n  matrix: [a]\ningest:\n  concurency: 4\n"
    )
    code, _, err = run(capsys, "run", str(path))
    assert code == 2
    assert str(path) in err
    assert "'concurency'" in err


def test_run_bad_value_names_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_requests: StacServer
) -> None:
    path = tmp_path / "wf.json"
    path.write_text(
        json.dumps(
            {
                "catalog_url": no_requests.url,
                "strategy": {"matrix": ["a"]},
                "ingest": {"filters": {"bbox": [0, 0, 1]}},
            }
        )
    )
    code, _, err = run(capsys, "run", str(path))
    assert code == 2
    assert "filters.bbox" in err


def test_run_a_workflow_against_the_local_server(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: StacServer
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: tiny\ncatalog_url: ${TEST_STAC_URL}\nstrategy:\n  matrix: [a, b]\n"
        "ingest:\n  concurrency: 2\n  filters: {datetime: 2023-01}\nprogress: false\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEST_STAC_URL", server.url)
        code, out, err = run(capsys, "run", str(path))
    assert code == 0, err
    assert "running workflow 'tiny'" in out
    assert any(line.split() == ["a", "120"] for line in out.splitlines())


def test_describe_frame_of_an_empty_result() -> None:
    import geopandas

    empty = geopandas.GeoDataFrame({"id": [], "collection": []}, geometry=[], crs=4326)
    assert describe_frame(empty).splitlines()[0] == "0 items, 3 columns"


# -- the demo data ------------------------------------------------------------------------------
def test_demo_data_holds_the_awkward_cases() -> None:
    from collections import Counter

    from stacfetch._testing.demo import DEMO_COLLECTIONS, demo_items

    items = demo_items()
    assert 2000 < len(items) < 10000
    assert {it["collection"] for it in items} == set(DEMO_COLLECTIONS)
    assert len({(it["collection"], it["id"]) for it in items}) == len(items)
    props = [it["properties"] for it in items]
    stamps = [p["datetime"] for p in props if p["datetime"]]
    assert any(s.startswith("2023-05-01T00:00:00") for s in stamps)  # on a month start
    assert any("T23:59:59.999999" in s for s in stamps)  # a microsecond before one
    assert Counter(stamps).most_common(1)[0][1] >= 100  # many items, one timestamp
    ranges = [p for p in props if p["datetime"] is None]
    assert ranges
    assert all(p["start_datetime"] and p["end_datetime"] for p in ranges)
    clouds = {type(p["eo:cloud_cover"]).__name__ for p in props if "eo:cloud_cover" in p}
    assert clouds == {"float", "int", "NoneType"}
    assert any("eo:cloud_cover" not in p for p in props)
    assert any("proj:code" in p for p in props)


def test_demo_data_file_is_up_to_date() -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "scripts" / "make_demo_data.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
