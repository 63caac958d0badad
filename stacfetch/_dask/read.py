"""Read a ``to_parquet`` dataset back lazily: a dask-geopandas GeoDataFrame, a partition a part."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._model.errors import ConfigurationError
from .gates import distributed_module

if TYPE_CHECKING:
    import dask_geopandas
    import geopandas as gpd
    import pyarrow as pa

__all__ = ["read_dask_geodataframe"]


def _read_part(file: str, schema: pa.Schema, like: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    import pyarrow.parquet as pq

    from .._formats.tables import arrow_to_geodataframe, conform_table

    present = set(pq.read_schema(file).names)
    table = pq.read_table(file, columns=[n for n in schema.names if n in present])
    frame = arrow_to_geodataframe(conform_table(table, schema))
    frame = frame[list(like.columns)]
    for name, dtype in like.dtypes.items():
        if name != like.geometry.name and frame[name].dtype != dtype:
            frame[name] = frame[name].astype(dtype)
    return frame


def read_dask_geodataframe(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> dask_geopandas.GeoDataFrame:
    """Read a ``to_parquet`` dataset lazily: a dask-geopandas GeoDataFrame, one partition a part.

    Parts written by different chunks may disagree on types (a property missing in one part,
    an int in one and a float in another); they are unified from the files' footers, as
    :func:`stacfetch.read_geoparquet` does eagerly. ``columns`` limits what is read
    (``geometry`` is always kept).

    Example::

        ddf = read_dask_geodataframe("s2.parquet", columns=["id", "datetime"])
        ddf.npartitions, len(ddf)   # -> (42, 812345)
    """
    distributed_module()
    import dask_geopandas  # noqa: F401  (registers GeoDataFrame collections with dask)
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .._formats.geoparquet import parquet_files
    from .._formats.tables import arrow_to_geodataframe, conform_table, unify_schemas

    files = [str(f) for f in parquet_files(Path(path))]
    if not files:
        raise FileNotFoundError(f"no GeoParquet part in {os.fspath(path)!r}")
    schema = unify_schemas([pq.read_schema(f) for f in files])
    if columns is not None:
        wanted = [*columns, *(["geometry"] if "geometry" not in columns else [])]
        unknown = [c for c in wanted if c not in schema.names]
        if unknown:
            raise ConfigurationError(f"columns: not in the dataset: {unknown}")
        schema = pa.schema([schema.field(c) for c in wanted], metadata=schema.metadata)
    # one all-null row: every column takes the dtype a part with nulls in it gets
    nulls = pa.table({f.name: pa.nulls(1, f.type) for f in schema})
    meta = arrow_to_geodataframe(conform_table(nulls, schema)).iloc[:0]
    if columns is not None:
        meta = meta[[c for c in meta.columns if c in schema.names]]
    dd: Any = importlib.import_module("dask.dataframe")
    return dd.from_map(_read_part, files, schema=schema, like=meta, meta=meta)
