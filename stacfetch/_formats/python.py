"""Arrow back to Python: the JSON-compatible values of the original items, from columns of the
layout :mod:`.arrow` writes (the way back for ``items()``, ``read_items`` and file mode)."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .arrow import ENCODING, JSON, TIMESTAMP
from .wkb import wkb_to_geojson

__all__ = ["format_timestamps", "is_json", "to_python"]


_WKB_FIELDS = frozenset({"geometry", "proj:geometry"})


def is_json(field: pa.Field) -> bool:
    """Whether a field holds JSON text (see :data:`ENCODING`).

    Example:
        >>> from stacfetch._formats.arrow import JSON_META
        >>> is_json(pa.field("tag", pa.string(), metadata=JSON_META))
        True
    """
    return bool(field.metadata) and field.metadata.get(ENCODING) == JSON


def to_python(array: pa.Array | pa.ChunkedArray, field: pa.Field) -> list[Any]:
    """The JSON-compatible Python values of an Arrow column of this layout.

    Struct rows become dicts without their null entries (a null and a missing key are the same
    in this layout); timestamps become RFC 3339 strings; WKB ``geometry`` / ``proj:geometry``
    becomes GeoJSON; JSON-text fields are parsed.

    Example:
        >>> ts = pa.array(["2024-01-01T00:00:00Z"]).cast(TIMESTAMP)
        >>> to_python(ts, pa.field("datetime", ts.type))
        ['2024-01-01T00:00:00Z']
        >>> s = pa.array([{"a": 1, "b": None}])
        >>> to_python(s, pa.field("x", s.type))
        [{'a': 1}]
    """
    if isinstance(array, pa.ChunkedArray):
        return [value for chunk in array.chunks for value in to_python(chunk, field)]
    if isinstance(array.type, pa.ExtensionType):  # e.g. geoarrow.wkb registered by a reader
        array = array.storage
        field = field.with_type(array.type)
    kind = field.type
    if is_json(field):
        return [None if text is None else orjson.loads(text) for text in array.to_pylist()]
    if pa.types.is_struct(kind):
        return _struct_to_python(array, kind)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        values = to_python(pc.list_flatten(array), kind.value_field)
        out: list[Any] = []
        start = 0
        for length in pc.list_value_length(array).to_pylist():
            if length is None:
                out.append(None)
            else:
                out.append(values[start : start + length])
                start += length
        return out
    if pa.types.is_timestamp(kind):
        text: list[Any] = format_timestamps(array).to_pylist()
        return text
    if pa.types.is_dictionary(kind):
        return to_python(array.dictionary_decode(), pa.field(field.name, kind.value_type))
    if pa.types.is_map(kind):
        return [None if pairs is None else dict(pairs) for pairs in array.to_pylist()]
    if (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)) and (field.name in _WKB_FIELDS):
        return [None if wkb is None else wkb_to_geojson(wkb) for wkb in array.to_pylist()]
    if pa.types.is_date(kind) or pa.types.is_time(kind):
        return [None if value is None else value.isoformat() for value in array.to_pylist()]
    plain: list[Any] = array.to_pylist()
    return plain


def _struct_to_python(array: pa.Array, kind: pa.StructType) -> list[Any]:
    names = [child.name for child in kind]
    columns = [to_python(array.field(index), child) for index, child in enumerate(kind)]
    valid = array.is_valid().to_pylist() if array.null_count else [True] * len(array)
    out: list[Any] = []
    for row, ok in enumerate(valid):
        if not ok:
            out.append(None)
            continue
        out.append(
            {
                name: column[row]
                for name, column in zip(names, columns, strict=True)
                if column[row] is not None
            }
        )
    return out


def format_timestamps(array: pa.Array) -> pa.Array:
    """RFC 3339 strings (UTC, ``Z``; microseconds only when not zero) of a timestamp array.

    Example:
        >>> ts = pa.array(["2024-01-01T00:00:00.5Z"]).cast(TIMESTAMP)
        >>> format_timestamps(ts).to_pylist()
        ['2024-01-01T00:00:00.500000Z']
    """
    if array.type.tz is None:
        array = pc.assume_timezone(array, "UTC")
    array = pc.cast(array, TIMESTAMP, safe=False)
    text = pc.strftime(array, format="%Y-%m-%dT%H:%M:%SZ")
    return pc.replace_substring(text, ".000000Z", "Z")
