"""GeoParquet on disk: atomic single files, a streaming writer of parts, and reading back.

Files follow stac-geoparquet 0.8 (GeoParquet 1.1 ``geo`` metadata with the WGS 84 PROJJSON,
a ``stac-geoparquet`` version key, zstd). A directory of parts written at different times may
hold different schemas; :func:`read_arrow` unifies them with :mod:`stacfetch._formats.tables`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .arrow import json_array, wgs84_projjson
from .python import to_python
from .tables import (
    arrow_to_geodataframe,
    concat_tables,
    conform_table,
    is_list_type,
    json_field,
    unify_schemas,
)

if TYPE_CHECKING:
    import geopandas

__all__ = [
    "parquet_files",
    "read_arrow",
    "read_geoparquet",
    "read_items",
    "unify_parts",
    "write_geoparquet",
    "write_part",
]

GEOPARQUET_VERSION = "1.1.0"
"""The GeoParquet version written (as stac-geoparquet 0.8 does)."""
STAC_GEOPARQUET_VERSION = "1.0.0"
"""The stac-geoparquet metadata version written."""


# --- GeoParquet ----------------------------------------------------------------------------


def _geoparquet_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    """The ``geo`` and ``stac-geoparquet`` file metadata for a table of this schema."""
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": [],
        "crs": wgs84_projjson(),
        "edges": "planar",
    }
    if "bbox" in schema.names and pa.types.is_struct(schema.field("bbox").type):
        column["covering"] = {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}
    # ``proj:geometry`` (WKB) is not declared a geometry column: rustac then turns a null into
    # an empty polygon, or panics on a part where it is all null (every part of a dataset
    # where some collection lacks it); undeclared, rustac and stac-geoparquet still decode it
    columns: dict[str, Any] = {"geometry": column}
    geo = {"version": GEOPARQUET_VERSION, "columns": columns, "primary_column": "geometry"}
    return {
        b"geo": json.dumps(geo).encode(),
        b"stac-geoparquet": json.dumps({"version": STAC_GEOPARQUET_VERSION}).encode(),
    }


def _has_empty_struct(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return kind.num_fields == 0 or any(_has_empty_struct(child.type) for child in kind)
    return is_list_type(kind) and _has_empty_struct(kind.value_type)


def _storable(array: pa.Array, field: pa.Field) -> tuple[pa.Array, pa.Field]:
    """``array`` with every struct without fields (``{}`` in every row) as JSON text, and only
    that leaf: ``assets.zarr.xarray:open_kwargs.chunks`` becomes a JSON-text leaf, ``assets``
    stays a struct (so rustac, DuckDB and stac-geoparquet read every asset)."""
    kind = field.type
    if not _has_empty_struct(kind):
        return array, field
    if pa.types.is_struct(kind) and kind.num_fields == 0:
        return json_array(to_python(array, field)), json_field(field)
    mask = array.is_null() if array.null_count else None
    if pa.types.is_struct(kind):
        children, fields = [], []
        for index, child in enumerate(kind):
            values, stored = _storable(array.field(index), child)
            children.append(values)
            fields.append(stored)
        struct_array = pa.StructArray.from_arrays(children, fields=fields, mask=mask)
        return struct_array, field.with_type(struct_array.type)
    values, stored = _storable(pc.list_flatten(array), kind.value_field)
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy()
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    list_type = pa.list_(stored.with_name("item"))
    list_array = pa.ListArray.from_arrays(offsets, values, type=list_type, mask=mask)
    return list_array, field.with_type(list_type)


def _parquet_ready(table: pa.Table) -> pa.Table:
    """``table`` as Parquet can store it, with GeoParquet metadata.

    Parquet cannot store a struct without fields: an all-empty ``assets`` column is dropped
    (as stac-geoparquet does; it reads back as ``{}``); anywhere else, only the empty struct
    itself becomes a JSON-text leaf (``"{}"``, marked ``stacfetch:encoding = json``), never the
    column around it.
    """
    for index in reversed(range(table.num_columns)):
        field = table.schema.field(index)
        if not _has_empty_struct(field.type):
            continue
        if field.name == "assets" and field.type.num_fields == 0:
            table = table.remove_column(index)
        else:
            column = table.column(index)
            chunk = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            values, stored = _storable(chunk, field)
            table = table.set_column(index, stored, values)
    return table.replace_schema_metadata(_geoparquet_metadata(table.schema))


def write_geoparquet(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write one GeoParquet file atomically (a temporary name, then a rename).

    Example:
        >>> import tempfile
        >>> from stacfetch._formats.arrow import items_to_arrow
        >>> out = Path(tempfile.mkdtemp()) / "items.parquet"
        >>> write_geoparquet(items_to_arrow([]), out).name
        'items.parquet'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        pq.write_table(_parquet_ready(table), temp, compression="zstd")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def write_part(table: pa.Table, path: str | os.PathLike[str], like: pa.Schema | None) -> pa.Schema:
    """Write one part of a dataset atomically, conformed to ``like`` (the schema of the parts
    written before it) widened to hold ``table``; returns the schema written.

    Conforming as it goes means the parts of a run mostly share one schema already, so that
    :func:`unify_parts` at the end rewrites few (often none).

    Example:
        >>> import tempfile
        >>> from stacfetch._formats.arrow import items_to_arrow
        >>> out = Path(tempfile.mkdtemp())
        >>> a = write_part(pa.table({"id": ["a"], "gsd": [10]}), out / "a.parquet", None)
        >>> write_part(pa.table({"id": ["b"], "x": ["y"]}), out / "b.parquet", a).names
        ['id', 'gsd', 'x']
    """
    ready = _parquet_ready(table)
    if like is not None and not ready.schema.equals(like, check_metadata=True):
        ready = conform_table(ready, unify_schemas([like, ready.schema]))
    write_geoparquet(ready, path)
    return ready.schema


COMMON_METADATA = "_common_metadata"
"""The dataset's schema (no rows), written by :func:`unify_parts`."""


def unify_parts(directory: str | os.PathLike[str], empty_part: str | None = None) -> pa.Schema:
    """Give every part of a dataset directory the same schema (the union of theirs).

    Parts whose schema differs are rewritten (one at a time, atomically) conformed to the
    union; ``_common_metadata`` gets the schema. Without any part, ``empty_part`` (a file name)
    is written: no rows, the columns of :func:`stacfetch._formats.tables.base_schema`. Idempotent.
    Afterwards pyarrow, geopandas, dask-geopandas, DuckDB, rustac and stac-geoparquet read
    the directory whole, with every column.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> _ = write_geoparquet(pa.table({"id": ["a"], "gsd": [10]}), out / "a.parquet")
        >>> _ = write_geoparquet(pa.table({"id": ["b"], "x": ["y"]}), out / "b.parquet")
        >>> unify_parts(out).names, pq.read_schema(out / "a.parquet").names
        (['id', 'gsd', 'x'], ['id', 'gsd', 'x'])
    """
    from .tables import base_schema

    path = Path(directory)
    files = parquet_files(path)
    if not files and empty_part is not None:
        write_geoparquet(base_schema().empty_table(), path / empty_part)
        files = parquet_files(path)
    schemas = [pq.read_schema(file) for file in files]
    if not schemas:
        return base_schema()
    target = unify_schemas(schemas)
    target = target.with_metadata(_geoparquet_metadata(target))
    for file, schema in zip(files, schemas, strict=True):
        if not schema.equals(target, check_metadata=True):
            table = conform_table(pq.read_table(file), target)
            temp = file.with_name(f".{file.name}.tmp")
            try:
                pq.write_table(table, temp, compression="zstd")
                os.replace(temp, file)
            finally:
                temp.unlink(missing_ok=True)
    temp = path / f".{COMMON_METADATA}.tmp"
    pq.write_metadata(target, temp)
    os.replace(temp, path / COMMON_METADATA)
    return target


def parquet_files(path: Path) -> list[Path]:
    """The part files of a dataset directory (or ``[path]`` for a file).

    Example:
        >>> parquet_files(Path("items.parquet"))
        [PosixPath('items.parquet')]
    """
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.suffix == ".parquet" and not p.name.startswith((".", "_"))
        )
    return [path]


def read_arrow(path: str | os.PathLike[str]) -> pa.Table:
    """Read a GeoParquet file, or a directory of part files, as one table (schemas unified).

    Example:
        >>> import tempfile
        >>> read_arrow(tempfile.mkdtemp()).column_names
        ['type', 'stac_version', 'stac_extensions', 'id', 'geometry', 'bbox', 'collection', \
'datetime']
    """
    files = parquet_files(Path(path))
    tables = [pq.read_table(file) for file in files]
    if len(tables) == 1:
        return tables[0]
    return concat_tables(tables)


def read_items(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The STAC items of a GeoParquet file or of a ``to_parquet`` directory, as dicts.

    The way back of :meth:`stacfetch.Ingestor.to_parquet`: every item as the API sent it, key
    by key, up to the layout's normalisations: timestamps come back as RFC 3339 UTC
    (``2024-01-01T00:00:00Z``, microseconds only when not zero), a ``null`` value and a
    missing key are the same (nulls come back absent, except ``geometry`` and
    ``properties.datetime``), and ``assets`` is ``{}`` when an item had none. Reads any
    stac-geoparquet file too (stac-geoparquet's or rustac's).

    Example:
        >>> import tempfile
        >>> from stacfetch._formats.arrow import items_to_arrow
        >>> item = {"type": "Feature", "stac_version": "1.0.0", "id": "a", "collection": "c",
        ...         "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
        ...         "bbox": [1.0, 2.0, 1.0, 2.0], "links": [], "assets": {},
        ...         "properties": {"datetime": "2024-01-01T00:00:00+00:00", "proj:epsg": 32660}}
        >>> path = write_geoparquet(items_to_arrow([item]), Path(tempfile.mkdtemp()) / "a.parquet")
        >>> back = read_items(path)[0]
        >>> back["properties"], back["bbox"]
        ({'datetime': '2024-01-01T00:00:00Z', 'proj:epsg': 32660}, [1.0, 2.0, 1.0, 2.0])
    """
    from .sources import table_to_items

    items: list[dict[str, Any]] = []
    for file in parquet_files(Path(path)):
        with pq.ParquetFile(file) as source:
            for batch in source.iter_batches(batch_size=10_000):
                items.extend(table_to_items(batch))
    return items


def read_geoparquet(path: str | os.PathLike[str]) -> geopandas.GeoDataFrame:
    """Read a GeoParquet file or a directory of part files as one GeoDataFrame.

    Example:
        >>> import tempfile
        >>> len(read_geoparquet(tempfile.mkdtemp()))
        0
    """
    return arrow_to_geodataframe(read_arrow(path))
