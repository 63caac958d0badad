"""Results: Arrow tables of items -> one table, or a GeoDataFrame.

The engine converts page by page (:func:`~stacfetch._formats.arrow.items_to_arrow`) while
fetching goes
on, so tables of one run may disagree: a property missing from one page, an int in one page and
a float in the next, a new asset key. :func:`unify_fields` / :func:`conform` reconcile them
(missing -> null, ints + floats -> float64, structs -> the union of their fields, anything
incompatible -> JSON text), and :func:`concat_tables` and :mod:`stacfetch._formats.geoparquet` are
built on them. This is the only module that imports geopandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stacfetch._formats.arrow import (
    ENCODING,
    ITEM,
    JSON,
    KEY,
    LEVEL,
    TIMESTAMP,
    geometry_field,
    items_to_arrow,
    json_array,
    to_timestamps,
)
from stacfetch._formats.python import format_timestamps, is_json, to_python

if TYPE_CHECKING:
    import geopandas

__all__ = [
    "SCATTERED",
    "arrow_to_geodataframe",
    "concat_tables",
    "conform",
    "conform_table",
    "is_list_type",
    "items_to_arrow",
    "json_field",
    "minimal_schema",
    "select_rows",
    "unify_fields",
    "unify_schemas",
]

_MINIMAL = (
    pa.field("type", pa.string()),
    pa.field("stac_version", pa.string()),
    pa.field("id", pa.string()),
    None,  # geometry, built lazily (it needs pyproj)
    pa.field("collection", pa.string()),
)
_BBOX_2D = ("xmin", "ymin", "xmax", "ymax")
_BBOX_3D = ("xmin", "ymin", "zmin", "xmax", "ymax", "zmax")
BBOX_TYPE = pa.struct([(name, pa.float64()) for name in _BBOX_2D])
"""The ``bbox`` type of 2D boxes (3D boxes add ``zmin``/``zmax``, in :data:`_BBOX_3D` order)."""


def minimal_schema() -> pa.Schema:
    """The columns every result has, even an empty one (``type stac_version id geometry
    collection``).

    Example:
        >>> minimal_schema().names
        ['type', 'stac_version', 'id', 'geometry', 'collection']
    """
    return pa.schema([field or geometry_field() for field in _MINIMAL])


def base_schema() -> pa.Schema:
    """The columns (and types) of an empty result: what every STAC item has.

    Example:
        >>> base_schema().names
        ['type', 'stac_version', 'stac_extensions', 'id', 'geometry', 'bbox', 'collection', \
'datetime']
    """
    return pa.schema(
        [
            pa.field("type", pa.string()),
            pa.field("stac_version", pa.string()),
            pa.field("stac_extensions", pa.list_(pa.string())),
            pa.field("id", pa.string()),
            geometry_field(),
            pa.field("bbox", BBOX_TYPE),
            pa.field("collection", pa.string()),
            pa.field("datetime", TIMESTAMP),
        ]
    )


# --- schema algebra ------------------------------------------------------------------------


def json_field(field: pa.Field) -> pa.Field:
    return pa.field(field.name, pa.string(), metadata={**(field.metadata or {}), ENCODING: JSON})


def is_list_type(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def _is_binary(kind: pa.DataType) -> bool:
    return bool(pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


def _is_int(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind))


def unify_fields(a: pa.Field, b: pa.Field) -> pa.Field:
    """The field that can hold the values of both ``a`` and ``b`` (same column, two tables).

    Example:
        >>> unify_fields(pa.field("x", pa.int64()), pa.field("x", pa.float64())).type
        DataType(double)
        >>> f = unify_fields(pa.field("x", pa.int64()), pa.field("x", pa.string()))
        >>> f.type, f.metadata
        (DataType(string), {b'stacfetch:encoding': b'json'})
    """
    meta = {**(b.metadata or {}), **(a.metadata or {})}
    ta, tb = a.type, b.type
    if is_json(a) or is_json(b):
        return json_field(a.with_metadata(meta))
    if ta.equals(tb, check_metadata=True):
        return a.with_metadata(meta) if meta else a
    if pa.types.is_null(ta) or pa.types.is_null(tb):
        kind = tb if pa.types.is_null(ta) else ta
    elif _is_int(ta) and _is_int(tb):
        kind = pa.int64()
    elif (_is_int(ta) or pa.types.is_floating(ta)) and (_is_int(tb) or pa.types.is_floating(tb)):
        kind = pa.float64()
    elif pa.types.is_timestamp(ta) and pa.types.is_timestamp(tb):
        kind = TIMESTAMP
    elif {_text(ta), _text(tb)} <= {"string", "timestamp"}:
        kind = pa.string()
    elif _is_binary(ta) and _is_binary(tb):
        kind = pa.binary()
    elif pa.types.is_struct(ta) and pa.types.is_struct(tb):
        children = {child.name: child for child in ta}
        for child in tb:
            own = children.get(child.name)
            children[child.name] = child if own is None else unify_fields(own, child)
        kind = pa.struct(list(children.values()))
    elif is_list_type(ta) and is_list_type(tb):
        value = unify_fields(ta.value_field, tb.value_field)
        kind = pa.list_(value.with_name("item"))
    else:
        kind = None
    if kind is None:
        return json_field(a.with_metadata(meta))
    return pa.field(a.name, kind, metadata=meta or None)


def _text(kind: pa.DataType) -> str:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    return "timestamp" if pa.types.is_timestamp(kind) else "other"


def conform(array: pa.Array | pa.ChunkedArray, src: pa.Field, dst: pa.Field) -> pa.Array:
    """Convert ``array`` (of field ``src``) to the type of ``dst`` (from :func:`unify_fields`).

    Example:
        >>> conform(pa.array([1, 2]), pa.field("x", pa.int64()), pa.field("x", pa.float64()))
        <pyarrow.lib.DoubleArray object at ...>
        [
          1,
          2
        ]
    """
    if isinstance(array, pa.ChunkedArray):
        chunks = [conform(chunk, src, dst) for chunk in array.chunks]
        return pa.chunked_array(chunks, type=dst.type)
    have, want = src.type, dst.type
    if is_json(dst):
        if is_json(src):
            return array
        return json_array(to_python(array, src))
    if have.equals(want, check_metadata=True):
        return array
    if pa.types.is_null(have):
        return pa.nulls(len(array), want)
    if pa.types.is_struct(want):
        children = []
        for child in want:
            index = have.get_field_index(child.name)
            if index < 0:
                children.append(pa.nulls(len(array), child.type))
            else:
                children.append(conform(array.field(index), have.field(index), child))
        mask = array.is_null() if array.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(want), mask=mask)
    if is_list_type(want):
        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy()
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        values = conform(pc.list_flatten(array), have.value_field, want.value_field)
        mask = array.is_null() if array.null_count else None
        return pa.ListArray.from_arrays(offsets, values, type=want, mask=mask)
    if pa.types.is_timestamp(want):
        return to_timestamps(array)
    if pa.types.is_string(want) and pa.types.is_timestamp(have):
        return format_timestamps(array)
    return array.cast(want)


def _item_level(schemas: Sequence[pa.Schema]) -> set[str]:
    return {f.name for schema in schemas for f in schema if (f.metadata or {}).get(LEVEL) == ITEM}


def _placed(field: pa.Field, item_level: set[str]) -> pa.Field:
    """``field``, renamed ``properties.<name>`` if its name is a top-level key elsewhere.

    A property ``description`` in one page and a top-level ``description`` in another are two
    columns, as :func:`~stacfetch._formats.arrow.items_to_arrow` makes them within one page.
    """
    meta = field.metadata or {}
    if field.name not in item_level or meta.get(LEVEL) == ITEM:
        return field
    name = meta.get(KEY, field.name.encode())
    return pa.field(f"properties.{field.name}", field.type, metadata={**meta, KEY: name})


def unify_schemas(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """One schema for tables of these schemas: columns in first-seen order, fields unified.

    Example:
        >>> unify_schemas([pa.schema([("a", pa.int64())]), pa.schema([("b", pa.string())])])
        a: int64
        b: string
    """
    item_level = _item_level(schemas)
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for field in schema:
            field = _placed(field, item_level)
            own = fields.get(field.name)
            fields[field.name] = field if own is None else unify_fields(own, field)
    if "bbox" in fields and pa.types.is_struct(fields["bbox"].type):
        fields["bbox"] = _canonical_bbox(fields["bbox"])
    metadata = next((schema.metadata for schema in schemas if schema.metadata), None)
    return pa.schema(list(fields.values()), metadata=metadata)


def _canonical_bbox(field: pa.Field) -> pa.Field:
    """A bbox struct of doubles in the order stac-geoparquet writes (2D or 3D)."""
    names = {child.name for child in field.type}
    if not names <= set(_BBOX_3D) or not set(_BBOX_2D) <= names:
        return field
    order = _BBOX_3D if names & {"zmin", "zmax"} else _BBOX_2D
    return field.with_type(pa.struct([(name, pa.float64()) for name in order]))


def _bbox_filled(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A bbox struct whose children hold NaN where they would hold null (see
    :func:`stacfetch._formats.arrow.bbox_column`)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    children = [pc.fill_null(array.field(i), np.nan) for i in range(kind.num_fields)]
    mask = array.is_null() if array.null_count else None
    return pa.StructArray.from_arrays(children, fields=list(kind), mask=mask)


def _same_fields(have: pa.Schema, want: pa.Schema) -> bool:
    """The same fields (types and metadata included), perhaps in another order."""
    if (
        len(have) != len(want)
        or set(have.names) != set(want.names)
        or len(set(want.names)) != len(want)
    ):
        return False
    return all(
        have.field(name).equals(want.field(name), check_metadata=True) for name in want.names
    )


def conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema`` (from :func:`unify_schemas`): missing columns are
    null, types converted.

    Example:
        >>> schema = pa.schema([("a", pa.float64()), ("b", pa.string())])
        >>> conform_table(pa.table({"a": [1]}), schema)
        pyarrow.Table
        a: double
        b: string
        ----
        a: [[1]]
        b: [[null]]
    """
    if table.schema.equals(schema, check_metadata=True):
        return table
    if _same_fields(table.schema, schema):  # pages whose items came in another order
        return table.select(schema.names).replace_schema_metadata(schema.metadata)
    item_level = _item_level([schema])
    sources = {_placed(f, item_level).name: (i, f) for i, f in enumerate(table.schema)}
    columns = []
    for field in schema:
        if field.name not in sources:
            if field.name == "assets" and pa.types.is_struct(field.type):
                # no assets column: every item had ``assets: {}`` (stac-geoparquet drops it)
                empty = pa.field("assets", pa.struct([]))
                column: Any = conform(pa.array([{}] * table.num_rows, empty.type), empty, field)
            else:
                column = pa.nulls(table.num_rows, field.type)
        else:
            index, source = sources[field.name]
            column = conform(table.column(index), source, field)
        if field.name == "bbox" and pa.types.is_struct(field.type) and field.type.num_fields:
            column = _bbox_filled(column)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def concat_tables(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables converted separately, unifying their schemas (see the module doc).

    Example:
        >>> a = pa.table({"id": ["a"], "gsd": [10]})
        >>> b = pa.table({"id": ["b"], "gsd": [0.5], "extra": ["x"]})
        >>> concat_tables([a, b]).to_pylist()
        [{'id': 'a', 'gsd': 10.0, 'extra': None}, {'id': 'b', 'gsd': 0.5, 'extra': 'x'}]
    """
    tables = [table for table in tables if table.num_columns]
    if not tables:
        return base_schema().empty_table()
    schema = unify_schemas([table.schema for table in tables])
    return pa.concat_tables([conform_table(table, schema) for table in tables])


SCATTERED = 8
"""Runs of kept rows beyond which :func:`select_rows` copies them (``take``) instead of
slicing: each slice becomes a chunk of every column."""


def select_rows(table: pa.Table, positions: Sequence[int]) -> pa.Table:
    """The rows of ``table`` at ``positions`` (ascending, no repeats), in that order.

    Rows that run on are zero-copy slices of ``table``; only where they are scattered (more
    than :data:`SCATTERED` runs) are they copied. A page whose first items were kept from an
    earlier page (a split's first child repeats its parent's first page) keeps the rest as one
    slice: copying 900 rows of nested assets took 30-50 ms of the event loop in a run.

    Example:
        >>> t = pa.table({"id": ["a", "b", "c", "d"]})
        >>> select_rows(t, [1, 2, 3]).column("id").to_pylist()
        ['b', 'c', 'd']
        >>> select_rows(t, [0, 2]).column("id").to_pylist()
        ['a', 'c']
    """
    runs: list[tuple[int, int]] = []
    for at in positions:
        if runs and runs[-1][1] == at:
            runs[-1] = (runs[-1][0], at + 1)
        else:
            runs.append((at, at + 1))
    if not runs:
        return table.slice(0, 0)
    if runs == [(0, table.num_rows)]:
        return table
    if len(runs) > SCATTERED:
        return table.take(pa.array(positions, type=pa.int64()))
    return pa.concat_tables([table.slice(start, end - start) for start, end in runs])


# --- GeoDataFrame --------------------------------------------------------------------------


def arrow_to_geodataframe(table: pa.Table) -> geopandas.GeoDataFrame:
    """A GeoDataFrame (EPSG:4326) of a table of items.

    Datetimes are tz-aware (UTC); nested columns (``assets``, ``links``, lists) keep their
    Arrow storage (``pd.ArrowDtype``: no copy, and ``gdf.assets.iloc[0]`` is still a dict);
    JSON-text columns are parsed back to Python values; integer columns with nulls are
    pandas nullable integers (``Int64``), never floats. An empty table gives an empty
    GeoDataFrame with the base columns of :func:`base_schema` and their types.

    Example:
        >>> gdf = arrow_to_geodataframe(items_to_arrow([]))
        >>> list(gdf.columns), gdf.crs.to_epsg()
        (['type', 'stac_version', 'stac_extensions', 'id', 'geometry', 'bbox', 'collection', \
'datetime'], 4326)
    """
    import geopandas
    import pandas as pd

    if table.num_rows == 0:
        table = conform_table(table, unify_schemas([base_schema(), table.schema]))
    for field in minimal_schema():
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    position = table.column_names.index("geometry")
    column = table.column("geometry")
    if isinstance(column.type, pa.ExtensionType):
        column = pa.chunked_array(
            [chunk.storage for chunk in column.chunks], column.type.storage_type
        )
    wkb = column.to_numpy(zero_copy_only=False)
    rest = table.remove_column(position)

    def dtype(kind: pa.DataType) -> Any:
        return pd.ArrowDtype(kind) if pa.types.is_nested(kind) else None

    frame = rest.to_pandas(types_mapper=dtype)
    for field in rest.schema:
        if pa.types.is_integer(field.type) and rest.column(field.name).null_count:
            values = rest.column(field.name).cast(pa.int64())  # (no Python int per value)
            nullable = {pa.int64(): pd.Int64Dtype()}
            frame[field.name] = values.to_pandas(types_mapper=nullable.get).array
    for field in rest.schema:
        if is_json(field):
            frame[field.name] = pd.Series(
                to_python(rest.column(field.name), field), index=frame.index, dtype=object
            )
    geometry = geopandas.GeoSeries(_shapes(wkb), index=frame.index, crs="EPSG:4326")
    frame.insert(position, "geometry", geometry)
    return geopandas.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


def _shapes(wkb: Any) -> Any:
    """Shapely geometries of WKB; rings GEOS rejects (unclosed) are closed, not raised."""
    import shapely

    try:
        return shapely.from_wkb(wkb)
    except shapely.errors.GEOSException:
        try:
            return shapely.from_wkb(wkb, on_invalid="fix")  # shapely >= 2.1
        except ValueError:
            return shapely.from_wkb(wkb, on_invalid="ignore")
