"""Items of the in-memory STAC server as sortable records, and a collection's index of them.

A :class:`Record` holds what searching needs of one item (its sort key, the end of its
interval, its bbox) and the item serialised once; an :class:`Index` keeps one collection's
records sorted so a datetime filter bisects. Also the RFC 3339 and bbox primitives both use.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

__all__ = ["EPOCH", "US", "Box", "Index", "Key", "Record", "coords_box", "instant", "to_box"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)
Key = tuple[int, str, str]
"""An item's sort key: (start instant in µs since the epoch, id, collection)."""
Box = tuple[float, float, float, float]


def instant(text: str) -> int:
    """RFC 3339 text -> µs since the epoch (UTC); ``ValueError`` when malformed.

    Example:
        >>> instant("1970-01-01T00:00:01.5Z"), instant("1970-01-01T01:00:00+01:00")
        (1500000, 0)
    """
    t = text.strip()
    if len(t) < 20 or t[10] not in "Tt ":
        raise ValueError(text)
    t = t[:-1] + "+00:00" if t[-1] in "zZ" else t
    head, dot, rest = t.partition(".")
    if dot:  # any number of fraction digits (Python 3.10 takes only 3 or 6)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        t = f"{head}.{(rest[:digits] + '000000')[:6]}{rest[digits:]}"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        raise ValueError(text)
    return (dt - EPOCH) // US


def to_box(values: Sequence[Any]) -> Box:
    """A 2D or 3D bbox as (west, south, east, north).

    Example:
        >>> to_box([0, 1, -5, 2, 3, 5])
        (0.0, 1.0, 2.0, 3.0)
    """
    if len(values) not in (4, 6):
        raise ValueError(f"a bbox has 4 or 6 numbers, not {len(values)}")
    n = len(values) // 2
    return float(values[0]), float(values[1]), float(values[n]), float(values[n + 1])


def coords_box(geometry: Any) -> Box | None:
    """The bbox of a GeoJSON geometry's coordinates; None when it has none.

    Example:
        >>> coords_box({"type": "LineString", "coordinates": [[0, 5], [2, 1]]})
        (0, 1, 2, 5)
        >>> coords_box(None) is None
        True
    """
    flat: list[Sequence[float]] = []
    stack = [(geometry or {}).get("coordinates") or []]
    while stack:
        c = stack.pop()
        if c and isinstance(c[0], (int, float)):
            flat.append(c)
        else:
            stack.extend(c)
    xs, ys = [p[0] for p in flat], [p[1] for p in flat]
    return (min(xs), min(ys), max(xs), max(ys)) if flat else None


class Record:
    """One item: its sort key, the end of its interval, its bbox and its serialised bytes.

    Example:
        >>> rec = Record({"id": "x", "collection": "c", "bbox": [0, 0, 1, 1],
        ...               "properties": {"datetime": "1970-01-01T00:00:01Z"}})
        >>> rec.key, rec.end, rec.ranged, rec.hits((-1, -1, 2, 2)), rec.hits((2, 2, 3, 3))
        ((1000000, 'x', 'c'), 1000000, False, True, False)
    """

    __slots__ = ("bbox", "end", "key", "raw", "seq", "shape")

    def __init__(self, item: dict[str, Any]) -> None:
        props = item.get("properties") or {}
        start, end = props.get("start_datetime"), props.get("end_datetime")
        if not (start and end):
            start = end = props.get("datetime")
        if not (
            start and isinstance(item.get("id"), str) and isinstance(item.get("collection"), str)
        ):
            raise ValueError(f"item {item.get('id')!r} lacks an id, a collection or a datetime")
        self.key: Key = (instant(str(start)), item["id"], item["collection"])
        self.end = instant(str(end))
        self.bbox = to_box(item["bbox"]) if item.get("bbox") else coords_box(item.get("geometry"))
        self.raw = orjson.dumps(item)
        self.shape: Any = None
        self.seq = 0

    def geometry(self) -> Any:
        """The item's geometry as a shapely object (None when it has none)."""
        if self.shape is None:
            import shapely.geometry

            geometry = orjson.loads(self.raw).get("geometry")
            self.shape = shapely.geometry.shape(geometry) if geometry else False
        return self.shape or None

    @property
    def ranged(self) -> bool:
        """An item with ``datetime: null`` (a range item)."""
        return b'"datetime":null' in self.raw

    def hits(self, box: Box) -> bool:
        """Does the item's geometry intersect ``box``? (bbox test, then shapely at the edges)"""
        b = self.bbox
        if b is None or b[0] > box[2] or b[2] < box[0] or b[1] > box[3] or b[3] < box[1]:
            return False
        if box[0] <= b[0] and b[2] <= box[2] and box[1] <= b[1] and b[3] <= box[3]:
            return True
        import shapely.geometry  # a dependency of the package (via geopandas)

        shape = self.geometry()
        return shape is not None and bool(shape.intersects(shapely.geometry.box(*box)))


class Index:
    """A collection's items sorted by key, instants and ranges apart, so datetime bisects.

    Example:
        >>> recs = [Record({"id": i, "collection": "c", "properties": {"datetime": t}})
        ...         for i, t in (("a", "1970-01-01T00:00:01Z"), ("b", "1970-01-01T00:00:02Z"))]
        >>> walks = Index(recs).walk(1_500_000, None, None, desc=True)
        >>> [r.key[1] for walk in walks for r in walk]
        ['b']
    """

    def __init__(self, recs: list[Record]) -> None:
        self.parts = []
        for ranged in (False, True):
            part = sorted((r for r in recs if (r.end != r.key[0]) is ranged), key=lambda r: r.key)
            width = max((r.end - r.key[0] for r in part), default=0)
            self.parts.append((part, [r.key for r in part], width))

    def walk(self, lo: int | None, hi: int | None, after: Key | None, desc: bool) -> list[Any]:
        """One sorted iterator per part: keys in ``[lo - width, hi]`` beyond ``after``."""
        out = []
        for recs, keys, width in self.parts:
            i = 0 if lo is None else bisect.bisect_left(keys, (lo - width,))
            j = len(keys) if hi is None else bisect.bisect_left(keys, (hi + 1,))
            if after is not None and desc:
                j = min(j, bisect.bisect_left(keys, after))
            elif after is not None:
                i = max(i, bisect.bisect_right(keys, after))
            seq = map(recs.__getitem__, range(j - 1, i - 1, -1) if desc else range(i, j))
            out.append(seq if lo is None or width == 0 else (r for r in seq if r.end >= lo))
        return out
