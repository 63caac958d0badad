"""GeoJSON geometry <-> ISO WKB, in pure Python.

Faster than a round trip through GEOS for the small polygons of STAC footprints, and it never
rejects a ring GEOS would call invalid (stac-geoparquet keeps such geometries; so do we).
Decoding also reads extended WKB (EWKB flags for Z, M and SRID) in either byte order.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["geojson_to_wkb", "wkb_to_geojson"]

_NAN = float("nan")

_CODES = {
    "Point": 1,
    "LineString": 2,
    "Polygon": 3,
    "MultiPoint": 4,
    "MultiLineString": 5,
    "MultiPolygon": 6,
    "GeometryCollection": 7,
}
_DEPTH = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2}
_DEPTH["MultiPolygon"] = 3
_HEADER = struct.Struct("<BI")
_COUNT = struct.Struct("<I")


def geojson_to_wkb(geometry: dict[str, Any]) -> bytes:
    """ISO WKB (little-endian) of a GeoJSON geometry dict; ``ValueError`` if it is not one.

    Example:
        >>> geojson_to_wkb({"type": "Point", "coordinates": [1.0, 2.0]}).hex()
        '0101000000000000000000f03f0000000000000040'
    """
    kind = geometry["type"]
    if kind == "GeometryCollection":
        parts = [geojson_to_wkb(part) for part in geometry["geometries"]]
        has_z = any(_COUNT.unpack_from(part, 1)[0] > 1000 for part in parts)
        return b"".join([_HEADER.pack(1, 1007 if has_z else 7), _COUNT.pack(len(parts)), *parts])
    coords = geometry["coordinates"]
    dim = _dimension(coords, _DEPTH[kind])
    return _encode(kind, coords, dim)


def _dimension(coords: Any, depth: int) -> int:
    for _ in range(depth):
        if not coords:
            return 2
        coords = coords[0]
    if not coords:
        return 2
    if len(coords) not in (2, 3):
        raise ValueError(f"positions must have 2 or 3 numbers, got {len(coords)}")
    return len(coords)


def _points(points: list[list[float]], dim: int) -> bytes:
    flat = [number for point in points for number in point]
    if len(flat) != dim * len(points):
        raise ValueError("positions of mixed dimensions")
    return struct.pack(f"<I{len(flat)}d", len(points), *flat)


def _encode(kind: str, coords: Any, dim: int) -> bytes:
    code = _CODES[kind] + (1000 if dim == 3 else 0)
    header = _HEADER.pack(1, code)
    if kind == "Polygon":
        return b"".join([header, _COUNT.pack(len(coords)), *(_points(r, dim) for r in coords)])
    if kind == "MultiPolygon":
        parts = [_encode("Polygon", polygon, dim) for polygon in coords]
        return b"".join([header, _COUNT.pack(len(parts)), *parts])
    if kind == "LineString":
        return header + _points(coords, dim)
    if kind == "Point":
        if not coords:
            return header + struct.pack("<2d", _NAN, _NAN)
        if len(coords) != dim:
            raise ValueError("positions of mixed dimensions")
        return header + struct.pack(f"<{dim}d", *coords)
    part_kind = "Point" if kind == "MultiPoint" else "LineString"
    parts = [_encode(part_kind, part, dim) for part in coords]
    return b"".join([header, _COUNT.pack(len(parts)), *parts])


_WKB_KINDS = {code: kind for kind, code in _CODES.items()}


def wkb_to_geojson(wkb: bytes) -> dict[str, Any]:
    """GeoJSON dict of ISO or extended WKB (either byte order).

    Example:
        >>> wkb_to_geojson(geojson_to_wkb({"type": "Point", "coordinates": [1.0, 2.0]}))
        {'type': 'Point', 'coordinates': [1.0, 2.0]}
    """
    geometry, _ = _decode(memoryview(wkb), 0)
    return geometry


def _decode(buf: memoryview, pos: int) -> tuple[dict[str, Any], int]:
    order = "<" if buf[pos] == 1 else ">"
    (code,) = struct.unpack_from(order + "I", buf, pos + 1)
    pos += 5
    dim = 2
    if code & 0xE0000000:  # extended WKB flags: Z, M, SRID
        dim += bool(code & 0x80000000) + bool(code & 0x40000000)
        if code & 0x20000000:
            pos += 4
        code &= 0x0FFFFFFF
    else:
        dim += {0: 0, 1: 1, 2: 1, 3: 2}[code // 1000]
        code %= 1000
    kind = _WKB_KINDS[code]
    if kind == "Point":
        point = list(struct.unpack_from(f"{order}{dim}d", buf, pos))
        coords = [] if all(c != c for c in point) else point
        return {"type": kind, "coordinates": coords}, pos + 8 * dim
    (count,) = struct.unpack_from(order + "I", buf, pos)
    pos += 4
    if kind == "LineString":
        return {"type": kind, "coordinates": _read_points(buf, pos, count, dim, order)}, (
            pos + 8 * dim * count
        )
    if kind == "Polygon":
        rings = []
        for _ in range(count):
            (n,) = struct.unpack_from(order + "I", buf, pos)
            rings.append(_read_points(buf, pos + 4, n, dim, order))
            pos += 4 + 8 * dim * n
        return {"type": kind, "coordinates": rings}, pos
    parts = []
    for _ in range(count):
        part, pos = _decode(buf, pos)
        parts.append(part)
    if kind == "GeometryCollection":
        return {"type": kind, "geometries": parts}, pos
    return {"type": kind, "coordinates": [part["coordinates"] for part in parts]}, pos


def _read_points(buf: memoryview, pos: int, count: int, dim: int, order: str) -> list[list[float]]:
    flat = struct.unpack_from(f"{order}{count * dim}d", buf, pos)
    return [list(flat[i : i + dim]) for i in range(0, len(flat), dim)]
