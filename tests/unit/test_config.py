"""Configuration: both concurrency spellings, loose input, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import stacfetch
from stacfetch import ConfigurationError, IngestConfig, IngestFilters, Ingestor, WorkflowContext

URL = "https://stac.example.org/api"


def test_concurrency_int_and_object_spellings() -> None:
    assert IngestConfig(concurrency=16).concurrency.workers == 16
    cfg = IngestConfig(concurrency={"workers": 4, "chunk_size": 2000})
    assert (cfg.concurrency.workers, cfg.concurrency.chunk_size) == (4, 2000)
    assert IngestConfig(concurrency={"chunk_size": 10}).concurrency.workers == 10
    assert IngestConfig.model_validate({"concurrency": 3}).concurrency.workers == 3


def test_filters_normalise_loose_input() -> None:
    f = IngestFilters(
        bbox=(-10, 35, 30, 60),
        datetime="2024-03",
        ids="a,b",
        collections="s2",
        sortby="-datetime,+id",
        filter="eo:cloud_cover < 10",
    )
    assert f.bbox == [-10.0, 35.0, 30.0, 60.0]
    assert f.datetime == "2024-03-01T00:00:00Z/2024-03-31T23:59:59.999999Z"
    assert f.ids == ["a", "b"]
    assert f.collections == ["s2"]
    assert f.sortby == [
        {"field": "datetime", "direction": "desc"},
        {"field": "id", "direction": "asc"},
    ]
    assert f.filter_lang == "cql2-text"
    body = f.search_filters()
    assert body["filter-lang"] == "cql2-text"
    assert "datetime" not in body


def test_antimeridian_bbox_is_valid() -> None:
    assert IngestFilters(bbox=[170, -10, -170, 10]).bbox == [170.0, -10.0, -170.0, 10.0]


def test_intersects_geo_interface() -> None:
    class Shape:
        __geo_interface__: dict[str, Any] = {"type": "Point", "coordinates": [1.0, 2.0]}  # noqa: RUF012

    assert IngestFilters(intersects=Shape()).intersects == {
        "type": "Point",
        "coordinates": [1.0, 2.0],
    }


def test_context_priority_is_explicit_in_module() -> None:
    ctx = WorkflowContext(data={"collection_id": "a", "catalog_url": URL})
    assert ctx.data["collection_id"] == "a"


BAD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"concurrency": 0}, "concurrency.*workers"),
    ({"concurrency": -3}, "concurrency"),
    ({"concurrency": True}, "concurrency"),
    ({"concurrency": "8"}, "concurrency"),
    ({"concurrency": 2.5}, "concurrency"),
    ({"concurrency": {"workers": 0}}, "workers"),
    ({"concurrency": {"chunk_size": 0}}, "chunk_size"),
    ({"concurrency": {"threads": 4}}, "threads"),
    ({"limit": 0}, "limit"),
    ({"limit": 20000}, "limit"),
    ({"limit": "100"}, "limit"),
    ({"max_items": 0}, "max_items"),
    ({"collection_id": ""}, "collection_id"),
    ({"catalog_url": "ftp://example.org"}, "catalog_url"),
    ({"catalog_url": "not a url"}, "catalog_url"),
    ({"unknown_option": 1}, "unknown_option"),
    ({"filters": {"bbox": [1, 2, 3]}}, "bbox.*4 numbers"),
    ({"filters": {"bbox": [0, 50, 1, 40]}}, "south.*greater than north"),
    ({"filters": {"bbox": [0, -91, 1, 0]}}, "latitude"),
    ({"filters": {"bbox": [-181, 0, 1, 1]}}, "longitude"),
    ({"filters": {"bbox": ["a", 0, 1, 1]}}, "numbers"),
    ({"filters": {"bbox": {"w": 0}}}, "bbox"),
    ({"filters": {"datetime": "2025/2024"}}, "after end"),
    ({"filters": {"datetime": "../.."}}, "no bound"),
    ({"filters": {"datetime": "last week"}}, "unrecognised"),
    ({"filters": {"filter": 42}}, "filter.*CQL2"),
    ({"filters": {"filter": {"args": []}}}, "op"),
    ({"filters": {"filter": "a = 1", "filter_lang": "cql2-json"}}, "cql2-json"),
    ({"filters": {"filter_lang": "sql"}}, "filter_lang"),
    ({"filters": {"ids": []}}, "ids"),
    ({"filters": {"ids": [1, 2]}}, "ids"),
    ({"filters": {"intersects": {"type": "Circle"}}}, "intersects"),
    ({"filters": {"intersects": {"type": "Point"}}}, "coordinates"),
    (
        {"filters": {"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}}},
        "bbox and intersects",
    ),
    ({"filters": {"sortby": [{"field": "datetime", "direction": "up"}]}}, "direction"),
    ({"filters": {"sortby": 5}}, "sortby"),
    ({"filters": {"query": "cloud<10"}}, "query"),
    ({"retry": {"max_retries": -1}}, "max_retries"),
    ({"retry": {"timeout": 0}}, "timeout"),
]


@pytest.mark.parametrize(("config", "fragment"), BAD_CONFIGS)
def test_bad_config_raises_configuration_error(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        IngestConfig(**config)
    with pytest.raises(stacfetch.StacfetchError):
        IngestConfig.model_validate(config)


BAD_INGESTORS: list[tuple[dict[str, Any], str]] = [
    ({}, "not defined"),
    ({"collections": ["a"]}, "url"),
    ({"url": "https://x.org", "collections": [""]}, "collections"),
    ({"url": "http://", "collections": ["a"]}, "url"),
    ({"url": URL, "matrix": "a"}, "matrix"),
    ({"url": URL, "matrix": [{"collection": "a"}]}, "unknown keys"),
    ({"url": URL, "matrix": [{}]}, "collection_id or a source_file"),
    ({"matrix": [{"collection_id": "a"}]}, "url"),
    ({"url": URL, "collections": ["a"], "headers": {"X": 1}}, "headers"),
    ({"url": URL, "collections": ["a"], "modifier": "sign"}, "modifier"),
    ({"url": URL, "collections": ["a"], "progress": "fancy"}, "progress"),
    ({"url": URL, "collections": ["a"], "concurrency": 0}, "concurrency"),
    ({"url": URL, "collections": ["a"], "bbox": [3, 2, 1]}, "bbox"),
]


@pytest.mark.parametrize(("kwargs", "fragment"), BAD_INGESTORS)
def test_bad_ingestor_input(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        Ingestor(**kwargs)


def test_missing_source_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="source_file"):
        Ingestor(source_file=str(tmp_path / "nope.parquet"))
    with pytest.raises(ConfigurationError, match="source_file"):
        Ingestor(source_file=str(tmp_path / "*.json"))


def test_ingestor_merges_config_and_arguments() -> None:
    ing = Ingestor(
        URL,
        config={"collection_id": "a", "concurrency": {"chunk_size": 50}, "filters": {"ids": ["x"]}},
        concurrency=None,
        bbox=[0, 0, 1, 1],
        progress=False,
    )
    assert [e.collection_id for e in ing.entries] == ["a"]
    assert ing.config.filters.bbox == [0, 0, 1, 1]
    assert ing.config.filters.ids == ["x"]
    assert ing.config.concurrency.chunk_size == 50
    matrix = Ingestor(
        matrix=[{"collection_id": "a", "catalog_url": URL}, {"collection_id": "b"}],
        url="https://other.example.org",
        progress=False,
    )
    assert [(e.catalog_url, e.collection_id) for e in matrix.entries] == [
        (URL, "a"),
        ("https://other.example.org", "b"),
    ]
