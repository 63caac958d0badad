"""Write Arrow tables as a dataset of GeoParquet parts the way ``to_parquet`` does (each part
conformed to the one before, then one schema for all), and build a GeoDataFrame from items."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import geopandas
import pyarrow as pa

from stacfetch._formats.arrow import items_to_arrow
from stacfetch._formats.geoparquet import unify_parts, write_part
from stacfetch._formats.tables import arrow_to_geodataframe, concat_tables


def write_dataset(directory: Path, tables: Iterable[pa.Table], rows_per_part: int) -> list[Path]:
    """Parts of at most ``rows_per_part`` rows (a table is never cut), named ``part-NNNNN``."""
    directory.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    held: list[pa.Table] = []
    schema: pa.Schema | None = None

    def flush() -> None:
        nonlocal schema
        name = directory / f"part-{len(parts):05d}.parquet"
        schema = write_part(concat_tables(held), name, schema)
        parts.append(name)
        held.clear()

    for table in tables:
        if table.num_rows == 0:
            continue
        if held and sum(t.num_rows for t in held) + table.num_rows > rows_per_part:
            flush()
        held.append(table)
    if held:
        flush()
    unify_parts(directory, None if parts else "part-empty.parquet")
    return parts


def items_frame(items: Sequence[dict[str, Any]]) -> geopandas.GeoDataFrame:
    """The GeoDataFrame ``ingest()`` returns for these items."""
    return arrow_to_geodataframe(items_to_arrow(items))
