"""One-look summaries of a result: a GeoParquet output or a GeoDataFrame (printed by commands)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["describe_frame", "describe_output"]


def describe_output(path: str | os.PathLike[str], fetched: int | None = None) -> str:
    """One line about a GeoParquet output (a file or a directory of parts): items per collection.

    ``fetched`` is how many items this run wrote; when the output holds more (a resumed run),
    both numbers are given.

    Example:
        >>> import tempfile, geopandas
        >>> from shapely.geometry import Point
        >>> out = tempfile.mkdtemp()
        >>> geopandas.GeoDataFrame({"collection": ["a", "a", "b"]}, geometry=[Point(0, 0)] * 3,
        ...                        crs=4326).to_parquet(f"{out}/part-0.parquet")
        >>> describe_output(out, 3).replace(out, "OUT")
        'wrote 3 items to OUT (a 2, b 1)'
    """
    from pathlib import Path

    import pyarrow.parquet as pq

    root = Path(path)
    files = [root] if root.is_file() else sorted(root.glob("*.parquet"))
    counts: dict[str, int] = {}
    total = 0
    for file in files:
        meta = pq.ParquetFile(file)
        total += meta.metadata.num_rows
        if "collection" in meta.schema_arrow.names:
            column = pq.read_table(file, columns=["collection"]).column("collection")
            for name in column.to_pylist():
                counts[str(name)] = counts.get(str(name), 0) + 1
    per = ", ".join(f"{name} {n:,}" for name, n in counts.items())
    detail = f" ({per})" if per else ""
    if fetched is None or fetched == total:
        return f"wrote {total:,} items to {path}{detail}"
    return f"wrote {fetched:,} new items to {path}; it holds {total:,} items{detail}"


def describe_frame(frame: Any) -> str:
    """A short text summary of a result GeoDataFrame: rows per collection, columns, time span.

    Example:
        >>> import geopandas
        >>> from shapely.geometry import Point
        >>> gdf = geopandas.GeoDataFrame(
        ...     {"id": ["a", "b"], "collection": ["s2", "s2"],
        ...      "datetime": ["2024-06-01T00:00:00Z", "2024-06-03T10:00:00Z"]},
        ...     geometry=[Point(0, 0), Point(1, 1)], crs=4326)
        >>> print(describe_frame(gdf))
        2 items, 4 columns, 2024-06-01T00:00:00Z .. 2024-06-03T10:00:00Z
          s2  2
        columns: id, collection, datetime, geometry
    """
    import pandas as pd

    rows = len(frame)
    columns = [str(c) for c in frame.columns]
    span = ""
    lows, highs = [], []
    for name in ("datetime", "start_datetime", "end_datetime"):
        if name in frame.columns:
            values = pd.to_datetime(frame[name], utc=True, errors="coerce").dropna()
            if len(values):
                lows.append(values.min())
                highs.append(values.max())
    if lows:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        span = f", {min(lows).strftime(fmt)} .. {max(highs).strftime(fmt)}"
    lines = [f"{rows:,} {'item' if rows == 1 else 'items'}, {len(columns)} columns{span}"]
    if "collection" in frame.columns and rows:
        counts = frame["collection"].fillna("(none)").astype(str).value_counts(sort=False)
        width = max(len(str(k)) for k in counts.index)
        lines += [f"  {str(k).ljust(width)}  {int(v):,}" for k, v in counts.items()]
    shown = columns[:12]
    more = f" (+{len(columns) - len(shown)} more)" if len(columns) > len(shown) else ""
    lines.append(f"columns: {', '.join(shown)}{more}")
    return "\n".join(lines)
