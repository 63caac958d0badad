"""Workflow files: the accepted layouts, path and ${VAR} handling, and clear errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from stacfetch import ConfigurationError, Ingestor
from stacfetch._workflow import WorkflowSpec, load_workflow

URL = "https://stac.example.org/api"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str, name: str = "workflow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def minimal(**extra: Any) -> dict[str, Any]:
    return {"catalog_url": URL, "strategy": {"matrix": ["a", "b"]}, **extra}


# -- layouts ------------------------------------------------------------------------------------
def test_yaml_file_builds_an_ingestor(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
name: alps
catalog_url: {URL}/
strategy:
  matrix:
    - collection_id: sentinel-2-l2a
    - collection_id: landsat-c2-l2
      catalog_url: https://other.example.org/stac
ingest:
  concurrency: {{workers: 4, chunk_size: 500}}
  limit: 200
  max_items: 1000
  retry: {{max_retries: 2}}
  filters:
    bbox: [5.9, 45.8, 10.5, 47.8]
    datetime: 2024-06
    sortby: -datetime
output: out.parquet
progress: false
headers:
  X-Api-Key: abc
""",
    )
    spec = load_workflow(path)
    assert spec.name == "alps"
    assert spec.source == str(path)
    assert spec.catalog_url == URL  # normalised, no trailing slash
    assert spec.matrix == [
        {"collection_id": "sentinel-2-l2a"},
        {"collection_id": "landsat-c2-l2", "catalog_url": "https://other.example.org/stac"},
    ]
    assert spec.output == str(tmp_path / "out.parquet")
    assert spec.progress is False
    assert spec.headers == {"X-Api-Key": "abc"}
    ing = Ingestor(**spec.ingestor_kwargs())
    assert [(e.catalog_url, e.collection_id) for e in ing.entries] == [
        (URL, "sentinel-2-l2a"),
        ("https://other.example.org/stac", "landsat-c2-l2"),
    ]
    assert ing.config.concurrency.workers == 4
    assert ing.config.concurrency.chunk_size == 500
    assert ing.config.filters.bbox == [5.9, 45.8, 10.5, 47.8]
    assert ing.config.filters.datetime == "2024-06-01T00:00:00Z/2024-06-30T23:59:59.999999Z"
    assert ing.config.max_items == 1000
    assert ing.headers == {"X-Api-Key": "abc"}


def test_json_file(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(minimal(ingest={"concurrency": 3})), name="workflow.json")
    spec = load_workflow(path)
    assert [e["collection_id"] for e in spec.matrix] == ["a", "b"]
    assert Ingestor(**spec.ingestor_kwargs()).config.concurrency.workers == 3


def test_config_is_an_alias_of_ingest() -> None:
    spec = load_workflow(minimal(config={"limit": 50}))
    assert spec.config == {"limit": 50}


def test_ingest_and_config_together_are_an_error() -> None:
    with pytest.raises(ConfigurationError, match="ingest and config are both present"):
        load_workflow(minimal(ingest={}, config={}))


def test_stac_manager_steps_layout() -> None:
    steps = [{"id": "ingest", "module": "IngestModule", "config": {"concurrency": 7}}]
    spec = load_workflow(minimal(steps=steps))
    assert spec.config == {"concurrency": 7}


def test_steps_with_another_module_are_rejected() -> None:
    steps = [
        {"id": "ingest", "module": "IngestModule", "config": {}},
        {"id": "out", "module": "OutputModule", "config": {}, "depends_on": ["ingest"]},
    ]
    with pytest.raises(ConfigurationError, match=r"steps\[1\]\.module.*Ingest step only"):
        load_workflow(minimal(steps=steps))


def test_matrix_mapping_is_expanded_to_every_combination() -> None:
    spec = load_workflow(
        {"strategy": {"matrix": {"collection_id": ["a", "b"], "catalog_url": [URL, URL + "2"]}}}
    )
    assert len(spec.matrix) == 4
    assert {"collection_id": "b", "catalog_url": URL + "2"} in spec.matrix


def test_no_matrix_uses_the_config_collection() -> None:
    spec = load_workflow({"catalog_url": URL, "ingest": {"collection_id": "c1"}})
    kwargs = spec.ingestor_kwargs()
    assert kwargs["matrix"] is None
    assert [e.collection_id for e in Ingestor(**kwargs).entries] == ["c1"]


def test_no_matrix_uses_filters_collections() -> None:
    spec = load_workflow({"catalog_url": URL, "ingest": {"filters": {"collections": ["x", "y"]}}})
    assert [e.collection_id for e in Ingestor(**spec.ingestor_kwargs()).entries] == ["x", "y"]


def test_file_mode_entries_resolve_paths_against_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "items.ndjson").write_text("")
    path = write(tmp_path, "strategy:\n  matrix:\n    - source_file: data/items.ndjson\n")
    spec = load_workflow(path)
    assert spec.matrix == [{"source_file": str(data / "items.ndjson")}]


def test_paths_of_a_dict_stay_as_given(tmp_path: Path) -> None:
    spec = load_workflow(minimal(output="out.parquet"))
    assert spec.output == "out.parquet"
    absolute = str(tmp_path / "x.parquet")
    path = write(tmp_path, f"catalog_url: {URL}\nstrategy: {{matrix: [a]}}\noutput: {absolute}\n")
    assert load_workflow(path).output == absolute


def test_yaml_dates_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"catalog_url: {URL}\nstrategy: {{matrix: [a]}}\n"
        "ingest:\n  filters:\n    datetime: 2024-06-01\n",
    )
    spec = load_workflow(path)
    ing = Ingestor(**spec.ingestor_kwargs())
    assert ing.config.filters.datetime == "2024-06-01T00:00:00Z/2024-06-01T23:59:59.999999Z"


def test_environment_variables() -> None:
    raw = {
        "catalog_url": "${STAC_URL}",
        "strategy": {"matrix": ["${COLL:-fallback}"]},
        "headers": {"Authorization": "Bearer ${TOKEN}"},
    }
    spec = load_workflow(raw, env={"STAC_URL": URL, "TOKEN": "t0k"})
    assert spec.catalog_url == URL
    assert spec.matrix == [{"collection_id": "fallback"}]
    assert spec.headers == {"Authorization": "Bearer t0k"}
    with pytest.raises(ConfigurationError, match=r"headers\.Authorization.*TOKEN is not set"):
        load_workflow(raw, env={"STAC_URL": URL})


def test_spec_is_frozen_and_kwargs_are_copies() -> None:
    spec = load_workflow(minimal(ingest={"filters": {"ids": ["x"]}}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.output = "x"  # type: ignore[misc]
    kwargs = spec.ingestor_kwargs()
    kwargs["config"]["filters"]["ids"].append("y")
    kwargs["matrix"].clear()
    assert spec.config == {"filters": {"ids": ["x"]}}
    assert len(spec.matrix) == 2
    assert isinstance(spec, WorkflowSpec)


@pytest.mark.parametrize("name", ["workflow.yaml", "workflow-demo.yaml"])
def test_example_files_load(name: str) -> None:
    spec = load_workflow(EXAMPLES / name, env={"STACFETCH_CATALOG_URL": "http://127.0.0.1:9"})
    assert [e["collection_id"] for e in spec.matrix] == ["sentinel-2-l2a", "landsat-c2-l2"]
    assert len(Ingestor(**spec.ingestor_kwargs()).entries) == 2


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        (minimal(matrix=["a"]), r"unknown key 'matrix' \(write it as strategy\.matrix\)"),
        (minimal(filters={}), r"unknown key 'filters' \(it belongs in the ingest section"),
        (
            minimal(ingest={"datetime": "2024"}),
            r"ingest: unknown key 'datetime'.*filters\.datetime",
        ),
        (minimal(ingest={"filters": {"colections": ["a"]}}), r"ingest\.filters: unknown key"),
        ({"strategy": ["a"]}, r"strategy: expected a mapping"),
        ({"strategy": {"matrix": "a"}}, r"strategy\.matrix: expected a list"),
        ({"strategy": {"matrix": []}}, r"strategy\.matrix: is empty"),
        ({"strategy": {}}, r"strategy\.matrix: is missing"),
        ({"strategy": {"matrix": ["a"], "fail-fast": True}}, r"unknown key 'fail-fast'"),
        (minimal(strategy={"matrix": [{"collection": "a"}]}), r"matrix\[0\]: unknown key"),
        (minimal(strategy={"matrix": [{"collection_id": 5}]}), r"matrix\[0\]\.collection_id"),
        (minimal(strategy={"matrix": ["a", "a"]}), r"matrix\[1\]: duplicate entry"),
        (minimal(strategy={"matrix": {"collection_id": []}}), r"collection_id: expected a non"),
        ({"strategy": {"matrix": ["a"]}}, r"matrix\[0\]: has no catalog_url"),
        (
            minimal(strategy={"matrix": [{"collection_id": "a", "catalog_url": "ftp://x"}]}),
            r"matrix\[0\]\.catalog_url must be an http",
        ),
        ({"catalog_url": URL}, r"no target: give strategy\.matrix"),
        ({"ingest": {"collection_id": "a"}}, r"catalog_url: is missing"),
        (minimal(ingest={"concurrency": "fast"}), r"ingest\.concurrency: concurrency must be"),
        (minimal(ingest={"concurrency": {"workers": 0}}), r"ingest\.concurrency\.workers"),
        (minimal(ingest={"filters": {"bbox": [1, 2, 3]}}), r"ingest\.filters\.bbox"),
        (minimal(ingest={"limit": "many"}), r"ingest\.limit"),
        (minimal(ingest=[1]), r"ingest: expected a mapping"),
        (minimal(progress="sparkles"), r"progress"),
        (minimal(progress=3), r"progress: expected"),
        (minimal(headers={"X": ["a"]}), r"headers\.X: expected a string"),
        (minimal(output=""), r"output: expected a non-empty string"),
        (minimal(name={"a": 1}), r"name: expected a string"),
    ],
)
def test_invalid_workflows(raw: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        load_workflow(raw)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, f"catalog_url: {URL}\nstrategy:\n  matrix: [a]\nextra: 1\n")
    with pytest.raises(ConfigurationError) as info:
        load_workflow(path)
    assert str(info.value).startswith(f"{path}: unknown key 'extra'")


def test_missing_empty_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="workflow file not found"):
        load_workflow(tmp_path / "nope.yaml")
    with pytest.raises(ConfigurationError, match="is empty"):
        load_workflow(write(tmp_path, "\n\n", "empty.yaml"))
    with pytest.raises(ConfigurationError, match=r"invalid YAML at line 3, column 1"):
        load_workflow(write(tmp_path, "strategy:\n  matrix: [a\n", "bad.yaml"))
    with pytest.raises(ConfigurationError, match=r"invalid JSON at line 1"):
        load_workflow(write(tmp_path, "{strategy: 1}", "bad.json"))
    with pytest.raises(ConfigurationError, match="must be a mapping"):
        load_workflow(write(tmp_path, "- a\n- b\n", "list.yaml"))
    with pytest.raises(ConfigurationError, match="is a directory"):
        load_workflow(tmp_path)
    with pytest.raises(ConfigurationError, match="expected a file path or a mapping"):
        load_workflow(42)  # type: ignore[arg-type]
