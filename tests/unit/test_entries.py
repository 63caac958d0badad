"""``resolve_entries`` and its helpers: which catalog / collection / file a run fetches."""

from __future__ import annotations

from typing import Any

import pytest

from stacfetch._model.config import IngestConfig
from stacfetch._model.entries import config_entries, missing_fields, resolve_entries, row_entry
from stacfetch._model.errors import ConfigurationError
from stacfetch._model.types import Entry

URL = "https://stac.example.com"


def cfg(**kwargs: Any) -> IngestConfig:
    return IngestConfig.model_validate(kwargs)


# -- good cases ----------------------------------------------------------------------------------
def test_comma_separated_string() -> None:
    assert resolve_entries(URL + "/", "a, b,", None, cfg()) == [Entry(URL, "a"), Entry(URL, "b")]


def test_repeated_collections_are_deduplicated_in_order() -> None:
    entries = resolve_entries(URL, ["b", "a", "b", "a"], None, cfg())
    assert entries == [Entry(URL, "b"), Entry(URL, "a")]
    assert resolve_entries(URL, None, None, cfg(filters={"collections": ["p", "q", "p"]})) == [
        Entry(URL, "p"),
        Entry(URL, "q"),
    ]


def test_matrix_rows_name_their_own_catalog() -> None:
    matrix = [
        {"collection_id": "a"},
        {"collection_id": "b", "catalog_url": "https://other.example.com/v1/"},
        {"source_file": "items.ndjson"},
    ]
    assert resolve_entries(URL, None, matrix, cfg()) == [
        Entry(URL, "a"),
        Entry("https://other.example.com/v1", "b"),
        Entry(URL, None, "items.ndjson"),
    ]
    # each row's catalog_url is enough without a default url
    rows = [{"collection_id": "a", "catalog_url": URL}]
    assert resolve_entries(None, None, rows, cfg()) == [Entry(URL, "a")]


def test_config_collection_id_and_catalog_url() -> None:
    # the config's collection_id wins over the rows'; its catalog_url over url (not the rows')
    config = cfg(collection_id="k", catalog_url="https://cfg.example.com")
    rows = [{"collection_id": "a"}, {"collection_id": "b", "catalog_url": URL}]
    assert resolve_entries("https://ignored.example.com", None, rows, config) == [
        Entry("https://cfg.example.com", "k"),
        Entry(URL, "k"),
    ]
    assert resolve_entries(URL, None, None, cfg(collection_id="k")) == [Entry(URL, "k")]


def test_source_file_needs_no_url() -> None:
    config = cfg(source_file="items.ndjson", collection_id="k")
    assert resolve_entries(None, ["ignored"], None, config) == [Entry(None, "k", "items.ndjson")]


def test_ids_without_collections_search_the_whole_catalog() -> None:
    assert resolve_entries(URL, None, None, cfg(filters={"ids": ["x", "y"]})) == [Entry(URL, None)]


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize("matrix", ["a", {"collection_id": "a"}, 5])
def test_matrix_must_be_a_list(matrix: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^matrix: expected a list of"):
        resolve_entries(URL, None, matrix, cfg())


def test_matrix_rows_must_be_mappings() -> None:
    with pytest.raises(ConfigurationError, match=r"^matrix\[1\]: expected a mapping, got 'b'"):
        resolve_entries(URL, None, [{"collection_id": "a"}, "b"], cfg())


def test_unknown_matrix_keys() -> None:
    with pytest.raises(ConfigurationError, match=r"matrix\[0\]: unknown keys \['collection'\]"):
        resolve_entries(URL, None, [{"collection": "a"}], cfg())


@pytest.mark.parametrize("row", [{}, {"catalog_url": URL}, {"collection_id": ""}])
def test_matrix_row_needs_a_collection_or_a_file(row: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=r"matrix\[0\]: needs a collection_id or a sou"):
        resolve_entries(URL, None, [row], cfg())


def test_bad_urls() -> None:
    with pytest.raises(ConfigurationError, match=r"matrix\[0\]\.catalog_url must be an http"):
        resolve_entries(URL, None, [{"collection_id": "a", "catalog_url": "ftp://x"}], cfg())
    with pytest.raises(ConfigurationError, match=r"^url must be an http"):
        resolve_entries("ftp://x", ["a"], None, cfg())


def test_no_target() -> None:
    with pytest.raises(ConfigurationError, match=r"Ingest target \(collection_id or source_fi"):
        resolve_entries(URL, None, None, cfg())
    with pytest.raises(ConfigurationError, match=r"Ingest target"):
        resolve_entries(URL, None, [], cfg())


def test_collections_must_be_non_empty_strings() -> None:
    with pytest.raises(ConfigurationError, match=r"collections: expected non-empty strings"):
        resolve_entries(URL, ["a", ""], None, cfg())


@pytest.mark.parametrize(
    ("collections", "matrix", "config", "what"),
    [
        (["a"], None, {}, "collection 'a'"),
        (None, [{"collection_id": "b"}], {}, "collection 'b'"),
        (None, None, {"filters": {"ids": ["x"]}}, "an ids search"),
    ],
)
def test_missing_url(collections: Any, matrix: Any, config: dict[str, Any], what: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^url: {what} needs a STAC API URL"):
        resolve_entries(None, collections, matrix, cfg(**config))


# -- the shared helpers ---------------------------------------------------------------------------
def test_row_entry_and_missing_fields() -> None:
    assert row_entry({"collection_id": "a", "catalog_url": ""}, cfg(), None) == Entry(None, "a")
    assert row_entry({"collection_id": "a"}, cfg(collection_id="k"), URL) == Entry(URL, "k")
    assert missing_fields(Entry(None, None)) == ("collection_id", "catalog_url")
    assert missing_fields(Entry(URL, None)) == ("collection_id",)
    assert missing_fields(Entry(URL, "a")) == ()
    assert missing_fields(Entry(None, None, "f.ndjson")) == ()


def test_config_entries_may_be_empty() -> None:
    assert config_entries(None, cfg(), URL) == []
    assert config_entries(["a"], cfg(collection_id="k"), URL) == [Entry(URL, "a")]
