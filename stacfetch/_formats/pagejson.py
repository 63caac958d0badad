"""A search page's bytes -> the Arrow table of :func:`~stacfetch._formats.arrow.items_to_arrow`,
without a Python dict per item.

Building Python objects is what a page's decode costs (orjson builds ~13 KB of dicts, lists and
floats per item, ~0.2 s for a 1000-item page, and ``pa.array`` walks them again). Here simdjson
parses the page (a few ms, no Python objects), only the geometries and the few values the
caller needs per item (id, collection, bbox, datetimes) become Python, and pyarrow's JSON reader
converts everything else straight from text, in C++.

Faithful or nothing: the result must be the table ``items_to_arrow`` gives for the same page,
value for value and type for type. pyarrow's reader, given a schema, rejects every conflict
``pa.array`` would reject or resolve differently (a string where a number was, a float in an int
column, a new field, a duplicate key) and only widens ints to doubles, as ``pa.array`` does; its
own inference matches ``pa.array`` except that it reads ISO date strings as timestamps, so the
schema of the first items is given to it and any timestamp it still infers is read again as text.
Whatever this path does not handle the same way (JSON-text columns, ``proj:geometry``, renamed
properties, invalid geometry, duplicate keys, a page that does not parse) makes
:func:`page_to_arrow` return None, and the caller decodes the page with orjson as before.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from .arrow import (
    ALWAYS_COLUMNS,
    CORE_COLUMNS,
    INVALID_GEOMETRY,
    ITEM,
    LEVEL,
    TIMESTAMP_COLUMNS,
    bbox_column,
    geometry_column,
    geometry_field,
    has_asset_proj_geometry,
    to_timestamps,
)

__all__ = ["FastPage", "page_to_arrow"]

try:  # an optional speed-up: without it every page takes the orjson path
    import simdjson
except ImportError:  # pragma: no cover - a declared dependency
    simdjson = None  # type: ignore[assignment]

_SAMPLE = 8
"""Items whose schema (as ``pa.array`` infers it) is given to pyarrow's reader."""
_STUB_KEYS = ("id", "collection", "bbox")
_STUB_PROPS = ("datetime", "start_datetime", "end_datetime")
_local = threading.local()


def _parser() -> Any:
    """This thread's simdjson parser. A new one per page allocated (and page-faulted) buffers
    the size of the page: 11 ms of a 12 MB page's 15 ms parse. Nothing here keeps a document
    past its function; were one still alive, simdjson would raise RuntimeError on the next
    parse, and that page would take the orjson path."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


class _NotHere(Exception):
    """This page is not for the fast path."""


@dataclasses.dataclass(frozen=True)
class FastPage:
    """A page decoded by :func:`page_to_arrow`: the page without ``features`` (``head``), per
    feature a small dict with its ``id``, ``collection``, ``bbox``, ``geometry`` and datetime
    ``properties`` (``items``), and the features' table."""

    head: dict[str, Any]
    items: list[dict[str, Any]]
    table: pa.Table


def _py(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def _keys(obj: Any) -> list[str]:
    keys = list(obj.keys())
    if len(set(keys)) != len(keys):
        raise _NotHere("duplicate keys")  # orjson keeps the last one, simdjson the first
    return keys


def page_to_arrow(content: bytes, collection: str | None) -> FastPage | None:
    """Decode a page body without Python dicts per item; None where the orjson path must.

    ``collection`` fills in features without one, as in the orjson path.

    Example:
        >>> body = (b'{"features": [{"type": "Feature", "id": "a", "geometry": null,'
        ...         b' "properties": {"datetime": "2024-01-01T00:00:00Z"}}], "links": []}')
        >>> page = page_to_arrow(body, "c1")
        >>> page.head, page.items[0]["collection"], page.table.column("id").to_pylist()
        ({'links': []}, 'c1', ['a'])
    """
    if simdjson is None or b"proj:geometry" in content:
        return None  # (proj:geometry becomes WKB: the orjson path, decided before any work)
    try:
        return _decode(content, collection)
    except (_NotHere, ValueError, TypeError, KeyError, RuntimeError, pa.ArrowException):
        return None


def _decode(content: bytes, collection: str | None) -> FastPage | None:
    doc = _parser().parse(content)
    if not isinstance(doc, simdjson.Object):
        return None
    keys = _keys(doc)
    features = doc.get("features")
    if not isinstance(features, simdjson.Array) or len(features) == 0:
        return None
    head = {key: _py(doc[key]) for key in keys if key != "features"}
    fill = b',"collection":' + orjson.dumps(collection) if collection else b""
    lines: list[bytes] = []
    geometries: list[Any] = []
    items: list[dict[str, Any]] = []
    sample: list[dict[str, Any]] = []
    for feature in features:
        if not isinstance(feature, simdjson.Object):
            raise _NotHere("a feature is not an object")
        fkeys = _keys(feature)
        parts: list[bytes] = []
        text: bytes
        small: dict[str, Any] = {}
        for key in fkeys:
            value = feature[key]
            if key == "geometry":
                small["geometry"] = _py(value)
                continue
            if key == "collection" and collection and not value:
                continue  # replaced below
            if key in _STUB_KEYS:
                small[key] = _py(value)
            elif key == "properties" and isinstance(value, simdjson.Object):
                small["properties"] = {k: _py(value[k]) for k in _STUB_PROPS if k in value}
            elif key == "properties":
                small["properties"] = _py(value)
            if isinstance(value, (simdjson.Object, simdjson.Array)):
                mini = value.mini
                text = mini.encode() if isinstance(mini, str) else mini
            else:
                text = orjson.dumps(value)
            parts.append(orjson.dumps(key) + b":" + text)
        line = b"{" + b",".join(parts)
        if collection and not small.get("collection"):
            small["collection"] = collection
            line += fill if parts else fill[1:]
        lines.append(line + b"}")
        geometries.append(small.get("geometry"))
        items.append(small)
        if len(sample) < _SAMPLE:
            whole = feature.as_dict()
            whole.pop("geometry", None)
            if collection and not whole.get("collection"):
                whole["collection"] = collection
            sample.append(whole)
        del feature
    del features, doc
    raw = _read(b"\n".join(lines), pa.array(sample).type)
    return FastPage(head, items, _assemble(raw, geometries))


def _read(data: bytes, sample_type: pa.DataType) -> pa.Table:
    """The features (without geometry) as a table, typed as ``pa.array`` would type them."""
    options = pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1)
    schema = pa.schema(list(sample_type)) if pa.types.is_struct(sample_type) else pa.schema([])
    try:
        table = pa_json.read_json(
            io.BytesIO(data),
            read_options=options,
            parse_options=pa_json.ParseOptions(explicit_schema=schema),
        )
    except pa.ArrowInvalid:
        # a type the later items widen (ints, then a float): let the reader infer it all, as
        # pa.array would over the whole page
        table = pa_json.read_json(io.BytesIO(data), read_options=options)
    if _has_timestamp(pa.struct(list(table.schema))):
        schema = pa.schema([(f.name, _as_text(f.type)) for f in table.schema])
        table = pa_json.read_json(
            io.BytesIO(data),
            read_options=options,
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="error"
            ),
        )
    return table


def _has_timestamp(kind: pa.DataType) -> bool:
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return True
    return any(_has_timestamp(kind.field(i).type) for i in range(kind.num_fields))


def _as_text(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every inferred timestamp read as a string instead."""
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return pa.string()
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_as_text(f.type)) for f in kind])
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_as_text(kind.value_type)))
    return kind


def _assemble(raw: pa.Table, geometries: list[Any]) -> pa.Table:
    """The columns of ``items_to_arrow`` from the features' raw columns."""
    fields: list[pa.Field] = []
    arrays: list[pa.Array] = []
    present = set(raw.column_names)

    def column(name: str) -> pa.Array:
        return raw.column(name).combine_chunks()

    for name in CORE_COLUMNS:
        if name not in present and name not in ALWAYS_COLUMNS:
            continue
        if name == "geometry":
            wkb, invalid = geometry_column(geometries)
            if invalid is not None:
                raise _NotHere(INVALID_GEOMETRY)
            fields.append(geometry_field())
            arrays.append(wkb)
            continue
        if name == "bbox":
            values = column(name).to_pylist() if name in present else [None] * raw.num_rows
            array, meta = bbox_column(values)
            if meta:
                raise _NotHere("bbox")
        elif name not in present:
            array = pa.nulls(raw.num_rows)
        else:
            array = column(name)
        if name == "assets" and has_asset_proj_geometry(array.type):
            raise _NotHere("proj:geometry")
        if pa.types.is_null(array.type) and name != "bbox":
            array = array.cast(pa.list_(pa.string()) if name == "stac_extensions" else pa.string())
        fields.append(pa.field(name, array.type))
        arrays.append(array)
    for name in raw.column_names:
        if name in CORE_COLUMNS or name == "properties":
            continue
        array = column(name)
        fields.append(pa.field(name, array.type, metadata={LEVEL: ITEM}))
        arrays.append(array)
    taken = {field.name for field in fields}
    if "properties" in present:
        props = column("properties")
        if not pa.types.is_struct(props.type):
            if not pa.types.is_null(props.type):
                raise _NotHere("properties")
        else:
            for field, array in zip(props.type, props.flatten(), strict=True):
                if field.name == "proj:geometry" or field.name in taken:
                    raise _NotHere(field.name)
                if field.name in TIMESTAMP_COLUMNS:
                    array = to_timestamps(array)
                fields.append(pa.field(field.name, array.type))
                arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
