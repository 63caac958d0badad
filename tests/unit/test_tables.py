"""Items -> Arrow -> GeoDataFrame / GeoParquet (``_formats.arrow``, ``_formats.tables``)."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacfetch._formats.arrow import (
    ENCODING,
    INVALID_GEOMETRY,
    JSON,
    KEY,
    LEVEL,
    TIMESTAMP,
    TIMESTAMP_COLUMNS,
    items_to_arrow,
    to_timestamps,
)
from stacfetch._formats.geoparquet import (
    read_arrow,
    read_geoparquet,
    write_geoparquet,
)
from stacfetch._formats.sources import table_to_items
from stacfetch._formats.tables import (
    SCATTERED,
    arrow_to_geodataframe,
    concat_tables,
    select_rows,
    unify_schemas,
)
from stacfetch._formats.wkb import geojson_to_wkb, wkb_to_geojson
from tests.support.parts import items_frame, write_dataset

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


def all_real_items() -> list[dict[str, Any]]:
    return [item for path in REAL_FILES for item in load(path)]


REAL_TABLE = items_to_arrow(all_real_items()[:120])


def item(item_id: str, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
        "bbox": [1.0, 2.0, 1.0, 2.0],
        "collection": "c",
        "properties": {"datetime": "2024-01-01T00:00:00Z", **props},
        "links": [],
        "assets": {"data": {"href": f"https://example.com/{item_id}.tif"}},
    }


def normalise(value: Any, key: str | None = None) -> Any:
    """Items as this layout gives them back: nulls dropped, timestamps and numbers compared
    by value (an int stored in a float64 column comes back as a float)."""
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if key in TIMESTAMP_COLUMNS and isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
        except ValueError:
            return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def normalise_item(value: dict[str, Any]) -> Any:
    out = normalise(value)
    out.setdefault("assets", {})
    return out


def plain(kind: pa.DataType) -> pa.DataType:
    """A type without list field names (Parquet renames ``item`` to ``element``)."""
    if pa.types.is_list(kind):
        return pa.list_(plain(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, plain(f.type)) for f in kind])
    return kind


def column_key(field: pa.Field) -> str:
    return str((field.metadata or {}).get(KEY, field.name.encode()).decode())


# --- every real file -----------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.stem)
def test_every_real_file_converts_and_keeps_every_key(path: Path) -> None:
    items = load(path)
    table = items_to_arrow(items)
    assert table.num_rows == len(items)
    keys = {column_key(field) for field in table.schema}
    for source in items:
        assert set(source) - {"properties"} <= keys
        assert set(source["properties"]) <= keys
    geometry = table.schema.field("geometry")
    assert geometry.type == pa.binary()
    assert geometry.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
    for name in TIMESTAMP_COLUMNS & set(table.column_names):
        assert table.schema.field(name).type == TIMESTAMP, name
    assert table_to_items(table) == [table_to_items(items_to_arrow([one]))[0] for one in items], (
        "a batch converts like its items one by one"
    )


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.stem)
def test_schema_matches_stac_geoparquet(path: Path) -> None:
    import stac_geoparquet.arrow as sga

    items = load(path)
    ours = items_to_arrow(items)
    assert ours.num_rows == len(items)
    try:
        reference = sga.parse_stac_items_to_arrow(items).read_all()
    except Exception:  # stac-geoparquet fails on this file (no geometry, odd MultiPolygon...)
        # we still convert it, and every item comes back
        assert len(table_to_items(ours)) == len(items)
        return
    assert set(ours.column_names) == set(reference.column_names)
    for field in reference.schema:
        want = plain(field.type)
        if field.name == "bbox":  # stac-geoparquet keeps int64 for integer bboxes; we: double
            want = pa.struct([pa.field(f.name, pa.float64()) for f in field.type])
        assert plain(ours.schema.field(field.name).type) == want, field.name


def test_all_real_files_in_one_table_and_back() -> None:
    items = all_real_items()
    table = items_to_arrow(items)
    assert table.num_rows == len(items)
    back = table_to_items(table)
    assert [normalise_item(i) for i in back] == [normalise_item(i) for i in items]


# --- heterogeneous items -------------------------------------------------------------------


def test_heterogeneous_items_convert_and_come_back() -> None:
    range_item = item("range", start_datetime="2024-01-01T00:00:00Z")
    range_item["properties"]["datetime"] = None
    range_item["properties"]["end_datetime"] = "2024-02-01 00:00:00+00:00"
    no_geometry = item("no-geometry", gsd=10)
    del no_geometry["geometry"], no_geometry["bbox"]
    odd_geometry = item("odd-geometry")
    odd_geometry["geometry"] = {"type": "Polygon", "coordinates": [[[0, 0, 0, 0]]]}
    extra = item("extra", gsd=0.5, **{"eo:cloud_cover": "n/a", "id": "inner"})
    extra["stac_extensions"] = ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"]
    extra["description"] = "a top-level key that is not in the spec"
    items = [
        item("a", gsd=10, **{"eo:cloud_cover": 5, "nested": {"x": 1}}),
        item("b", **{"eo:cloud_cover": 7.5, "nested": {"x": "one", "y": [1]}}),
        range_item,
        no_geometry,
        odd_geometry,
        extra,
    ]
    table = items_to_arrow(items)
    schema = table.schema
    assert schema.field("gsd").type == pa.float64()
    assert schema.field("eo:cloud_cover").metadata == {ENCODING: JSON}
    assert schema.field("datetime").type == TIMESTAMP
    assert schema.field("end_datetime").type == TIMESTAMP
    assert schema.field("nested").type.field("x").metadata == {ENCODING: JSON}
    assert schema.field("properties.id").metadata[KEY] == b"id"
    assert schema.field("description").metadata[LEVEL] == b"item"
    assert table.column(INVALID_GEOMETRY).null_count == len(items) - 1
    assert table.column("geometry").null_count == 2
    back = table_to_items(table)
    assert [normalise_item(i) for i in back] == [normalise_item(i) for i in items]
    assert back[2]["properties"]["datetime"] is None
    assert back[3]["geometry"] is None
    assert back[4]["geometry"] == odd_geometry["geometry"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-11T04:42:31.719576Z", "2025-03-11 04:42:31.719576+00:00"),
        ("2025-03-11 04:42:31.719576+00:00", "2025-03-11 04:42:31.719576+00:00"),
        ("2025-03-11T06:42:31+02:00", "2025-03-11 04:42:31+00:00"),
        ("2022-01-01T00:00:00.000Z", "2022-01-01 00:00:00+00:00"),
        ("2025-03-11T04:42:31.123456789Z", "2025-03-11 04:42:31.123456+00:00"),
        ("2025-03-11t04:42:31z", "2025-03-11 04:42:31+00:00"),
        ("2025-03-11T04:42:31", "2025-03-11 04:42:31+00:00"),
        ("2025-03-11", "2025-03-11 00:00:00+00:00"),
    ],
)
def test_timestamp_forms(text: str, expected: str) -> None:
    parsed = to_timestamps(pa.array([text, None]))
    assert parsed.type == TIMESTAMP
    assert str(parsed[0].as_py()) == expected
    assert parsed[1].as_py() is None


def test_unparseable_datetime_column_stays_text() -> None:
    table = items_to_arrow([item("a", created="yesterday"), item("b", created="2024-01-01Z")])
    assert table.column("created").to_pylist() == ["yesterday", "2024-01-01Z"]


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Point", "coordinates": [1.5, -2.0]},
        {"type": "Point", "coordinates": [1.5, -2.0, 3.0]},
        {"type": "LineString", "coordinates": [[0.0, 0.0], [1.0, 1.0]]},
        {"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]},
        {"type": "MultiPoint", "coordinates": [[0.0, 0.0], [1.0, 1.0]]},
        {"type": "MultiLineString", "coordinates": [[[0.0, 0.0], [1.0, 1.0]]]},
        {
            "type": "MultiPolygon",
            "coordinates": [[[[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]]],
        },
        {
            "type": "GeometryCollection",
            "geometries": [{"type": "Point", "coordinates": [1.0, 2.0]}],
        },
    ],
)
def test_wkb_round_trip_and_matches_shapely(geometry: dict[str, Any]) -> None:
    shapely = pytest.importorskip("shapely")
    wkb = geojson_to_wkb(geometry)
    assert wkb_to_geojson(wkb) == geometry
    assert wkb_to_geojson(shapely.to_wkb(shapely.from_wkb(wkb), flavor="iso")) == geometry
    assert shapely.from_wkb(wkb).equals(shapely.from_geojson(json.dumps(geometry)))


# --- concat --------------------------------------------------------------------------------


def test_concat_unifies_batches_converted_separately() -> None:
    first = items_to_arrow([item("a", gsd=10, view={"az": 1}, tag="x", when=1)])
    second = items_to_arrow([item("b", gsd=0.5, view={"el": 2.0}, extra=[1, 2], tag=3)])
    third = items_to_arrow([])
    table = concat_tables([first, second, third])
    assert table.num_rows == 2
    assert table.schema.field("gsd").type == pa.float64()
    assert table.schema.field("view").type == pa.struct([("az", pa.int64()), ("el", pa.float64())])
    assert table.schema.field("tag").metadata == {ENCODING: JSON}
    assert table.column("extra").to_pylist() == [None, [1, 2]]
    back = table_to_items(table)
    assert back[0]["properties"]["tag"] == "x"
    assert back[1]["properties"]["tag"] == 3
    assert back[1]["properties"]["view"] == {"el": 2.0}


def test_concat_pages_with_the_same_keys_in_another_order() -> None:
    first = items_to_arrow([item("a", gsd=10, tag="x")])
    second = items_to_arrow([item("b", tag="y", gsd=20)])  # same keys, written the other way
    assert first.schema.names != second.schema.names
    table = concat_tables([first, second])
    assert table.column("gsd").to_pylist() == [10, 20]
    assert table.column("tag").to_pylist() == ["x", "y"]
    assert table.schema.names == unify_schemas([first.schema, second.schema]).names
    assert table.schema.metadata == unify_schemas([first.schema, second.schema]).metadata
    assert [i["properties"]["tag"] for i in table_to_items(table)] == ["x", "y"]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_select_rows_gives_the_rows_take_gives(data: st.DataObject) -> None:
    # The rows of a page not kept already: slices where they run on, a copy where scattered.
    table = REAL_TABLE
    keep = data.draw(st.lists(st.booleans(), min_size=table.num_rows, max_size=table.num_rows))
    positions = [i for i, kept in enumerate(keep) if kept]
    picked = select_rows(table, positions)
    assert picked.schema == table.schema
    taken = table.take(pa.array(positions, type=pa.int64()))
    assert repr(picked.to_pylist()) == repr(taken.to_pylist())  # (repr: NaN bbox corners)


def test_select_rows_slices_a_run_and_copies_scattered_rows() -> None:
    table = REAL_TABLE
    rest = select_rows(table, list(range(3, table.num_rows)))
    assert rest.column("id").to_pylist() == table.column("id").to_pylist()[3:]
    # a slice shares the page's buffers: no copy of its assets
    (source,) = table.column("id").chunks
    assert rest.column("id").chunks[0].buffers()[2].address == source.buffers()[2].address
    assert select_rows(table, list(range(table.num_rows))) is table
    scattered = list(range(0, 2 * (SCATTERED + 1), 2))
    copied = select_rows(table, scattered)
    assert copied.column("id").num_chunks == 1
    assert copied.column("id").to_pylist() == [table.column("id")[i].as_py() for i in scattered]
    assert select_rows(table, []).num_rows == 0


def test_concat_timestamps_with_text_and_empty() -> None:
    parsed = items_to_arrow([item("a", created="2024-01-01T00:00:00Z")])
    text = items_to_arrow([item("b", created="not a date")])
    table = concat_tables([parsed, text])
    assert table.column("created").to_pylist() == ["2024-01-01T00:00:00Z", "not a date"]
    empty = concat_tables([])  # the base columns of an empty result, with their types
    assert empty.column_names == [
        "type",
        "stac_version",
        "stac_extensions",
        "id",
        "geometry",
        "bbox",
        "collection",
        "datetime",
    ]
    assert empty.schema.field("datetime").type == pa.timestamp("us", tz="UTC")
    assert empty.schema.field("bbox").type.names == ["xmin", "ymin", "xmax", "ymax"]


# --- GeoDataFrame --------------------------------------------------------------------------


def test_geodataframe_of_real_items() -> None:
    items = all_real_items()
    gdf = items_frame(items)
    assert len(gdf) == len(items)
    assert gdf.crs.to_epsg() == 4326
    assert str(gdf["datetime"].dtype) == "datetime64[us, UTC]"
    assert gdf.geometry.isna().sum() == sum(1 for i in items if not i.get("geometry"))
    first = items[0]
    assert gdf.geometry.iloc[0].equals(
        pytest.importorskip("shapely").geometry.shape(first["geometry"])
    )
    assets = gdf["assets"].iloc[0]
    assert (
        assets[next(iter(first["assets"]))]["href"] == next(iter(first["assets"].values()))["href"]
    )


def test_empty_geodataframe_is_valid() -> None:
    gdf = items_frame([])
    assert len(gdf) == 0
    assert {"id", "collection", "geometry"} <= set(gdf.columns)
    assert gdf.crs.to_epsg() == 4326
    assert len(arrow_to_geodataframe(pa.table({"id": pa.array([], pa.string())}))) == 0


def test_geodataframe_of_an_unclosed_ring() -> None:
    odd = item("odd")
    odd["geometry"] = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}
    gdf = items_frame([odd, item("b")])
    assert gdf.geometry.iloc[1] is not None
    assert table_to_items(items_to_arrow([odd]))[0]["geometry"] == odd["geometry"]


def test_json_columns_are_python_values_in_geodataframe() -> None:
    gdf = items_frame([item("a", tag="x"), item("b", tag={"k": 1})])
    assert gdf["tag"].tolist() == ["x", {"k": 1}]


# --- GeoParquet ----------------------------------------------------------------------------


def test_integers_with_nulls_across_pages_are_nullable_integers() -> None:
    pages = [
        items_to_arrow([item("a", count=3), item("b")]),
        items_to_arrow([item("c"), item("d", count=-7), item("e", count=2**40)]),
    ]
    gdf = arrow_to_geodataframe(concat_tables(pages))
    assert str(gdf["count"].dtype) == "Int64"
    assert gdf["count"].tolist()[0] == 3
    assert gdf["count"].tolist()[3:] == [-7, 2**40]
    assert gdf["count"].isna().tolist() == [False, True, True, False, False]
    narrow = pa.table({"id": ["x", "y"], "n": pa.array([None, 5], pa.int8())})
    assert arrow_to_geodataframe(narrow)["n"].tolist()[1] == 5
    assert str(arrow_to_geodataframe(narrow)["n"].dtype) == "Int64"


def test_write_geoparquet_is_valid_geoparquet(tmp_path: Path) -> None:
    geopandas = pytest.importorskip("geopandas")
    items = all_real_items()
    path = write_geoparquet(items_to_arrow(items), tmp_path / "items.parquet")
    metadata = pq.read_schema(path).metadata
    geo = json.loads(metadata[b"geo"])
    assert geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    assert json.loads(metadata[b"stac-geoparquet"]) == {"version": "1.0.0"}
    frame = geopandas.read_parquet(path)
    assert len(frame) == len(items)
    assert frame.crs.to_epsg() == 4326
    assert [p.name for p in tmp_path.iterdir()] == ["items.parquet"]


def test_stac_geoparquet_reads_what_we_write(tmp_path: Path) -> None:
    sga = pytest.importorskip("stac_geoparquet.arrow")
    items = load(DATA / "earth-search-v1__multi__1.json")
    path = write_geoparquet(items_to_arrow(items), tmp_path / "items.parquet")
    theirs = list(sga.stac_table_to_items(pq.read_table(path)))
    assert [normalise_item(i) for i in theirs] == [normalise_item(i) for i in items]


def test_writer_streams_heterogeneous_batches_into_one_dataset(tmp_path: Path) -> None:
    items = all_real_items()
    pages = [items[start : start + 37] for start in range(0, len(items), 37)]
    out = tmp_path / "out"
    parts = write_dataset(out, (items_to_arrow(page) for page in pages), rows_per_part=100)
    assert len(parts) >= len(items) // 100
    assert all(p.name.startswith("part-") for p in parts)
    on_disk = sorted(p.name for p in out.iterdir() if p.suffix == ".parquet")
    assert on_disk == sorted(p.name for p in parts)
    for part in parts:
        assert b"geo" in pq.read_schema(part).metadata
        assert pq.read_metadata(part).num_rows <= 100
    table = read_arrow(out)
    assert table.num_rows == len(items)
    back = sorted(table_to_items(table), key=lambda i: (i.get("collection") or "", i["id"]))
    want = sorted(items, key=lambda i: (i.get("collection") or "", i["id"]))
    assert [normalise_item(i) for i in back] == [normalise_item(i) for i in want]
    gdf = read_geoparquet(out)
    assert len(gdf) == len(items)
    assert gdf.crs.to_epsg() == 4326


def test_writer_handles_empty_structs_and_nothing_written(tmp_path: Path) -> None:
    bare = item("a", empty={})
    bare["assets"] = {}
    write_dataset(tmp_path / "one", [items_to_arrow([bare])], rows_per_part=10)
    back = table_to_items(read_arrow(tmp_path / "one"))
    assert back[0]["assets"] == {}
    assert back[0]["properties"]["empty"] == {}
    assert write_dataset(tmp_path / "none", [items_to_arrow([])], rows_per_part=10) == []
    assert len(read_geoparquet(tmp_path / "none")) == 0


# --- property-based ------------------------------------------------------------------------

_KEYS = st.sampled_from(["gsd", "eo:cloud_cover", "id", "type", "x.y", "", "datetime_like"])
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(_KEYS | st.text(max_size=3), _VALUES, max_size=5), max_size=6))
def test_random_heterogeneous_properties_never_fail_nor_lose_a_key(
    properties: list[dict[str, Any]],
) -> None:
    items = [{"type": "Feature", "id": str(n), "properties": p} for n, p in enumerate(properties)]
    table = items_to_arrow(items)
    assert table.num_rows == len(items)
    back = table_to_items(table)
    for source, result in zip(items, back, strict=True):
        assert normalise(result["properties"]) == normalise(source["properties"])
    concatenated = concat_tables([items_to_arrow([i]) for i in items])
    for source, result in zip(items, table_to_items(concatenated), strict=True):
        assert normalise(result["properties"]) == normalise(source["properties"])
    with tempfile.TemporaryDirectory() as directory:
        write_dataset(Path(directory), (items_to_arrow([one]) for one in items), rows_per_part=2)
        from_disk = sorted(table_to_items(read_arrow(directory)), key=lambda i: int(i["id"]))
    for source, result in zip(items, from_disk, strict=True):
        assert normalise(result["properties"]) == normalise(source["properties"])
