"""A search page's bytes -> the Arrow table of :func:`~stacfetch._formats.arrow.items_to_arrow`,
without a Python dict per item.

Building Python objects is what a page's decode costs (orjson builds ~13 KB of dicts, lists and
floats per item, ~0.2 s for a 1000-item page, and ``pa.array`` walks them again). Here pyarrow's
JSON reader reads the whole page as one row, in C++; only the geometries (taken out of the text
first: their coordinates nest to different depths) and the few values the caller needs per item
(id, collection, bbox, datetimes) become Python. The page's head (links, counts) is read apart by
simdjson (:func:`page_head`), so that the caller may ask for the next page before this one is
converted.

Faithful or nothing: the result must be the table ``items_to_arrow`` gives for the same page,
value for value and type for type. pyarrow's reader infers what ``pa.array`` infers (a float
after ints widens them to doubles, fields in order of first appearance, null and empty-list
types) and rejects what it rejects (a string where a number was, a duplicate key), except that
it reads ISO date strings as timestamps (such a page is read again, as text) and integers beyond
64 bits as doubles (such a page is declined). Whatever this path does not handle the same way
(JSON-text columns, ``proj:geometry``, renamed properties, invalid geometry, a page that does
not parse) makes :func:`page_to_arrow` return None, and the caller decodes the page with orjson.
"""

from __future__ import annotations

import dataclasses
import io
import re
import threading
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
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

__all__ = ["FastPage", "PageHead", "page_head", "page_to_arrow", "without_geometries"]

try:  # an optional speed-up: without it every page takes the orjson path
    import simdjson
except ImportError:  # pragma: no cover - a declared dependency
    simdjson = None  # type: ignore[assignment]

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


@dataclasses.dataclass(frozen=True)
class PageHead:
    """A page without its features (``head``: links, counts) and how many of its features are
    objects (``count``; None when it has no ``features`` list)."""

    head: dict[str, Any]
    count: int | None


def page_head(content: bytes) -> PageHead | None:
    """A page's head and feature count, without building the features (a few ms for a 12 MB
    page), so that the next page can be asked for while this one decodes. None where this
    cannot tell what orjson would read: no simdjson, not a JSON object, duplicate keys.

    Example:
        >>> page_head(b'{"features": [{"id": "a"}, 3], "links": []}')
        PageHead(head={'links': []}, count=1)
    """
    if simdjson is None:
        return None
    try:
        doc = _parser().parse(content)
        if not isinstance(doc, simdjson.Object):
            return None
        keys = _keys(doc)
        head = {key: _py(doc[key]) for key in keys if key != "features"}
        features = doc.get("features")
        count = None
        if isinstance(features, simdjson.Array):
            count = sum(isinstance(f, simdjson.Object) for f in features)
        del features, doc
    except (_NotHere, ValueError, TypeError, KeyError, RuntimeError):
        return None
    return PageHead(head, count)


def page_to_arrow(content: bytes, collection: str | None, *, head: bool = True) -> FastPage | None:
    """Decode a page body without Python dicts per item; None where the orjson path must.

    ``collection`` fills in features without one, as in the orjson path. ``head=False``: the
    caller read the page's head already (:func:`page_head`), and :attr:`FastPage.head` is
    left empty.

    Example:
        >>> body = (b'{"features": [{"type": "Feature", "id": "a", "geometry": null,'
        ...         b' "properties": {"datetime": "2024-01-01T00:00:00Z"}}], "links": []}')
        >>> page = page_to_arrow(body, "c1")
        >>> page.head, page.items[0]["collection"], page.table.column("id").to_pylist()
        ({'links': []}, 'c1', ['a'])
    """
    if simdjson is None:
        return None
    top: dict[str, Any] = {}
    if head:
        peeked = page_head(content)
        if peeked is None or not peeked.count:
            return None
        top = peeked.head
    try:
        return _decode(content, collection, top)
    except (_NotHere, ValueError, TypeError, KeyError, RuntimeError, pa.ArrowException):
        return None


_PREFIX = 1 << 17
"""Bytes of a page looked at for ``proj:geometry`` before any work (its first items)."""


def _decode(content: bytes, collection: str | None, head: dict[str, Any]) -> FastPage:
    if content.find(b"proj:geometry", 0, _PREFIX) >= 0:
        raise _NotHere("proj:geometry")  # becomes WKB: the orjson path (later ones: see below)
    data, taken = without_geometries(content)
    raw, geometries = _features(_read(data), taken)
    _check_numbers(raw, data)
    raw = _fill_collection(raw, collection)
    return FastPage(head, _stubs(raw, geometries), _assemble(raw, geometries))


_GEOMETRY_KEY = b'"geometry"'
_GEOMETRY_VALUE = re.compile(rb"[ \t\n\r]*:[ \t\n\r]*(\{[^{}]*\}|null)")
"""What follows a ``"geometry"`` key: a GeoJSON geometry without nested objects, or null."""


def without_geometries(content: bytes) -> tuple[bytes, list[Any]]:
    """The page with the k-th geometry value replaced by the number k, and the geometries.

    A geometry is the value of a ``"geometry"`` key that holds an object without nested
    objects (every GeoJSON geometry but a GeometryCollection), or null. Keys named like that
    elsewhere in a feature, or a geometry this does not find, are caught afterwards: the
    features' ``geometry`` column must then read 0, 1, 2... in order (see :func:`_features`).
    pyarrow's JSON reader cannot read coordinates nested to different depths in one column,
    so this runs before it (the benchmarks' decoding floor runs it too).

    Example:
        >>> without_geometries(b'[{"geometry": {"type": "Point", "coordinates": [1, 2]}},'
        ...                    b' {"geometry": null}]')
        (b'[{"geometry": 0}, {"geometry": 1}]', [{'type': 'Point', 'coordinates': [1, 2]}, None])
    """
    view = memoryview(content)
    parts: list[Any] = []
    geometries: list[Any] = []
    start = 0
    match = _GEOMETRY_VALUE.match
    at = content.find(_GEOMETRY_KEY)
    while at >= 0:
        found = match(content, at + len(_GEOMETRY_KEY))
        if found is not None:
            value_start, value_end = found.span(1)
            parts.append(view[start:value_start])
            parts.append(b"%d" % len(geometries))
            geometries.append(orjson.loads(view[value_start:value_end]))
            start = at = value_end
        else:
            at += len(_GEOMETRY_KEY)
        at = content.find(_GEOMETRY_KEY, at)
    parts.append(view[start:])
    return b"".join(parts), geometries


def _features(page: pa.Table, geometries: list[Any]) -> tuple[pa.Table, list[Any]]:
    """The page's features as a table of their keys (``geometry`` left out), and each
    feature's geometry (None where it has none).

    Every geometry taken out must be the top-level ``geometry`` of a feature, in order: the
    features' ``geometry`` column reads 0, 1, 2... where a feature has one (null where it has
    none). A number anywhere else, or a geometry left in place, fails this check or the read.
    """
    if page.num_rows != 1 or "features" not in page.column_names:
        raise _NotHere("not one page")
    column = _whole(page.column("features"))
    if not pa.types.is_list(column.type) or not pa.types.is_struct(column.type.value_type):
        raise _NotHere("features are not objects")
    features = column.flatten()
    count = len(features)
    if not count or features.null_count:
        raise _NotHere("features")
    kind = features.type
    at = kind.get_field_index("geometry")
    if at < 0:
        if geometries:
            raise _NotHere("geometry")
        return pa.Table.from_arrays(features.flatten(), names=kind.names), [None] * count
    if not pa.types.is_integer(kind.field(at).type):
        raise _NotHere("geometry")
    markers = features.field(at)
    present = markers.drop_null().to_numpy()
    if not np.array_equal(present, np.arange(len(geometries))):
        raise _NotHere("geometry")
    if len(present) == count:
        ordered = geometries
    else:
        ordered = [None if m is None else geometries[m] for m in markers.to_pylist()]
    names = [f.name for i, f in enumerate(kind) if i != at]
    arrays = [features.field(i) for i in range(kind.num_fields) if i != at]
    return pa.Table.from_arrays(arrays, names=names), ordered


def _fill_collection(raw: pa.Table, collection: str | None) -> pa.Table:
    """Fill in ``collection`` where a feature has none (missing, null or empty), as the orjson
    path does."""
    if not collection:
        return raw
    if "collection" not in raw.column_names:
        return raw.append_column("collection", pa.array([collection] * raw.num_rows, pa.string()))
    at = raw.column_names.index("collection")
    values = _whole(raw.column(at))
    if pa.types.is_null(values.type):
        filled = pa.array([collection] * raw.num_rows, pa.string())
    elif pa.types.is_string(values.type):
        values = pc.fill_null(values, "")
        filled = pc.if_else(pc.equal(values, ""), pa.scalar(collection), values)
    else:
        raise _NotHere("collection")
    return raw.set_column(at, "collection", filled)


def _stubs(raw: pa.Table, geometries: list[Any]) -> list[dict[str, Any]]:
    """Per feature: ``id``, ``collection``, ``bbox``, ``geometry`` and the datetime
    ``properties`` (null ones left out: read as missing)."""
    count = raw.num_rows
    present = set(raw.column_names)

    def values(name: str) -> list[Any]:
        return raw.column(name).to_pylist() if name in present else [None] * count

    columns = {name: values(name) for name in _STUB_KEYS}
    columns["geometry"] = geometries
    props: list[Any] = [None] * count
    if "properties" in present:
        array = _whole(raw.column("properties"))
        if pa.types.is_struct(array.type):
            valid = array.is_valid().to_pylist()
            found = [n for n in _STUB_PROPS if array.type.get_field_index(n) >= 0]
            if any(not _text_or_null(array.type.field(n).type) for n in found):
                raise _NotHere("datetimes that are not text")  # kept as they are: orjson path
            lists = [array.field(n).to_pylist() for n in found]
            props = [
                {n: v[i] for n, v in zip(found, lists, strict=True) if v[i] is not None}
                if ok
                else None
                for i, ok in enumerate(valid)
            ]
    stubs: list[dict[str, Any]] = []
    for i in range(count):
        stub = {name: column[i] for name, column in columns.items() if column[i] is not None}
        if props[i] is not None:
            stub["properties"] = props[i]
        stubs.append(stub)
    return stubs


def _text_or_null(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_null(kind))


def _read(data: bytes) -> pa.Table:
    """The page as a one-row table; its features typed as ``pa.array`` types them.

    pyarrow's reader infers what ``pa.array`` infers (ints widened to doubles by a float,
    fields in order of first appearance, null and empty-list types), but for ISO date strings,
    which it reads as timestamps: a page where it found one is read again, as text.
    """
    options = pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1)
    table = pa_json.read_json(io.BytesIO(data), read_options=options)
    if "features" in table.column_names and _has_timestamp(table.schema.field("features").type):
        schema = pa.schema([(f.name, _as_text(f.type)) for f in table.schema])
        table = pa_json.read_json(
            io.BytesIO(data),
            read_options=options,
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="error"
            ),
        )
    return table


_EXACT = 2.0**53
_LONG_INTEGER = re.compile(rb"(?<![0-9.eE+-])-?[0-9]{16,}(?![0-9.eE])")


def _check_numbers(raw: pa.Table, data: bytes) -> None:
    """Integers in a column of doubles beyond 2**53 (and any beyond 64 bits): the reader makes
    them doubles, ``pa.array`` refuses them (they would lose digits; the orjson path keeps the
    column as JSON text). Only a page with a double that large is read for such an integer
    (a slow scan, for a rare page)."""
    doubles: list[pa.Array] = []
    for column in raw.columns:
        for chunk in column.chunks:
            _doubles(chunk, doubles)
    if not doubles:
        return
    span = pc.min_max(pa.concat_arrays(doubles) if len(doubles) > 1 else doubles[0]).as_py()
    if max(abs(span["min"] or 0.0), abs(span["max"] or 0.0)) < _EXACT:
        return
    for found in _LONG_INTEGER.finditer(data):
        if abs(int(found.group())) > 2**53:
            raise _NotHere("an integer a double cannot hold")


def _doubles(array: pa.Array, into: list[pa.Array]) -> None:
    """The arrays of doubles in ``array``, at any depth."""
    kind = array.type
    if pa.types.is_float64(kind):
        into.append(array)
    elif pa.types.is_floating(kind):
        into.append(array.cast(pa.float64()))
    elif pa.types.is_struct(kind):
        for i in range(kind.num_fields):
            _doubles(array.field(i), into)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        _doubles(array.flatten(), into)


def _whole(column: pa.ChunkedArray) -> pa.Array:
    """A column as one array (without a copy when it is one already)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


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
        return _whole(raw.column(name))

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
