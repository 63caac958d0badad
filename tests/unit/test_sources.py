"""File mode (stacfetch._formats.sources): items from Parquet, JSON and ndjson files."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stacfetch._formats.arrow import TIMESTAMP_COLUMNS, items_to_arrow
from stacfetch._formats.geoparquet import write_geoparquet
from stacfetch._formats.sources import aiter_source_pages, iter_source_pages, resolve_source
from stacfetch._model.errors import ConfigurationError, SourceError
from tests.support.parts import write_dataset

DATA = Path(__file__).resolve().parents[1] / "data" / "real-stac"
REAL_FILES = sorted(DATA.glob("*.json"))


def load(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text())
    if isinstance(document, list):
        return document
    if document.get("type") == "FeatureCollection":
        features: list[dict[str, Any]] = document["features"]
        return features
    return [document]


def read_all(pattern: str | Path, page_size: int = 1000) -> list[dict[str, Any]]:
    return [item for page in iter_source_pages(str(pattern), page_size) for item in page]


def normalise(value: Any, key: str | None = None) -> Any:
    """Items as a round trip through the layout gives them back: null values and missing keys
    are the same, timestamps compared as instants, numbers as floats."""
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if key in TIMESTAMP_COLUMNS and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def normalise_item(item: dict[str, Any]) -> Any:
    out = normalise(item)
    out.setdefault("assets", {})
    return out


def write_ndjson(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


# --- resolve_source ------------------------------------------------------------------------


def test_resolve_source_path_glob_and_directory(tmp_path: Path) -> None:
    for name in ["b.json", "a.ndjson", "c.parquet", "notes.txt", ".hidden.json"]:
        (tmp_path / name).write_text("{}")
    assert resolve_source(str(tmp_path / "b.json")) == [tmp_path / "b.json"]
    assert resolve_source(str(tmp_path / "*.json")) == [tmp_path / "b.json"]
    assert [p.name for p in resolve_source(str(tmp_path))] == ["a.ndjson", "b.json", "c.parquet"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.json").write_text("{}")
    assert [p.name for p in resolve_source(str(tmp_path / "**" / "*.json"))] == [
        "b.json",
        "d.json",
    ]


@pytest.mark.parametrize("pattern", ["missing.json", "nothing/*.json", "", "   "])
def test_resolve_source_nothing_matches(tmp_path: Path, pattern: str) -> None:
    target = str(tmp_path / pattern) if pattern.strip() else pattern
    with pytest.raises(ConfigurationError, match=r"^source_file: "):
        resolve_source(target)


def test_resolve_source_directory_without_items(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigurationError, match="source_file: directory"):
        resolve_source(str(tmp_path))


def test_iter_source_pages_resolves_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="source_file"):
        iter_source_pages(str(tmp_path / "*.ndjson"))  # raised by the call, not the first page
    with pytest.raises(ConfigurationError, match="page_size"):
        iter_source_pages(str(DATA), page_size=0)


# --- JSON shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.stem)
def test_every_real_file_reads_as_its_items(path: Path) -> None:
    assert read_all(path) == load(path)


def test_pages_span_files_and_keep_order() -> None:
    everything = [item for path in REAL_FILES for item in load(path)]
    pages = list(iter_source_pages(str(DATA / "*.json"), page_size=50))
    assert all(len(page) == 50 for page in pages[:-1])
    assert 0 < len(pages[-1]) <= 50
    assert [item for page in pages for item in page] == everything


@pytest.mark.parametrize("suffix", [".ndjson", ".jsonl", ".geojsonl", ".json", ".txt"])
def test_ndjson_by_suffix_or_detected(tmp_path: Path, suffix: str) -> None:
    items = load(DATA / "earth-search-v1__multi__1.json")
    path = write_ndjson(tmp_path / f"items{suffix}", items)
    assert read_all(path, page_size=3) == items
    assert [len(page) for page in iter_source_pages(str(path), page_size=3)] == [3, 3, 3, 1]


def test_ndjson_lines_may_be_feature_collections(tmp_path: Path) -> None:
    first = json.loads((DATA / "earth-search-v1__multi__1.json").read_text())
    second = json.loads((DATA / "earth-search-v1__multi__2.json").read_text())
    path = tmp_path / "pages.ndjson"
    path.write_text(json.dumps(first) + "\n\n" + json.dumps(second) + "\n")
    assert read_all(path) == first["features"] + second["features"]


# --- Parquet -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.stem)
def test_round_trip_through_our_geoparquet(path: Path, tmp_path: Path) -> None:
    items = load(path)
    write_geoparquet(items_to_arrow(items), tmp_path / "items.parquet")
    back = read_all(tmp_path / "items.parquet", page_size=4)
    assert [normalise_item(i) for i in back] == [normalise_item(i) for i in items]
    for source, result in zip(items, back, strict=True):
        assert "geometry" in result
        if "datetime" in source["properties"]:  # required by STAC, so kept even when null
            assert "datetime" in result["properties"]


def test_round_trip_of_a_written_dataset(tmp_path: Path) -> None:
    items = [item for path in REAL_FILES for item in load(path)]
    pages = (items_to_arrow(items[start : start + 10]) for start in range(0, len(items), 10))
    write_dataset(tmp_path / "out", pages, rows_per_part=64)
    back = read_all(tmp_path / "out")
    assert len(back) == len(items)
    assert [normalise_item(i) for i in back] == [normalise_item(i) for i in items]


def test_reads_stac_geoparquet_files(tmp_path: Path) -> None:
    sga = pytest.importorskip("stac_geoparquet.arrow")
    items = load(DATA / "planetary-computer__sentinel-1-rtc__2.json")
    table = sga.parse_stac_items_to_arrow(items).read_all()
    sga.to_parquet(table, tmp_path / "theirs.parquet")
    back = read_all(tmp_path / "theirs.parquet")
    assert [normalise_item(i) for i in back] == [normalise_item(i) for i in items]
    assert back[0]["properties"]["start_datetime"].endswith("Z")


def test_parquet_detected_by_magic(tmp_path: Path) -> None:
    items = load(DATA / "planetary-computer__landsat-c2-l2__3.json")
    path = write_geoparquet(items_to_arrow(items), tmp_path / "items.parquet")
    renamed = tmp_path / "items.bin"
    shutil.copy(path, renamed)
    assert [i["id"] for i in read_all(renamed)] == [i["id"] for i in items]


# --- errors --------------------------------------------------------------------------------


def test_invalid_json_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"type": "FeatureCollection",\n "features": [}')
    with pytest.raises(SourceError, match=r"broken\.json is not valid JSON \(line 2"):
        read_all(path)


def test_ndjson_bad_line_names_file_and_line(tmp_path: Path) -> None:
    items = load(DATA / "earth-search-v1__multi__1.json")
    path = write_ndjson(tmp_path / "items.ndjson", items[:2])
    with path.open("a") as handle:
        handle.write('{"type": "Feature", "id": \n')
    with pytest.raises(SourceError, match=r"items\.ndjson, line 3: invalid JSON"):
        read_all(path)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"type": "Catalog", "id": "x"}, "is not a STAC item"),
        ({"type": "Feature", "properties": {}}, "is not a STAC item"),
        ([{"type": "Feature", "id": "a"}, 3], r"\(item 1\) is not a STAC item"),
        ({"type": "FeatureCollection", "features": {}}, "without a features list"),
        ("just a string", "is not a STAC item"),
    ],
)
def test_non_stac_json(tmp_path: Path, document: Any, message: str) -> None:
    path = tmp_path / "thing.json"
    path.write_text(json.dumps(document))
    with pytest.raises(SourceError, match=message) as raised:
        read_all(path)
    assert "thing.json" in str(raised.value)


def test_non_stac_ndjson_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_text('{"type": "Feature", "id": "a"}\n{"name": "b"}\n')
    with pytest.raises(SourceError, match=r"rows\.ndjson, line 2 is not a STAC item"):
        read_all(path)


def test_unreadable_and_non_stac_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet at all")
    with pytest.raises(SourceError, match=r"fake\.parquet is not a readable Parquet file"):
        read_all(fake)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"name": ["x"]}), other)
    with pytest.raises(SourceError, match=r"other\.parquet is not stac-geoparquet"):
        read_all(other)
    locked = write_ndjson(tmp_path / "locked.ndjson", [{"type": "Feature", "id": "a"}])

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("stacfetch._formats.sources.open", refuse, raising=False)
    with pytest.raises(SourceError, match=r"cannot read .*locked\.ndjson: Permission denied"):
        read_all(locked)


# --- async ---------------------------------------------------------------------------------


async def test_aiter_source_pages_reads_in_a_thread() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    pages = [page async for page in aiter_source_pages(str(DATA / "*.json"), page_size=25)]
    task.cancel()
    assert [i for page in pages for i in page] == [i for p in REAL_FILES for i in load(p)]
    assert ticks >= len(pages)


async def test_aiter_source_pages_errors_and_early_exit(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="source_file"):
        async for _ in aiter_source_pages(str(tmp_path / "none*.json")):
            pass
    async for page in aiter_source_pages(str(DATA), page_size=5):
        assert len(page) == 5
        break
