"""The ``to_parquet`` dataset (docs/decisions/0005): every standard reader reads it whole, items
round-trip through stacfetch's and stac-geoparquet's readers, empty runs, re-used Ingestors.

The datasets are written in file mode (``source_file``: the real items of tests/data/real-stac,
one entry per file, and the demo items), so no server is needed and every item is known.
"""

from __future__ import annotations

import gzip
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import stacfetch
from stacfetch import Ingestor, read_geoparquet, read_items
from stacfetch._formats.arrow import TIMESTAMP_COLUMNS
from stacfetch._run.resume import MANIFEST_NAME

DATA = Path(__file__).resolve().parents[1] / "data" / "real-stac"
REAL_FILES = sorted(DATA.glob("*.json"))
DEMO = Path(stacfetch.__file__).parent / "data" / "demo-items.ndjson.gz"


def load(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text())
    if isinstance(document, list):
        return document
    if document.get("type") == "FeatureCollection":
        features: list[dict[str, Any]] = document["features"]
        return features
    return [document]


def demo_items() -> list[dict[str, Any]]:
    with gzip.open(DEMO, "rt") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def real_items() -> list[dict[str, Any]]:
    return [item for path in REAL_FILES for item in load(path)]


def parts(out: Path) -> list[Path]:
    return sorted(out.glob("*.parquet"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """One output of 28 entries (27 real files, the demo items): parts of different
    collections and property sets, Zarr assets with ``chunks: {}``, null geometries."""
    root = tmp_path_factory.mktemp("dataset")
    demo = root / "demo.ndjson"
    demo.write_text("".join(json.dumps(item) + "\n" for item in demo_items()))
    matrix = [{"source_file": str(path)} for path in [*REAL_FILES, demo]]
    out = Ingestor(matrix=matrix, progress=False).to_parquet(root / "out", rows_per_part=400)
    return out, real_items() + demo_items()


# --- normalisation of the comparisons --------------------------------------------------------


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T").upper())


def normalise(value: Any, key: str | None = None, seconds: bool = False) -> Any:
    """The documented normalisations: null == missing, timestamps compared as instants
    (``seconds``: to the second, as stac-geoparquet formats them), numbers as numbers."""
    if isinstance(value, dict):
        return {k: normalise(v, k, seconds) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [normalise(v, None, seconds) for v in value]
    if key in TIMESTAMP_COLUMNS and isinstance(value, str):
        instant = _instant(value)
        return instant.replace(microsecond=0) if seconds else instant
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical(items: list[dict[str, Any]], seconds: bool = False) -> list[str]:
    out = []
    for item in items:
        norm = normalise(item, seconds=seconds)
        norm.setdefault("assets", {})
        out.append(json.dumps(norm, sort_keys=True, default=str))
    return sorted(out)


# --- the standard readers ------------------------------------------------------------------


def test_every_part_has_the_one_schema(dataset: tuple[Path, list[dict[str, Any]]]) -> None:
    out, _ = dataset
    files = parts(out)
    assert len(files) >= 25
    schemas = {pq.read_schema(f).to_string(show_schema_metadata=True) for f in files}
    assert len(schemas) == 1
    common = pq.read_schema(out / "_common_metadata")
    assert common.equals(pq.read_schema(files[0]), check_metadata=True)
    # odd assets (Zarr ``chunks: {}``) do not turn ``assets`` into JSON text
    assert pa.types.is_struct(common.field("assets").type)
    # 3D boxes (3dep-lidar-copc) among 2D ones: one 6-field bbox, NaN z for the 2D ones
    assert common.field("bbox").type.names == ["xmin", "ymin", "zmin", "xmax", "ymax", "zmax"]


def test_pyarrow_reads_the_whole_dataset(dataset: tuple[Path, list[dict[str, Any]]]) -> None:
    out, items = dataset
    expected = set(read_geoparquet(out).columns)
    assert len(expected) > 150  # the union of every collection's columns
    table = pq.read_table(out)
    assert table.num_rows == len(items)
    assert set(table.column_names) == expected
    dataset_table = ds.dataset(out, format="parquet").to_table()
    assert dataset_table.num_rows == len(items)
    assert set(dataset_table.column_names) == expected


def test_geopandas_reads_the_whole_dataset(dataset: tuple[Path, list[dict[str, Any]]]) -> None:
    geopandas = pytest.importorskip("geopandas")
    out, items = dataset
    expected = set(read_geoparquet(out).columns)
    frame = geopandas.read_parquet(out)
    assert len(frame) == len(items)
    # geopandas hides the GeoParquet bbox covering column unless asked for it
    assert set(frame.columns) == expected - {"bbox"}
    assert "bbox" in geopandas.read_parquet(out, columns=["id", "geometry", "bbox"]).columns
    assert frame.crs.to_epsg() == 4326


def test_dask_geopandas_reads_the_whole_dataset(
    dataset: tuple[Path, list[dict[str, Any]]],
) -> None:
    dask_geopandas = pytest.importorskip("dask_geopandas")
    out, items = dataset
    expected = set(read_geoparquet(out).columns)
    frame = dask_geopandas.read_parquet(out).compute(scheduler="sync")
    assert len(frame) == len(items)
    assert set(frame.columns) == expected


def test_duckdb_reads_the_whole_dataset(dataset: tuple[Path, list[dict[str, Any]]]) -> None:
    duckdb = pytest.importorskip("duckdb")
    out, items = dataset
    expected = set(read_geoparquet(out).columns)
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{out.as_posix()}/*.parquet')")
    assert set(relation.columns) == expected
    assert len(relation.fetchall()) == len(items)
    epsg = duckdb.sql(
        f"SELECT typeof(\"proj:epsg\") FROM read_parquet('{out.as_posix()}/*.parquet') LIMIT 1"
    ).fetchall()
    assert epsg == [("BIGINT",)]


def _rustac_readable(table: pa.Table) -> bool:
    """rustac (geo-types) cannot hold a null geometry, nor a MultiPolygon with an empty member
    (one real Sentinel-1 GRD item has one); every other part must read."""
    if table.column("geometry").null_count:
        return False
    return not any(
        g["type"] == "MultiPolygon" and any(not polygon for polygon in g["coordinates"])
        for g in (json.loads(text) for text in _geojson(table))
    )


def _geojson(table: pa.Table) -> list[str]:
    from stacfetch._formats.wkb import wkb_to_geojson

    return [json.dumps(wkb_to_geojson(w)) for w in table.column("geometry").to_pylist()]


def test_rustac_reads_every_part(dataset: tuple[Path, list[dict[str, Any]]]) -> None:
    rustac = pytest.importorskip("rustac")
    out, items = dataset
    read = skipped = 0
    for file in parts(out):
        table = pq.read_table(file)
        if not _rustac_readable(table):
            skipped += table.num_rows
            continue
        collection = rustac.read_sync(str(file))
        features = collection["features"]
        assert len(features) == table.num_rows
        ids = {f["id"] for f in features}
        assert ids == set(table.column("id").to_pylist())
        read += len(features)
    assert skipped == 21  # 20 items without geometry (fields exclude), one empty member
    assert read == len(items) - skipped


def test_stac_geoparquet_reads_items_back(dataset: tuple[Path, list[dict[str, Any]]]) -> None:
    """stac-geoparquet 0.8's reader calls ``__geo_interface__`` on every WKB value of
    ``geometry`` and ``proj:geometry``: a null one (an item without geometry, or a collection
    without ``proj:geometry`` next to one with it) raises. It reads everything else: per
    collection, without the columns that collection never fills (as its own files hold)."""
    sga = pytest.importorskip("stac_geoparquet.arrow")
    out, items = dataset
    table = pq.read_table(out)
    with pytest.raises(AttributeError, match="__geo_interface__"):
        list(sga.stac_table_to_items(table))
    theirs: list[dict[str, Any]] = []
    for collection in pc.unique(table.column("collection")).to_pylist():
        rows = table.filter(pc.equal(table.column("collection"), collection))
        rows = rows.filter(pc.is_valid(rows.column("geometry")))
        if rows.num_rows == 0:
            continue
        filled = [name for name in rows.column_names if rows.column(name).null_count < len(rows)]
        theirs.extend(sga.stac_table_to_items(rows.select(filled)))
    for item in theirs:  # what a reader that knows none of stacfetch's marks gives:
        _parse_empty_objects(item)  # an empty object no item gave fields: the JSON "{}"
        box = item.get("bbox")
        if box is not None and len(box) == 6 and math.isnan(box[2]):
            item["bbox"] = [box[0], box[1], box[3], box[4]]  # a 2D box among 3D ones
        props = item["properties"]
        for key in [k for k in props if k.startswith("properties.")]:
            props[key.removeprefix("properties.")] = props.pop(key)  # renamed on collision
        _shapely_empty_members(item["geometry"])
    originals = [_top_level_in_properties(i) for i in items if i.get("geometry") is not None]
    assert len(theirs) == len(items) - 20
    assert canonical(theirs, seconds=True) == canonical(originals, seconds=True)


def _top_level_in_properties(item: dict[str, Any]) -> dict[str, Any]:
    """A non-standard top-level key (``description``) comes back among the properties."""
    core = {"type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "collection"}
    core |= {"links", "assets", "properties"}
    extra = {k: v for k, v in item.items() if k not in core}
    if not extra:
        return item
    kept = {k: v for k, v in item.items() if k in core}
    return {**kept, "properties": {**item.get("properties", {}), **extra}}


def _shapely_empty_members(geometry: dict[str, Any]) -> None:
    """shapely gives an empty polygon of a MultiPolygon as ``[[]]``; GeoJSON had ``[]``."""
    if geometry["type"] == "MultiPolygon":
        geometry["coordinates"] = [[] if p == [[]] else p for p in geometry["coordinates"]]


def _parse_empty_objects(value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if child == "{}":
                value[key] = {}
            else:
                _parse_empty_objects(child)
    elif isinstance(value, list):
        for child in value:
            _parse_empty_objects(child)


# --- round trips through stacfetch -------------------------------------------------------------


def test_read_items_gives_back_every_item(dataset: tuple[Path, list[dict[str, Any]]]) -> None:
    out, items = dataset
    back = read_items(out)
    assert len(back) == len(items)
    assert canonical(back) == canonical(items)
    epsg = [i["properties"]["proj:epsg"] for i in back if "proj:epsg" in i["properties"]]
    assert epsg
    assert all(type(code) is int for code in epsg)  # integers stay integers


def test_every_real_file_round_trips_alone(tmp_path: Path) -> None:
    for n, path in enumerate(REAL_FILES):
        out = Ingestor(source_file=str(path), progress=False).to_parquet(tmp_path / f"{n}")
        assert canonical(read_items(out)) == canonical(load(path)), path.name


def test_geodataframe_keeps_integers_integers(dataset: tuple[Path, list[dict[str, Any]]]) -> None:
    out, _ = dataset
    gdf = read_geoparquet(out)
    column = gdf["proj:epsg"]
    assert str(column.dtype) == "Int64"  # nulls for the collections without it, never floats
    assert column.notna().any()
    assert all(isinstance(v, int) for v in column.dropna().tolist())


# --- odd items -------------------------------------------------------------------------------


def _item(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": name,
        "collection": "c",
        "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
        "bbox": [1.0, 2.0, 1.0, 2.0],
        "properties": {"datetime": "2024-01-01T00:00:00Z"},
        "links": [],
        "assets": {"data": {"href": "https://x/a.tif"}},
        **extra,
    }


def test_mixed_2d_and_3d_boxes_and_odd_assets_read_everywhere(tmp_path: Path) -> None:
    sga = pytest.importorskip("stac_geoparquet.arrow")
    rustac = pytest.importorskip("rustac")
    zarr = {"zarr": {"href": "abfs://x", "xarray:open_kwargs": {"chunks": {}, "engine": "zarr"}}}
    items = [
        _item("flat"),
        _item("deep", bbox=[1.0, 2.0, -5.0, 1.0, 2.0, 7.5]),
        _item("zarr", assets=zarr),
        _item("epsg", properties={"datetime": "2024-01-01T00:00:00Z", "proj:epsg": 32660}),
    ]
    source = tmp_path / "items.ndjson"
    source.write_text("".join(json.dumps(item) + "\n" for item in items))
    ing = Ingestor(source_file=str(source), limit=1, progress=False)
    out = ing.to_parquet(tmp_path / "out", rows_per_part=1)
    files = parts(out)
    assert len(files) == 4
    schema = pq.read_schema(files[0])
    assert schema.field("bbox").type.names == ["xmin", "ymin", "zmin", "xmax", "ymax", "zmax"]
    assert pa.types.is_struct(schema.field("assets").type)
    assert pa.types.is_int64(schema.field("proj:epsg").type)
    assert canonical(read_items(out)) == canonical(items)
    theirs = {i["id"]: i for i in sga.stac_table_to_items(pq.read_table(out))}
    assert theirs["deep"]["bbox"] == [1.0, 2.0, -5.0, 1.0, 2.0, 7.5]
    flat = theirs["flat"]["bbox"]  # a 2D box among 3D ones: NaN z (documented)
    assert flat[:2] == [1.0, 2.0]
    assert math.isnan(flat[2])
    assert theirs["epsg"]["properties"]["proj:epsg"] == 32660
    assert theirs["zarr"]["assets"]["zarr"]["href"] == "abfs://x"
    assert {f["id"] for file in files for f in rustac.read_sync(str(file))["features"]} == {
        "flat",
        "deep",
        "zarr",
        "epsg",
    }
    gdf = read_geoparquet(out)
    assert gdf.set_index("id").loc["epsg", "proj:epsg"] == 32660
    assert str(gdf["proj:epsg"].dtype) == "Int64"


# --- empty results ---------------------------------------------------------------------------


def test_empty_run_gives_base_columns_and_a_readable_empty_dataset(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    geopandas = pytest.importorskip("geopandas")
    empty = DATA / "planetary-computer__aster-l1t__3.json"
    gdf = Ingestor(source_file=str(empty), progress=False).ingest()
    assert len(gdf) == 0
    assert {"id", "collection", "datetime", "geometry", "bbox", "type"} <= set(gdf.columns)
    assert str(gdf["datetime"].dtype) == "datetime64[us, UTC]"
    assert gdf.crs.to_epsg() == 4326
    out = Ingestor(source_file=str(empty), progress=False).to_parquet(tmp_path / "out")
    assert json.loads((out / MANIFEST_NAME).read_text())["complete"] is True
    assert len(parts(out)) == 1
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert table.schema.field("datetime").type == pa.timestamp("us", tz="UTC")
    assert len(geopandas.read_parquet(out)) == 0
    count = f"SELECT count(*) FROM read_parquet('{out.as_posix()}/*.parquet')"
    assert duckdb.sql(count).fetchall() == [(0,)]
    assert read_items(out) == []
    # file mode on the empty output: an empty frame, no error
    again = Ingestor(source_file=str(out), progress=False).ingest()
    assert len(again) == 0
    assert {"id", "collection", "datetime", "geometry"} <= set(again.columns)


# --- re-using an Ingestor --------------------------------------------------------------------


def test_each_call_of_an_ingestor_is_a_run_of_its_own(tmp_path: Path) -> None:
    source = tmp_path / "demo.ndjson"
    items = demo_items()
    source.write_text("".join(json.dumps(item) + "\n" for item in items))
    ing = Ingestor(source_file=str(source), progress=False)
    first = ing.ingest()
    assert len(first) == len(items)
    out = ing.to_parquet(tmp_path / "out")
    assert len(read_geoparquet(out)) == len(items)  # not 0: the second call fetched again
    assert json.loads((out / MANIFEST_NAME).read_text())["complete"] is True
    assert len(ing.ingest()) == len(items)
    other = ing.to_parquet(tmp_path / "other")
    assert len(read_geoparquet(other)) == len(items)


def test_a_null_column_in_one_part_and_ints_in_another(tmp_path: Path) -> None:
    """The "Unsupported cast from int64 to null" of parts whose first one had only nulls."""
    geopandas = pytest.importorskip("geopandas")
    first = _item("a", properties={"datetime": "2024-01-01T00:00:00Z", "sat:orbit": None})
    second = _item("b", properties={"datetime": "2024-01-02T00:00:00Z", "sat:orbit": 12345})
    source = tmp_path / "items.ndjson"
    source.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    ing = Ingestor(source_file=str(source), limit=1, progress=False)
    out = ing.to_parquet(tmp_path / "out", rows_per_part=1)
    assert len(parts(out)) == 2
    for file in parts(out):
        assert pq.read_schema(file).field("sat:orbit").type == pa.int64()
    assert pq.read_table(out).column("sat:orbit").to_pylist() == [None, 12345]
    assert ds.dataset(out, format="parquet").to_table().num_rows == 2
    frame = geopandas.read_parquet(out).sort_values("id")
    assert frame["sat:orbit"].isna().tolist() == [True, False]
    assert [i["properties"].get("sat:orbit") for i in read_items(out)] == [None, 12345]
