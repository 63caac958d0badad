"""Results for the pystac world: ``sortby`` order, item dicts, pystac Items, and the way back
from a GeoDataFrame (or GeoParquet) to items that odc-stac and stackstac accept.

- :func:`sort_order` is one stable multi-key sort for GeoDataFrame rows and item dicts alike:
  ``sortby`` fields as ``datetime``, ``-eo:cloud_cover``, ``properties.eo:cloud_cover``; nulls
  last in both directions; values of mixed types ordered numbers < strings < others.
- :func:`geodataframe_to_dicts` turns rows back into STAC item dicts: core columns at the top,
  every other column a property; nulls dropped (a missing property and a null are the same in
  a GeoDataFrame), timestamps as RFC 3339, and integral floats of known integer fields
  (``proj:epsg``, ``proj:shape``, orbits...) back to ``int``: pandas turns an integer column
  with gaps into floats, and ``proj:epsg: 32633.0`` makes odc-stac and stackstac fail.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from .._model.errors import ConfigurationError
from .arrow import CORE_COLUMNS, TIMESTAMP_COLUMNS

if TYPE_CHECKING:
    import geopandas as gpd
    import pystac

__all__ = [
    "INTEGER_FIELDS",
    "coerce_integers",
    "geodataframe_to_dicts",
    "geodataframe_to_items",
    "sort_frame",
    "sort_items",
    "sort_order",
    "to_pystac_items",
]

INTEGER_FIELDS = frozenset(
    {
        "proj:epsg",
        "proj:shape",
        "sat:relative_orbit",
        "sat:absolute_orbit",
        "sat:orbit_cycle",
        "landsat:wrs_path",
        "landsat:wrs_row",
        "bits_per_sample",
        "raster:bits_per_sample",
        "file:size",
        "file:header_size",
        "mgrs:utm_zone",
        "s2:datatake_type_count",
    }
)
"""Fields whose values are integers (or lists of integers) wherever they appear: item
properties, asset fields, band objects."""


# --- sortby -------------------------------------------------------------------------------
def _column_of(field: str, columns: Iterable[str]) -> str | None:
    names = set(columns)
    bare = field.removeprefix("properties.")
    for name in (field, bare, f"properties.{bare}"):
        if name in names:
            return name
    return None


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        import pandas as pd

        return value is pd.NaT or (isinstance(value, type(pd.NA)) and value is pd.NA)
    except ImportError:  # pragma: no cover
        return False


def _key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (0, value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        try:
            return _key(value.item())
        except (TypeError, ValueError):
            pass
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return (1, moment.timestamp())
    if isinstance(value, str):
        return (2, value)
    return (3, orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY))


def sort_order(columns: Sequence[Sequence[Any]], descending: Sequence[bool]) -> list[int]:
    """Row positions sorting rows by several key columns, stably; nulls last either way.

    Example:
        >>> sort_order([[3, None, 1, 3], ["b", "x", "z", "a"]], [True, False])
        [3, 0, 2, 1]
    """
    if not columns:
        return []
    order = list(range(len(columns[0])))
    for values, desc in reversed(list(zip(columns, descending, strict=True))):
        nulls = [i for i in order if _is_null(values[i])]
        present = [i for i in order if not _is_null(values[i])]
        keyed = {i: _key(values[i]) for i in present}
        present.sort(key=keyed.__getitem__, reverse=desc)  # stable, also reversed
        order = present + nulls
    return order


def _sort_keys(sortby: Sequence[Mapping[str, str]] | None) -> list[tuple[str, bool]]:
    return [(str(s["field"]), s.get("direction") == "desc") for s in sortby or ()]


def sort_frame(frame: gpd.GeoDataFrame, sortby: Sequence[Mapping[str, str]] | None) -> Any:
    """``frame`` sorted by ``sortby`` (stable; fields missing from the frame are skipped),
    with a fresh 0..n-1 index.

    Example:
        >>> import geopandas
        >>> gdf = geopandas.GeoDataFrame({"id": ["a", "b", "c"], "eo:cloud_cover": [5, 1, 9]})
        >>> by = [{"field": "properties.eo:cloud_cover", "direction": "desc"}]
        >>> sort_frame(gdf, by).id.tolist()
        ['c', 'a', 'b']
    """
    keys = []
    for field, desc in _sort_keys(sortby):
        column = _column_of(field, frame.columns)
        if column is not None:
            keys.append((frame[column].tolist(), desc))
    if not keys or len(frame) < 2:
        return frame
    order = sort_order([k[0] for k in keys], [k[1] for k in keys])
    return frame.iloc[order].reset_index(drop=True)


def _item_value(item: Mapping[str, Any], field: str) -> Any:
    props = item.get("properties") or {}
    if field in ("id", "collection") or (field in item and field != "properties"):
        return item.get(field)
    bare = field.removeprefix("properties.")
    value = props.get(bare)
    if isinstance(value, str) and bare in TIMESTAMP_COLUMNS:
        from .._model.datetimes import parse_instant

        try:
            return parse_instant(value)
        except ConfigurationError:
            return value
    return value


def sort_items(
    items: list[dict[str, Any]], sortby: Sequence[Mapping[str, str]] | None
) -> list[dict[str, Any]]:
    """``items`` (STAC item dicts) sorted by ``sortby``, stably; datetimes compared as instants.

    Example:
        >>> items = [{"id": "a", "properties": {"datetime": "2024-01-02T00:00:00Z"}},
        ...          {"id": "b", "properties": {"datetime": "2024-01-01T00:00:00.5Z"}}]
        >>> [i["id"] for i in sort_items(items, [{"field": "datetime", "direction": "asc"}])]
        ['b', 'a']
    """
    keys = _sort_keys(sortby)
    if not keys or len(items) < 2:
        return items
    columns = [[_item_value(item, field) for item in items] for field, _ in keys]
    return [items[i] for i in sort_order(columns, [desc for _, desc in keys])]


# --- GeoDataFrame -> items -----------------------------------------------------------------
def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def coerce_integers(value: Any, key: str | None = None) -> Any:
    """``value`` with integral floats of :data:`INTEGER_FIELDS` made ``int``, recursively.

    Example:
        >>> coerce_integers({"proj:epsg": 32633.0, "gsd": 10.0, "assets": {"B1":
        ...                  {"proj:shape": [10980.0, 10980.0]}}})
        {'proj:epsg': 32633, 'gsd': 10.0, 'assets': {'B1': {'proj:shape': [10980, 10980]}}}
    """
    if isinstance(value, dict):
        return {k: coerce_integers(v, k) for k, v in value.items()}
    if key in INTEGER_FIELDS:
        return _integral(value)
    if isinstance(value, list):
        return [coerce_integers(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """A JSON-friendly Python value of a GeoDataFrame cell (None for nulls)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: p for k, v in value.items() if (p := _plain(v)) is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy
        return _plain(value.tolist())
    if isinstance(value, datetime):
        if _is_null(value):
            return None
        from .._model.types import format_instant

        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return format_instant(moment.astimezone(timezone.utc))
    if _is_null(value):
        return None
    return value


def _bbox(value: Any) -> Any:
    if isinstance(value, dict):
        names = ("xmin", "ymin", "zmin", "xmax", "ymax", "zmax")
        return [value[n] for n in names if value.get(n) is not None]
    return value


def geodataframe_to_dicts(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """STAC item dicts of a GeoDataFrame of items (``Ingestor.ingest()``,
    :func:`stacfetch.read_geoparquet`, stac-geoparquet...), ready for pystac, odc-stac and
    stackstac.

    Core columns (``type``, ``stac_version``, ``stac_extensions``, ``id``, ``geometry``,
    ``bbox``, ``collection``, ``links``, ``assets``) go to the top level, every other column to
    ``properties`` (``properties.<name>`` columns under ``<name>``); nulls are left out,
    ``datetime`` is kept (null for range items); integral floats of :data:`INTEGER_FIELDS` are
    ``int`` again.

    Example:
        >>> import geopandas, shapely
        >>> gdf = geopandas.GeoDataFrame({"id": ["a", "b"], "proj:epsg": [32633.0, None]},
        ...     geometry=[shapely.Point(1, 2), None], crs="EPSG:4326")
        >>> [d["properties"] for d in geodataframe_to_dicts(gdf)]
        [{'proj:epsg': 32633, 'datetime': None}, {'datetime': None}]
    """
    import shapely

    geometry_name = frame.geometry.name if hasattr(frame, "geometry") else None
    columns = [c for c in frame.columns if c != geometry_name]
    values = {c: frame[c].tolist() for c in columns}
    geometries: list[Any] = (
        frame.geometry.tolist() if geometry_name is not None else [None] * len(frame)
    )
    items: list[dict[str, Any]] = []
    for row in range(len(frame)):
        item: dict[str, Any] = {"type": "Feature"}
        properties: dict[str, Any] = {}
        for column in columns:
            value = _plain(values[column][row])
            if column == "bbox":
                value = _bbox(value)
            if column in CORE_COLUMNS:
                if value is not None:
                    item[column] = value
            elif value is not None:
                properties[column.removeprefix("properties.")] = value
        properties.setdefault("datetime", None)
        shape = geometries[row]
        item["geometry"] = (
            None
            if shape is None or shapely.is_missing(shape)
            else orjson.loads(shapely.to_geojson(shape))
        )
        item["properties"] = properties
        item.setdefault("stac_version", "1.0.0")
        item.setdefault("links", [])
        item.setdefault("assets", {})
        items.append(coerce_integers(item))
    return items


def to_pystac_items(dicts: Iterable[Mapping[str, Any]]) -> list[pystac.Item]:
    """pystac Items of STAC item dicts (integral floats of integer fields made ``int``).

    Example:
        >>> item = {"type": "Feature", "stac_version": "1.0.0", "id": "a", "geometry": None,
        ...         "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
        ...         "assets": {}}
        >>> to_pystac_items([item])[0].id
        'a'
    """
    import pystac

    roots: dict[str, pystac.Catalog] = {}
    items = []
    for data in dicts:
        item = pystac.Item.from_dict(
            coerce_integers(dict(data)), preserve_dict=False, migrate=False
        )
        link = item.get_single_link("root")
        if link is not None and isinstance(link.target, str):
            # an unresolved root link makes ``item.to_dict()`` (stackstac calls it) read the
            # root URL; a stand-in catalog at that URL keeps the href and reads nothing
            href = link.target
            if href not in roots:
                roots[href] = pystac.Catalog("root", "the STAC API root", href=href)
            item.set_root(roots[href])
        items.append(item)
    return items


def geodataframe_to_items(frame: gpd.GeoDataFrame) -> list[pystac.Item]:
    """pystac Items of a GeoDataFrame of items: hand them to ``odc.stac.load`` or
    ``stackstac.stack`` (see ``docs/from-pystac-client.md``).

    Example::

        gdf = stacfetch.read_geoparquet("s2.parquet")
        items = stacfetch.geodataframe_to_items(gdf)
        xx = odc.stac.load(items, bands=["B04"], chunks={})
    """
    return to_pystac_items(geodataframe_to_dicts(frame))
