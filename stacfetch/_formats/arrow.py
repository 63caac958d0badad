"""STAC items -> Arrow, in the stac-geoparquet layout, and the schema algebra of that layout.

The layout (what stac-geoparquet 0.8 writes, so stac-geoparquet, rustac, DuckDB and lonboard
read our output): one row per item; columns ``type``, ``stac_version``, ``stac_extensions``,
``id``, ``geometry`` (ISO WKB tagged ``geoarrow.wkb``, EPSG:4326), ``bbox`` (struct
``xmin ymin xmax ymax``, plus ``zmin zmax`` when 3D), ``collection``, ``links``, ``assets``,
then every property as its own column; the standard datetime properties as
``timestamp[us, tz=UTC]``; ``proj:geometry`` (item or asset level) as WKB.

What stac-geoparquet cannot represent is kept, and marked in *field* metadata so that
:mod:`stacfetch._formats.sources` can give the items back unchanged:

- a value that has no single Arrow type (a property that is a string in one item and a number
  or an object in another) becomes a JSON-text column: ``stacfetch:encoding = json``;
- a non-standard top-level key (``description`` next to ``properties``) keeps its column name
  and is marked ``stacfetch:level = item``;
- a property whose name collides with a top-level column is stored as ``properties.<name>``
  with ``stacfetch:key = <name>``;
- a geometry that is not valid GeoJSON is kept as JSON in ``geometry:invalid``.

Conversion is column-wise: one pass of list comprehensions to gather each column's values,
then one ``pa.array`` call per column (C++ type inference); a column that fails falls back,
recursively, to per-field conversion, and only the values without a common type become JSON.
"""

from __future__ import annotations

import contextlib
import functools
import json
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .wkb import geojson_to_wkb

__all__ = [
    "bbox_column",
    "conversion_pool",
    "geometry_column",
    "has_asset_proj_geometry",
    "items_to_arrow",
    "to_timestamps",
]


TIMESTAMP = pa.timestamp("us", tz="UTC")
"""The type of every datetime column (and what naive or offset datetimes are converted to)."""

TIMESTAMP_COLUMNS = frozenset(
    {"datetime", "start_datetime", "end_datetime", "created", "updated", "expires"}
    | {"published", "unpublished"}
)
"""Property names converted to :data:`TIMESTAMP` (the same set as stac-geoparquet)."""

CORE_COLUMNS = (
    "type",
    "stac_version",
    "stac_extensions",
    "id",
    "geometry",
    "bbox",
    "collection",
    "links",
    "assets",
)
"""Top-level item keys that are top-level columns; every other column is a property."""

ENCODING = b"stacfetch:encoding"
"""Field metadata key: ``json`` means the values are JSON text of the original values."""
JSON = b"json"
KEY = b"stacfetch:key"
"""Field metadata key: the original key of a renamed column."""
LEVEL = b"stacfetch:level"
"""Field metadata key: ``item`` for a column that holds a non-core top-level key."""
ITEM = b"item"
JSON_META = {ENCODING: JSON}
INVALID_GEOMETRY = "geometry:invalid"

_ERRORS = (pa.ArrowException, OverflowError, TypeError, ValueError)
_BBOX_2D = ("xmin", "ymin", "xmax", "ymax")
_BBOX_3D = ("xmin", "ymin", "zmin", "xmax", "ymax", "zmax")
_STRING_COLUMNS = ("type", "stac_version", "id", "collection")
ALWAYS_COLUMNS = ("type", "stac_version", "id", "geometry", "bbox", "collection")


@functools.cache
def wgs84_projjson() -> dict[str, Any]:
    """PROJJSON of EPSG:4326, as stac-geoparquet writes it (pyproj comes with geopandas).

    Example:
        >>> wgs84_projjson()["id"]
        {'authority': 'EPSG', 'code': 4326}
    """
    from pyproj import CRS

    projjson: dict[str, Any] = CRS.from_epsg(4326).to_json_dict()
    return projjson


def geometry_field() -> pa.Field:
    """The ``geometry`` field: WKB tagged ``geoarrow.wkb`` with the EPSG:4326 CRS.

    Example:
        >>> geometry_field().metadata[b"ARROW:extension:name"]
        b'geoarrow.wkb'
    """
    meta = {
        b"ARROW:extension:name": b"geoarrow.wkb",
        b"ARROW:extension:metadata": orjson.dumps({"crs": wgs84_projjson()}),
    }
    return pa.field("geometry", pa.binary(), metadata=meta)


@functools.cache
def conversion_pool() -> pa.MemoryPool | None:
    """The memory pool ``pa.array`` converts Python values with: jemalloc where pyarrow has it,
    else pyarrow's default (None).

    Converting the benchmark's 50,000 items (``items_to_arrow``, one fresh process) took 7.6 s
    and 699 MB with pyarrow 26's default pool (mimalloc) and 5.5 s and 561 MB with jemalloc;
    pyarrow's JSON reader is the other way round (a 1000-item page: 101 ms with mimalloc, 122
    ms with jemalloc), so it keeps the default.

    Example:
        >>> conversion_pool() is None or conversion_pool().backend_name == "jemalloc"
        True
    """
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without it (Windows wheels)
        return None


Meta = dict[bytes, bytes] | None
"""Field metadata (``None`` for none)."""


def items_to_arrow(items: Sequence[dict[str, Any]]) -> pa.Table:
    """Convert STAC item dicts to an Arrow table in the stac-geoparquet layout.

    Items may differ in every way real APIs make them differ (missing or extra properties,
    ``datetime: null`` range items, ints and floats, no geometry, strings where others have
    numbers); no key of any item is dropped. See the module docstring for the layout.

    Example:
        >>> item = {"type": "Feature", "stac_version": "1.0.0", "id": "a",
        ...         "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
        ...         "bbox": [1.0, 2.0, 1.0, 2.0], "collection": "c",
        ...         "properties": {"datetime": "2024-01-01 00:00:00+00:00", "gsd": 10},
        ...         "links": [], "assets": {}}
        >>> table = items_to_arrow([item])
        >>> table.schema.field("datetime").type, table.column("gsd").to_pylist()
        (TimestampType(timestamp[us, tz=UTC]), [10])
    """
    items = items if isinstance(items, list) else list(items)
    top_keys = dict.fromkeys(key for item in items for key in item)
    props = [item.get("properties") or {} for item in items]
    for item, prop in zip(items, props, strict=True):
        if not isinstance(prop, dict):
            raise ValueError(f"item {item.get('id')!r}: properties is not an object")

    fields: list[pa.Field] = []
    arrays: list[pa.Array] = []
    meta: Meta

    def add(field: pa.Field, array: pa.Array) -> None:
        fields.append(field)
        arrays.append(array)

    for name in CORE_COLUMNS:
        if name not in top_keys and name not in ALWAYS_COLUMNS:
            continue
        values = [item.get(name) for item in items]
        if name == "geometry":
            wkb, invalid = geometry_column(values)
            add(geometry_field(), wkb)
            if invalid is not None:
                meta = {**JSON_META, LEVEL: ITEM, KEY: b"geometry"}
                add(pa.field(INVALID_GEOMETRY, pa.string(), metadata=meta), invalid)
        elif name == "bbox":
            array, meta = bbox_column(values)
            add(pa.field(name, array.type, metadata=meta), array)
        elif name == "assets":
            array, meta = _column(values)
            if has_asset_proj_geometry(array.type):
                array, meta = _column(_assets_wkb(values))
            add(pa.field(name, array.type, metadata=meta), array)
        else:
            array, meta = _column(values)
            if pa.types.is_null(array.type):
                array = array.cast(
                    pa.list_(pa.string()) if name == "stac_extensions" else pa.string()
                )
            add(pa.field(name, array.type, metadata=meta), array)

    for name in top_keys:
        if name in CORE_COLUMNS or name == "properties":
            continue
        array, meta = _column([item.get(name) for item in items])
        add(pa.field(name, array.type, metadata={**(meta or {}), LEVEL: ITEM}), array)

    taken = {field.name for field in fields}
    for name, array, meta in _property_columns(props):
        if name in TIMESTAMP_COLUMNS:
            array = to_timestamps(array)
        column = name
        if name in taken:
            column = f"properties.{name}"
            meta = {**(meta or {}), KEY: name.encode()}
        add(pa.field(column, array.type, metadata=meta), array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# --- generic columns -----------------------------------------------------------------------


def _column(values: list[Any]) -> tuple[pa.Array, dict[bytes, bytes] | None]:
    """One Arrow array for ``values``, and the field metadata it needs (JSON or none)."""
    try:
        return pa.array(values, memory_pool=conversion_pool()), None
    except _ERRORS:
        return _column_slow(values)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def _column_slow(values: list[Any]) -> tuple[pa.Array, dict[bytes, bytes] | None]:
    kinds = {_kind(value) for value in values if value is not None}
    nulls = [value is None for value in values]
    mask = pa.array(nulls) if any(nulls) else None
    if kinds == {"dict"}:
        keys = dict.fromkeys(key for value in values if value is not None for key in value)
        children, fields = [], []
        for key in keys:
            child, meta = _column([None if value is None else value.get(key) for value in values])
            children.append(child)
            fields.append(pa.field(key, child.type, metadata=meta))
        return pa.StructArray.from_arrays(children, fields=fields, mask=mask), None
    if kinds == {"list"}:
        flat = [element for value in values if value is not None for element in value]
        lengths = [0] + [0 if value is None else len(value) for value in values]
        offsets = pa.array(np.cumsum(lengths, dtype=np.int32))
        child, meta = _column(flat)
        list_type = pa.list_(pa.field("item", child.type, metadata=meta))
        return pa.ListArray.from_arrays(offsets, child, type=list_type, mask=mask), None
    return json_array(values), JSON_META


def dumps(value: Any) -> str:
    """JSON text of a value (orjson; the standard library for ints beyond 64 bits).

    Example:
        >>> dumps({"a": [1, 2**70]})
        '{"a": [1, 1180591620717411303424]}'
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str)


def json_array(values: list[Any]) -> pa.Array:
    """A string array of the JSON text of each value (``None`` stays null).

    Example:
        >>> json_array(["x", 1, None]).to_pylist()
        ['"x"', '1', None]
    """
    texts = [None if value is None else dumps(value) for value in values]
    return pa.array(texts, pa.string(), memory_pool=conversion_pool())


def _property_columns(
    props: list[dict[str, Any]],
) -> list[tuple[str, pa.Array, dict[bytes, bytes] | None]]:
    """The property columns: one ``pa.array`` over all property dicts, per key on failure."""
    wkb: pa.Array | None = None
    if any("proj:geometry" in prop for prop in props):
        geoms = [prop.get("proj:geometry") for prop in props]
        wkb, invalid = geometry_column(geoms)
        if invalid is not None:
            wkb = None  # not all GeoJSON: keep the values as they are
        else:
            props = [_without(prop, "proj:geometry") for prop in props]
    out: list[tuple[str, pa.Array, dict[bytes, bytes] | None]] = []
    try:
        struct_array = pa.array(props, memory_pool=conversion_pool())
        for index, field in enumerate(struct_array.type):
            out.append((field.name, struct_array.field(index), None))
    except _ERRORS:
        keys = dict.fromkeys(key for prop in props for key in prop)
        for key in keys:
            array, meta = _column([prop.get(key) for prop in props])
            out.append((key, array, meta))
    if wkb is not None:
        out.append(("proj:geometry", wkb, None))
    return out


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key} if key in mapping else mapping


def has_asset_proj_geometry(kind: pa.DataType) -> bool:
    """Whether an ``assets`` type has an asset with ``proj:geometry`` (stored as WKB).

    Example:
        >>> has_asset_proj_geometry(pa.struct([("a", pa.struct([("href", pa.string())]))]))
        False
    """
    if not pa.types.is_struct(kind):
        return False
    return any(
        pa.types.is_struct(asset.type) and asset.type.get_field_index("proj:geometry") >= 0
        for asset in kind
    )


def _assets_wkb(assets: list[Any]) -> list[Any]:
    """Assets with ``proj:geometry`` converted to WKB, as stac-geoparquet stores them."""
    out: list[Any] = []
    for by_key in assets:
        if not isinstance(by_key, dict):
            out.append(by_key)
            continue
        converted = {}
        for key, asset in by_key.items():
            if isinstance(asset, dict) and "proj:geometry" in asset:
                with contextlib.suppress(KeyError, TypeError, ValueError, struct.error):
                    asset = {**asset, "proj:geometry": geojson_to_wkb(asset["proj:geometry"])}
            converted[key] = asset
        out.append(converted)
    return out


# --- timestamps ----------------------------------------------------------------------------

_FRACTION = r"(\.\d{6})\d+"
_DATE_ONLY = r"^(\d{4}-\d{2}-\d{2})$"
_NAIVE = r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$"


def to_timestamps(array: pa.Array) -> pa.Array:
    """Parse a string (or null) array to :data:`TIMESTAMP`; unparseable arrays are returned as is.

    Accepts RFC 3339 and the forms real APIs send: a space for ``T``, ``+00:00`` or other
    offsets (converted to UTC), ``.000Z``, lower-case ``t``/``z``, nanoseconds (truncated),
    a missing offset (taken as UTC) and a bare date.

    Example:
        >>> to_timestamps(pa.array(["2025-03-11 04:42:31.719576+00:00"])).type
        TimestampType(timestamp[us, tz=UTC])
    """
    if pa.types.is_null(array.type) or pa.types.is_timestamp(array.type):
        return array.cast(TIMESTAMP)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return array
    try:
        return array.cast(TIMESTAMP)
    except pa.ArrowException:
        pass
    fixed = pc.utf8_upper(array)
    fixed = pc.replace_substring_regex(fixed, _FRACTION, r"\1")
    fixed = pc.replace_substring_regex(fixed, _DATE_ONLY, r"\1T00:00:00Z")
    fixed = pc.replace_substring_regex(fixed, _NAIVE, r"\1Z")
    try:
        return fixed.cast(TIMESTAMP)
    except pa.ArrowException:
        return array


# --- bbox ----------------------------------------------------------------------------------


def bbox_column(values: list[Any]) -> tuple[pa.Array, dict[bytes, bytes] | None]:
    """bbox lists -> struct of 4 (or 6) doubles; anything else is kept by :func:`_column`.

    A 2D box among 3D ones has NaN (not null) ``zmin``/``zmax``, and a missing box NaN
    coordinates under its null: the children never hold nulls, which stac-geoparquet's
    reader needs (it reads them with ``to_numpy``); NaN z reads back as a 2D box.

    Example:
        >>> bbox_column([[0, 1, 2, 3], None])[0].field("xmax").to_pylist()
        [2.0, nan]
    """
    lengths = {len(value) if isinstance(value, list) else -1 for value in values if value}
    nulls = [not value for value in values]
    if not lengths <= {4, 6}:
        return _column(values)
    width = 6 if 6 in lengths else 4
    filler = [np.nan] * width
    try:
        flat = [x for value in values for x in (_widen(value, width) if value else filler)]
        coords = np.asarray(flat, dtype=np.float64).reshape(-1, width)
    except (TypeError, ValueError):
        return _column(values)
    names = _BBOX_3D if width == 6 else _BBOX_2D
    children = [pa.array(coords[:, index]) for index in range(width)]
    mask = pa.array(nulls) if any(nulls) else None
    return pa.StructArray.from_arrays(children, names=list(names), mask=mask), None


def _widen(box: list[Any], width: int) -> list[Any]:
    if len(box) == width:
        return box
    return [box[0], box[1], np.nan, box[2], box[3], np.nan]


# --- geometry (GeoJSON -> ISO WKB, in Python: faster than GEOS and never rejects a ring) ---


def geometry_column(values: list[Any]) -> tuple[pa.Array, pa.Array | None]:
    """WKB for each GeoJSON geometry, and (if any is not GeoJSON) their JSON text.

    Example:
        >>> wkb, invalid = geometry_column([{"type": "Point", "coordinates": [1, 2]}, None])
        >>> len(wkb[0].as_py()), wkb[1].as_py(), invalid
        (21, None, None)
    """
    wkb: list[bytes | None] = []
    bad = False
    for value in values:
        if value is None:
            wkb.append(None)
            continue
        try:
            wkb.append(geojson_to_wkb(value))
        except (KeyError, TypeError, ValueError, IndexError, struct.error):
            wkb.append(None)
            bad = True
    invalid = None
    if bad:
        invalid = json_array(
            [
                None if value is None or w is not None else value
                for value, w in zip(values, wkb, strict=True)
            ]
        )
    return pa.array(wkb, pa.binary(), memory_pool=conversion_pool()), invalid
