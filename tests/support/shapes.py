"""Collections shaped like real ones, for exactness tests and the shapes benchmark.

``one-timestamp``
    Every item stamped with one datetime, on a grid of 1 x 1 degree tiles (Copernicus DEM,
    ESA WorldCover, NASADEM: tens of thousands of tiles, one date).
``annual``
    ``datetime: null`` with ``start_/end_datetime`` spanning whole years (annual composites):
    every time chunk of a year returns every item of that year.
``burst``
    80 % of the items inside one day, the rest spread over a year (an event).
``uniform``
    Items spread evenly over a year.

Footprints are grid tiles (whole degrees, so tile edges sit on round coordinates like real
DEM tiles) or small squares; every item has a polygon geometry and a matching ``bbox``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc
SHAPES = ("one-timestamp", "annual", "burst", "uniform")
START = datetime(2021, 1, 1, tzinfo=UTC)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _tile(index: int) -> tuple[float, float, float, float]:
    """The ``index``-th 1-degree tile of a grid over lon [-180, 180), lat [-60, 60), spread
    so that the first tiles already cover the globe."""
    cells = 360 * 120
    k = (index * 7919) % cells  # a stride coprime with the grid: spread, no repeats
    x, y = k % 360 - 180, k // 360 - 60
    return float(x), float(y), float(x + 1), float(y + 1)


def _square(rng: random.Random) -> tuple[float, float, float, float]:
    x, y = rng.uniform(-179.0, 178.0), rng.uniform(-60.0, 59.0)
    return x, y, x + rng.uniform(0.1, 1.0), y + rng.uniform(0.1, 1.0)


def _item(collection: str, i: int, box: tuple[float, ...], props: dict[str, Any]) -> dict[str, Any]:
    w, s, e, n = box
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"{collection}-{i:06d}",
        "collection": collection,
        "bbox": [w, s, e, n],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        },
        "properties": props,
        "assets": {"data": {"href": f"https://example.org/{collection}/{i}.tif"}},
        "links": [],
    }


def make_shape(shape: str, n: int, collection: str = "c", seed: int = 0) -> list[dict[str, Any]]:
    """``n`` items of one of :data:`SHAPES`, deterministic for the same arguments, shuffled.

    Example:
        >>> items = make_shape("annual", 10)
        >>> items[0]["properties"]["datetime"] is None, len(items)
        (True, 10)
    """
    rng = random.Random(f"{shape}/{collection}/{seed}")
    year = timedelta(days=365)
    makers: dict[str, Callable[[int], dict[str, Any]]] = {
        "one-timestamp": lambda i: _item(
            collection, i, _tile(i), {"datetime": "2021-04-22T00:00:00Z"}
        ),
        "annual": lambda i: _item(
            collection,
            i,
            _tile(i // 5),
            {
                "datetime": None,
                "start_datetime": f"{2017 + i % 5}-01-01T00:00:00Z",
                "end_datetime": f"{2017 + i % 5}-12-31T23:59:59Z",
            },
        ),
        "burst": lambda i: _item(
            collection,
            i,
            _square(rng),
            {
                "datetime": _stamp(
                    START + timedelta(days=200) + timedelta(seconds=rng.uniform(0, 86_399))
                    if rng.random() < 0.8
                    else START + year * rng.random()
                )
            },
        ),
        "uniform": lambda i: _item(
            collection, i, _square(rng), {"datetime": _stamp(START + year * rng.random())}
        ),
    }
    if shape not in makers:
        raise ValueError(f"shape: one of {SHAPES}, not {shape!r}")
    items = [makers[shape](i) for i in range(n)]
    rng.shuffle(items)
    return items


def id_ordered_collections(n: int) -> dict[str, list[dict[str, Any]]]:
    """Three collections of ``n`` items in id order, where ids embed the datetime order (like
    ``S2A_MSIL2A_2017...``), so a server that keeps them in load order gives pages that *look*
    sorted by datetime: ``mixed`` (spread over a year, a tenth annual range items among them),
    ``dem`` (one timestamp) and ``annual`` (range items only).

    Example:
        >>> data = id_ordered_collections(20)
        >>> sorted(data), data["dem"][0]["id"], len(data["mixed"])
        (['annual', 'dem', 'mixed'], 'DEM_000000', 20)
    """
    tenth = n // 10
    mixed = make_shape("uniform", n - tenth, "mixed") + make_shape("annual", tenth, "mixed", 1)
    out = {
        "mixed": mixed,
        "dem": make_shape("one-timestamp", n, "dem"),
        "annual": make_shape("annual", n, "annual"),
    }
    for name, items in out.items():
        for i, item in enumerate(sorted(items, key=lambda it: str(it["properties"]))):
            item["id"] = f"{name.upper()}_{i:06d}"  # id order follows the datetime
        items.sort(key=lambda it: it["id"])
    return out
