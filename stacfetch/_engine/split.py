"""Pure split planning: children that cover a whole chunk, in time or in space. No IO here.

A chunk that turns out large is replaced by children whose searches together cover the
chunk's whole search, whatever order the server returns items in: nothing here assumes that
the items already seen come first, last or sorted. The items already seen come back from the
children and the exactly-once set drops them again; that re-fetch (at most one page per split)
is the price of not relying on an order the server never promised.

Which axis is split is chosen from the items of the page that revealed the size:

- **time** (the datetime interval) when the items are instants or short ranges: each item
  falls in one child (two on a shared boundary);
- **space** (bbox tiles of the search's ``bbox`` / ``intersects``, else the whole globe) when
  time cannot separate the items: they share one timestamp (a DEM), or their ranges cover the
  chunk (annual composites would otherwise come back once per time child). Items on a tile's
  edge come back from each tile they touch; cut lines sit off round coordinates so that grids
  of tiles aligned on whole degrees rarely touch them.

Neither axis is used when it would not separate the items, or when an item of the page has no
geometry (a spatial filter would never return it): the chunk is then paged to its end.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from .._model.datetimes import MICROSECOND, instant_or_none
from .._model.types import Chunk, Interval
from .plan import split_interval

__all__ = [
    "WORLD",
    "Axis",
    "Split",
    "item_box",
    "item_span",
    "outside",
    "plan_split",
    "space_tiles",
    "time_pieces",
]

Axis = Literal["time", "space"]
Box = tuple[float, float, float, float]
WORLD: Box = (-180.0, -90.0, 180.0, 90.0)
"""The region split when the search has neither ``bbox`` nor ``intersects``: the whole globe
(not the collection's extent, which may be stale)."""
TIME_MULTIPLICITY_MAX = 1.25
"""Up to this many time children per item on average, a time split is taken (below a space
split, see :func:`plan_split`'s ``prefer``)."""
SPACE_PREFERENCE = 1.5
"""Above it, space is chosen when it sends this many times fewer copies of each item."""
SMALL_SAMPLE = 8
"""Fewer sampled items than this say little about the chunk: the axis above is kept."""
SAMPLE_SPREAD = 0.5
"""Time cuts follow the sampled items only when they spread over this share of the chunk."""
_CUT_OFFSET = 0.0137
"""Cut lines sit this fraction of a tile off the even grid (off whole and half degrees)."""
_MIN_TILE = 1e-6
"""Tiles narrower than this many degrees are not split again."""


# -- what an item occupies -----------------------------------------------------------------------
def item_span(item: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """The closed time span of an item: ``start_/end_datetime`` when set, else its instant.

    Example:
        >>> lo, hi = item_span({"properties": {"datetime": None,
        ...     "start_datetime": "2020-01-01T00:00:00Z", "end_datetime": "2020-12-31T00:00:00Z"}})
        >>> lo.year, hi.month
        (2020, 12)
    """
    props = item.get("properties")
    if not isinstance(props, Mapping):
        return None
    start, end = (
        instant_or_none(props.get("start_datetime")),
        instant_or_none(props.get("end_datetime")),
    )
    if start is not None and end is not None and start <= end:
        return start, end
    when = instant_or_none(props.get("datetime"))
    return (when, when) if when is not None else None


def _coords_box(coords: Any) -> list[float] | None:
    xs: list[float] = []
    ys: list[float] = []
    stack = [coords]
    while stack:
        value = stack.pop()
        if isinstance(value, (list, tuple)):
            if len(value) >= 2 and all(isinstance(v, (int, float)) for v in value[:2]):
                xs.append(float(value[0]))
                ys.append(float(value[1]))
            else:
                stack.extend(value)
    return [min(xs), min(ys), max(xs), max(ys)] if xs else None


def item_box(item: Mapping[str, Any]) -> list[float] | None:
    """An item's 2D bbox ``[west, south, east, north]`` (its ``bbox``, else its geometry's
    coordinates); None when it has no geometry. ``west > east`` crosses the antimeridian.

    Example:
        >>> item_box({"bbox": [0, 1, 5, 10, 2, 7]})
        [0.0, 1.0, 10.0, 2.0]
        >>> item_box({"geometry": {"type": "Point", "coordinates": [3, 4]}})
        [3.0, 4.0, 3.0, 4.0]
    """
    bbox = item.get("bbox")
    if isinstance(bbox, (list, tuple)) and len(bbox) in (4, 6):
        half = len(bbox) // 2
        try:
            return [float(bbox[0]), float(bbox[1]), float(bbox[half]), float(bbox[half + 1])]
        except (TypeError, ValueError):
            return None
    geometry = item.get("geometry")
    if isinstance(geometry, Mapping):
        if geometry.get("type") == "GeometryCollection":
            boxes = [item_box({"geometry": g}) for g in geometry.get("geometries") or ()]
            found = [b for b in boxes if b]
            if not found:
                return None
            return [
                min(b[0] for b in found),
                min(b[1] for b in found),
                max(b[2] for b in found),
                max(b[3] for b in found),
            ]
        return _coords_box(geometry.get("coordinates"))
    return None


# -- time ---------------------------------------------------------------------------------------
def time_pieces(
    interval: Interval,
    n: int,
    spans: Sequence[tuple[datetime, datetime]],
    *,
    extent: tuple[datetime | None, datetime | None] = (None, None),
    now: datetime,
) -> list[Interval]:
    """``interval`` cut into about ``n`` contiguous closed pieces that cover it exactly.

    Open ends are bounded by the collection's extent (then by the items seen) for the cuts,
    and the first and last pieces stay open beyond it, so nothing past a stale extent is lost.

    Example:
        >>> from datetime import timezone
        >>> utc = timezone.utc
        >>> iv = Interval(datetime(2024, 1, 1, tzinfo=utc), datetime(2024, 1, 5, tzinfo=utc))
        >>> now = datetime(2025, 1, 1, tzinfo=utc)
        >>> [p.to_param()[:10] for p in time_pieces(iv, 2, [], now=now)]
        ['2024-01-01', '2024-01-03']
    """
    if interval.is_instant:
        return [interval]
    starts = [s[0] for s in spans if interval.contains(s[0])]
    if interval.is_bounded:
        return _mixed_pieces(interval, n, starts)

    def inner(value: datetime | None) -> datetime | None:
        return value if value is not None and interval.contains(value) else None

    lo = interval.start or inner(extent[0]) or (min(starts) if starts else None)
    hi = interval.end or inner(extent[1]) or (max(starts) if starts else None) or inner(now)
    if lo is None or hi is None or hi < lo:
        return [interval]
    body = Interval(lo, hi)
    pieces = _mixed_pieces(body, n, starts) if lo < hi else [body]
    if interval.start is None:  # the first and last pieces reach beyond the extent
        pieces[0] = Interval(None, pieces[0].end)
    if interval.end is None:
        pieces[-1] = Interval(pieces[-1].start, None)
    return pieces


def _mixed_pieces(body: Interval, n: int, starts: Sequence[datetime]) -> list[Interval]:
    """``body`` (bounded) cut into about ``n`` pieces of equal weight under a blend of two
    guesses at where the items are: evenly over the interval, and as the sample's start times
    say (half each), when the sample spreads over at least :data:`SAMPLE_SPREAD` of the
    interval (a server sorting by datetime sends a bunched first page). The even half bounds
    every piece where the sample is unrepresentative (a page in the server's order need not
    be a fair draw); the sample's half follows where the items actually are (a burst, a dense
    season). Evenly spread samples give even pieces."""
    assert body.start is not None
    assert body.end is not None
    lo = body.start
    width = (body.end - lo) // MICROSECOND
    inner = sorted((s - lo) // MICROSECOND for s in starts if lo < s < body.end)
    if n < 2 or width < 2 or len(inner) < n or inner[-1] - inner[0] < width * SAMPLE_SPREAD:
        return split_interval(body, n)  # too few, or bunched: a page of a sorted server

    def weight(t: int) -> float:  # the blended share of the items before offset t
        return 0.5 * t / width + 0.5 * bisect.bisect_right(inner, t) / len(inner)

    taken = set(inner)
    points = [lo]
    for i in range(1, n):
        goal, a, b = i / n, 0, width
        while a < b:  # the first offset whose blended share reaches the goal
            mid = (a + b) // 2
            a, b = (mid + 1, b) if weight(mid) < goal else (a, mid)
        if a in taken:  # off the sampled item itself: halfway to the next one
            k = bisect.bisect_right(inner, a)
            a = (a + inner[k]) // 2 if k < len(inner) else (a + width) // 2
        cut = lo + timedelta(microseconds=a)
        if points[-1] < cut < body.end:
            points.append(cut)
    points.append(body.end)
    return [Interval(x, y) for x, y in itertools.pairwise(points)]


def _overlaps(piece: Interval, span: tuple[datetime, datetime]) -> bool:
    if piece.start is not None and span[1] < piece.start:
        return False
    return not (piece.end is not None and span[0] > piece.end)


# -- space --------------------------------------------------------------------------------------
def _grid(box: Box, n: int) -> list[Box]:
    west, south, east, north = box
    width, height = east - west, north - south
    if n < 2 or (width < _MIN_TILE and height < _MIN_TILE):
        return [box]
    if width < _MIN_TILE:
        nx, ny = 1, n
    elif height < _MIN_TILE:
        nx, ny = n, 1
    else:

        def score(shape: tuple[int, int]) -> float:
            kx, ky = shape
            return abs(math.log(width / kx / (height / ky))) + 2 * abs(math.log(kx * ky / n))

        nx, ny = min(((k, max(1, round(n / k))) for k in range(1, n + 1)), key=score)

    def cuts(lo: float, hi: float, k: int) -> list[float]:
        step = (hi - lo) / k
        inner = [lo + step * (i + _CUT_OFFSET) for i in range(1, k)]
        return [lo, *inner, hi]

    xs, ys = cuts(west, east, nx), cuts(south, north, ny)
    return [
        (x0, y0, x1, y1)
        for (x0, x1), (y0, y1) in itertools.product(itertools.pairwise(xs), itertools.pairwise(ys))
    ]


def space_tiles(region: Sequence[float], n: int) -> list[Box]:
    """About ``n`` tiles covering ``region`` (``[west, south, east, north]``; ``west > east``
    crosses the antimeridian and is cut there first). Tiles share their edges.

    Example:
        >>> tiles = space_tiles([-180, -90, 180, 90], 4)
        >>> len(tiles), tiles[0][0], tiles[-1][2]
        (4, -180.0, 180.0)
        >>> [t[0] for t in space_tiles([170, 0, -170, 10], 2)]
        [170.0, -180.0]
    """
    west, south, east, north = (float(v) for v in region[:4])
    south, north = max(-90.0, south), min(90.0, north)
    if west > east:  # across the antimeridian: two regions, tiles shared by width
        left, right = (west, south, 180.0, north), (-180.0, south, east, north)
        share = (180.0 - west) / max(1e-12, (180.0 - west) + (east + 180.0))
        k = max(1, round(n * share))
        return _grid(left, k) + _grid(right, max(1, n - k))
    return _grid((west, south, east, north), n)


def _box_hits(item: Sequence[float], tile: Box) -> bool:
    west, south, east, north = item
    if south > tile[3] or north < tile[1]:
        return False
    if west > east:  # the item crosses the antimeridian
        return tile[2] >= west or tile[0] <= east
    return not (west > tile[2] or east < tile[0])


def _region(filters: Mapping[str, Any]) -> tuple[Box, Any] | None:
    """The region a chunk's search covers and its ``intersects`` geometry (None: none)."""
    bbox = filters.get("bbox")
    if isinstance(bbox, (list, tuple)) and len(bbox) in (4, 6):
        half = len(bbox) // 2
        return (float(bbox[0]), float(bbox[1]), float(bbox[half]), float(bbox[half + 1])), None
    geometry = filters.get("intersects")
    if isinstance(geometry, Mapping):
        import shapely.geometry

        shape = shapely.geometry.shape(geometry)
        if shape.is_empty:
            return None
        west, south, east, north = shape.bounds
        return (west, south, east, north), shape
    return WORLD, None


def _tile_filters(filters: Mapping[str, Any], tile: Box, shape: Any) -> dict[str, Any] | None:
    out = {k: v for k, v in filters.items() if k not in ("bbox", "intersects")}
    if shape is None:
        out["bbox"] = [round(v, 9) for v in tile]
        return out
    import shapely.geometry

    piece = shape.intersection(shapely.geometry.box(*tile))
    if piece.is_empty:
        return None
    if shape.geom_type in ("Polygon", "MultiPolygon") and piece.geom_type == "GeometryCollection":
        polygons = [g for g in piece.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        if not polygons:
            return None
        piece = shapely.union_all(polygons)
    out["intersects"] = shapely.geometry.mapping(piece)
    return out


def outside(chunk: Chunk, axis: str, item: Mapping[str, Any]) -> bool:
    """Whether the server returned ``item`` for ``chunk`` although it lies outside the
    ``axis`` filter stacfetch added (a server that ignores or misreads that filter).

    Example:
        >>> from stacfetch._model.types import Entry
        >>> tile = Chunk.make(Entry("u", "c"), Interval(None, None), {"bbox": [0, 0, 1, 1]})
        >>> outside(tile, "space", {"bbox": [5, 5, 6, 6]})
        True
        >>> outside(tile, "space", {"bbox": [1, 1, 2, 2]})
        False
    """
    if axis == "time":
        span = item_span(item)
        return span is not None and not _overlaps(chunk.interval, span)
    region = _region(chunk.filters)
    box = item_box(item)
    if region is None or box is None:
        return False
    return not _box_hits(box, region[0])


# -- the choice -----------------------------------------------------------------------------------
class Split:
    """The children replacing a chunk, and the axis they split.

    Example:
        >>> from stacfetch._model.types import Entry
        >>> s = Split("space", [])
        >>> s.axis, s.children
        ('space', [])
    """

    __slots__ = ("axis", "children")

    def __init__(self, axis: Axis, children: list[Chunk]) -> None:
        self.axis = axis
        self.children = children

    def __repr__(self) -> str:
        return f"Split({self.axis!r}, {len(self.children)} children)"


def plan_split(
    chunk: Chunk,
    sample: Sequence[Mapping[str, Any]],
    pieces: int,
    *,
    extent: tuple[datetime | None, datetime | None] = (None, None),
    now: datetime,
    axes: Sequence[str] = ("time", "space"),
    prefer: str | None = None,
) -> Split | None:
    """Children covering ``chunk``'s whole search, on the axis that separates ``sample``.

    ``sample`` is a page of the chunk (any order); ``axes`` the axes the server filters
    correctly; ``prefer`` the axis of the split above: below a space split (time could not
    separate the items), space is kept while it sends fewer copies of each item than time
    (each level of time splits cuts through range items again), or when the sample is too
    small to tell (:data:`SMALL_SAMPLE`). Returns None when no axis would separate the items
    (then the chunk is paged to its end).

    Example:
        >>> from datetime import timezone
        >>> from stacfetch._model.types import Entry
        >>> utc = timezone.utc
        >>> dem = [{"bbox": [x, 0, x + 1, 1], "properties": {"datetime": "2021-04-22T00:00:00Z"}}
        ...        for x in range(-100, 100)]
        >>> chunk = Chunk.make(Entry("https://x", "dem"), Interval(None, None))
        >>> split = plan_split(chunk, dem, 4, now=datetime(2025, 1, 1, tzinfo=utc))
        >>> split.axis, len(split.children)
        ('space', 4)
    """
    if pieces < 2 or chunk.sequential:
        return None
    filters = chunk.filters
    if "ids" in filters:
        return None
    spans = [s for s in (item_span(f) for f in sample) if s is not None]
    time_split: list[Interval] = []
    time_cost = math.inf
    distinct = len({s[0] for s in spans}) > 1 or any(s[0] < s[1] for s in spans)
    if "time" in axes and (distinct or not spans):
        time_split = time_pieces(chunk.interval, pieces, spans, extent=extent, now=now)
        if len(time_split) > 1:
            counted = [sum(_overlaps(p, s) for p in time_split) for s in spans]
            time_cost = sum(counted) / len(counted) if counted else 1.0
    space_split: list[tuple[Box, dict[str, Any]]] = []
    space_cost = math.inf
    boxes = [item_box(f) for f in sample]
    region = _region(filters)
    if "space" in axes and sample and all(b is not None for b in boxes) and region is not None:
        box, shape = region
        for tile in space_tiles(box, pieces):
            tile_filters = _tile_filters(filters, tile, shape)
            if tile_filters is not None:
                space_split.append((tile, tile_filters))
        if len(space_split) > 1:
            tiles = [t for t, _ in space_split]
            counted = [sum(_box_hits(b, t) for t in tiles) for b in boxes if b is not None]
            space_cost = sum(counted) / len(counted)
    space_better = space_cost < pieces and space_cost * SPACE_PREFERENCE < time_cost
    # a chunk of a space split (time could not separate its items) stays in space while
    # space sends fewer copies, or when its sample is too small to tell
    stay = prefer == "space" and space_cost < pieces
    stay = stay and (len(sample) < SMALL_SAMPLE or space_cost < time_cost)
    if time_cost < pieces and not stay and (time_cost <= TIME_MULTIPLICITY_MAX or not space_better):
        return Split("time", [chunk.with_interval(p) for p in time_split])
    if space_cost < pieces:
        return Split("space", [chunk.with_filters(f) for _, f in space_split])
    return None
