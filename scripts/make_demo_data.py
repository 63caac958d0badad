"""Generate the items ``stacfetch demo`` serves: ``stacfetch/data/demo-items.ndjson.gz``.

Usage::

    python scripts/make_demo_data.py            # writes stacfetch/data/demo-items.ndjson.gz
    python scripts/make_demo_data.py --check    # exits 1 if the committed file is out of date

Deterministic: a fixed seed, no clock, no network; gzip without a timestamp. The same script
always writes byte-identical output.

Two collections over the Alps for the year 2023, shaped like real Earth Search /
Planetary Computer items (Sentinel-2 L2A MGRS tiles, Landsat Collection 2 Level-2 WRS-2
scenes): polygon footprints with a matching ``bbox``, COG assets with ``eo:bands`` and
``raster:bands``, ``view:*``, ``proj:*``, ``s2:*`` and ``landsat:*`` properties. On top of the
regular acquisitions they hold the cases that break naive harvesters:

* items stamped exactly on month starts and on midnights (``2023-05-01T00:00:00Z``), and
  their microsecond neighbours (``23:59:59.999999Z``), which a chunk end of ``23:59:59``
  would lose and a closed chunk boundary returns twice;
* one Sentinel-2 datatake of 180 tiles sharing one identical timestamp (more than a page);
* ``datetime: null`` composites with ``start_datetime`` / ``end_datetime`` spanning one to
  four months (one spans the whole year), which servers return in every chunk they overlap;
* heterogeneous properties: ``eo:cloud_cover`` missing, ``null`` or an integer; ``proj:code``
  instead of ``proj:epsg``; optional ``s2:*`` blocks; a nested ``processing:software``;
  the thumbnail asset missing on some items.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

UTC = timezone.utc
SEED = 20230101
YEAR_START = datetime(2023, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2024, 1, 1, tzinfo=UTC)
OUT = Path(__file__).resolve().parent.parent / "stacfetch" / "data" / "demo-items.ndjson.gz"
ROOT = "https://stac.example.com/demo/v1"

S2 = "sentinel-2-l2a"
LS = "landsat-c2-l2"

_EXT = "https://stac-extensions.github.io"
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"
S2_EXTENSIONS = [
    f"{_EXT}/view/v1.0.0/schema.json",
    f"{_EXT}/projection/v1.1.0/schema.json",
    f"{_EXT}/grid/v1.1.0/schema.json",
    f"{_EXT}/sentinel-2/v1.0.0/schema.json",
    f"{_EXT}/eo/v1.1.0/schema.json",
    f"{_EXT}/processing/v1.1.0/schema.json",
    f"{_EXT}/mgrs/v1.0.0/schema.json",
    f"{_EXT}/raster/v1.1.0/schema.json",
]
LS_EXTENSIONS = [
    "https://landsat.usgs.gov/stac/landsat-extension/v1.1.1/schema.json",
    f"{_EXT}/view/v1.0.0/schema.json",
    f"{_EXT}/projection/v1.1.0/schema.json",
    f"{_EXT}/eo/v1.1.0/schema.json",
    f"{_EXT}/raster/v1.1.0/schema.json",
    f"{_EXT}/scientific/v1.0.0/schema.json",
]
# asset key, file, band name, common name, centre wavelength, fwhm, gsd
S2_BANDS = [
    ("blue", "B02", "B02", "blue", 0.49, 0.098, 10),
    ("green", "B03", "B03", "green", 0.56, 0.045, 10),
    ("red", "B04", "B04", "red", 0.665, 0.038, 10),
    ("nir", "B08", "B08", "nir", 0.842, 0.145, 10),
    ("swir16", "B11", "B11", "swir16", 1.61, 0.143, 20),
]
LS_BANDS = [
    ("blue", "SR_B2", "OLI_B2", "blue", 0.48, 0.06, 30),
    ("green", "SR_B3", "OLI_B3", "green", 0.56, 0.06, 30),
    ("red", "SR_B4", "OLI_B4", "red", 0.65, 0.04, 30),
    ("nir08", "SR_B5", "OLI_B5", "nir08", 0.86, 0.03, 30),
]

# MGRS tiles over the Alps: (utm zone, latitude band, square, centre lon, centre lat)
S2_TILES = [
    (32, "T", sq, 6.4 + 1.28 * i, 44.5 + 0.9 * j)
    for j, row in enumerate(["LQ MQ NQ PQ QQ", "LR MR NR PR QR", "LS MS NS PS QS"])
    for i, sq in enumerate(row.split())
] + [
    (33, "T", sq, 13.1 + 1.28 * i, 45.4 + 0.9 * j)
    for j, row in enumerate(["UL VL WL", "UM VM WM"])
    for i, sq in enumerate(row.split())
]
# a long datatake strip (north to south across Europe): 180 distinct tiles, one timestamp
STRIP_TILES = [
    (32, band, col + row, 6.0 + 1.28 * i, 38.0 + 8.0 * b + 0.9 * j)
    for b, band in enumerate("SUV")
    for i, col in enumerate("LMNPQ")
    for j, row in enumerate("ABCDEFGHJKLM")
]
# WRS-2 (path, row) over the Alps, with the scene centre
LS_SCENES = [
    (path, row, 14.2 - 1.55 * (path - 190) + 0.35 * (row - 28), 47.4 - 1.45 * (row - 27))
    for path in range(191, 197)
    for row in range(26, 31)
]


def iso(value: datetime, digits: int = 6) -> str:
    """RFC 3339 UTC with ``Z``; ``digits`` fraction digits (0, 3 or 6)."""
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if digits == 0:
        return base + "Z"
    return f"{base}.{value.microsecond:06d}"[: len(base) + 1 + digits] + "Z"


def footprint(
    rng: random.Random, lon: float, lat: float, w: float, h: float, tilt: float, cut: bool
) -> tuple[dict[str, Any], list[float]]:
    """A tilted quadrilateral (or a swath-edge cut of it) and its bbox, rounded like real data."""
    c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
    corners = [(-w / 2, h / 2), (-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2)]
    ring = [(lon + x * c - y * s, lat + x * s + y * c) for x, y in corners]
    if cut:  # the orbit's swath edge crosses the tile: keep a pentagon
        f = rng.uniform(0.25, 0.75)
        a, b = ring[2], ring[3]
        ring = [
            ring[0],
            ring[1],
            (ring[1][0] + (a[0] - ring[1][0]) * f, ring[1][1] + (a[1] - ring[1][1]) * f),
            (ring[0][0] + (b[0] - ring[0][0]) * f, ring[0][1] + (b[1] - ring[0][1]) * f),
        ]
    coords = [[round(x, 6), round(y, 6)] for x, y in ring]
    coords.append(coords[0])
    xs = [p[0] for p in coords]
    ys = [p[1] for p in coords]
    return (
        {"type": "Polygon", "coordinates": [coords]},
        [min(xs), min(ys), max(xs), max(ys)],
    )


def links(collection: str, item_id: str) -> list[dict[str, str]]:
    """The links a STAC API serves with an item."""
    col = f"{ROOT}/collections/{collection}"
    return [
        {"rel": "self", "type": "application/geo+json", "href": f"{col}/items/{item_id}"},
        {"rel": "parent", "type": "application/json", "href": col},
        {"rel": "collection", "type": "application/json", "href": col},
        {"rel": "root", "type": "application/json", "href": ROOT},
    ]


def band_asset(
    href: str, band: tuple[str, str, str, str, float, float, int], scale: float, offset: float
) -> dict[str, Any]:
    """A COG asset of one band, with ``eo:bands`` and ``raster:bands``."""
    _, _, name, common, centre, fwhm, gsd = band
    return {
        "href": href,
        "type": _COG,
        "title": f"{common.capitalize()} - {gsd}m",
        "eo:bands": [
            {
                "name": name,
                "common_name": common,
                "center_wavelength": centre,
                "full_width_half_max": fwhm,
            }
        ],
        "gsd": gsd,
        "raster:bands": [
            {
                "nodata": 0,
                "data_type": "uint16",
                "spatial_resolution": gsd,
                "scale": scale,
                "offset": offset,
            }
        ],
        "roles": ["data", "reflectance"],
    }


def cloud_cover(rng: random.Random, props: dict[str, Any]) -> None:
    """``eo:cloud_cover`` as real servers return it: mostly a float, sometimes not."""
    roll = rng.random()
    if roll < 0.05:
        return  # missing
    if roll < 0.06:
        props["eo:cloud_cover"] = None
    elif roll < 0.12:
        props["eo:cloud_cover"] = rng.choice([0, 100, rng.randint(1, 99)])
    else:
        props["eo:cloud_cover"] = round(rng.uniform(0, 100), 6)


def projection(rng: random.Random, props: dict[str, Any], epsg: int) -> None:
    """``proj:epsg`` (projection v1) or, on a few items, ``proj:code`` (v2)."""
    if rng.random() < 0.04:
        props["proj:code"] = f"EPSG:{epsg}"
    else:
        props["proj:epsg"] = epsg


def s2_item(
    rng: random.Random, when: datetime, tile: tuple[Any, ...], case: str, seq: int = 0
) -> dict[str, Any]:
    """A Sentinel-2 L2A tile item in the Earth Search v1 shape."""
    zone, band, square, lon, lat = tile
    platform = rng.choice(["sentinel-2a", "sentinel-2b"])
    code = f"{zone}{band}{square}"
    item_id = f"S2{platform[-1].upper()}_{code}_{when:%Y%m%d}_{seq}_L2A"
    geometry, bbox = footprint(rng, lon, lat, 1.4, 0.99, rng.uniform(-2, 2), rng.random() < 0.4)
    epsg = 32600 + zone
    props: dict[str, Any] = {
        "created": iso(when + timedelta(hours=2, seconds=rng.randint(0, 5000)), 3),
        "platform": platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
    }
    cloud_cover(rng, props)
    projection(rng, props, epsg)
    props.update(
        {
            "mgrs:utm_zone": zone,
            "mgrs:latitude_band": band,
            "mgrs:grid_square": square,
            "grid:code": f"MGRS-{code}",
            "view:azimuth": round(rng.uniform(100, 290), 6),
            "view:incidence_angle": round(rng.uniform(1, 12), 6),
            "view:sun_azimuth": round(rng.uniform(140, 170), 6),
            "view:sun_elevation": (
                rng.randint(18, 66) if rng.random() < 0.05 else round(rng.uniform(18, 66), 6)
            ),
        }
    )
    if rng.random() < 0.85:  # the s2:* block is not on every item
        props.update(
            {
                "s2:product_type": "S2MSI2A",
                "s2:processing_baseline": rng.choice(["05.09", "05.10"]),
                "s2:nodata_pixel_percentage": round(rng.uniform(0, 80), 4),
                "s2:snow_ice_percentage": round(rng.uniform(0, 40), 4),
                "s2:vegetation_percentage": round(rng.uniform(0, 70), 4),
                "s2:water_percentage": round(rng.uniform(0, 10), 4),
                "s2:datatake_id": f"G{platform[-2:].upper()}_{when:%Y%m%dT%H%M%S}_N05.09",
            }
        )
    props["datetime"] = iso(when, 3 if when.microsecond % 1000 == 0 else 6)
    props["processing:software"] = {"sentinel2-to-stac": rng.choice(["2023.01.01", "2023.06.20"])}
    props["updated"] = props["created"]
    props["demo:case"] = case
    base = f"https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/{zone}/{band}/"
    base += f"{square}/{when.year}/{when.month}/{item_id}"
    assets = {b[0]: band_asset(f"{base}/{b[1]}.tif", b, 0.0001, -0.1) for b in S2_BANDS}
    assets["scl"] = {
        "href": f"{base}/SCL.tif",
        "type": _COG,
        "title": "Scene classification map (SCL)",
        "roles": ["data"],
    }
    if rng.random() < 0.93:
        assets["thumbnail"] = {
            "href": f"{base}/thumbnail.jpg",
            "type": "image/jpeg",
            "title": "Thumbnail image",
            "roles": ["thumbnail"],
        }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": S2_EXTENSIONS,
        "id": item_id,
        "geometry": geometry,
        "bbox": bbox,
        "properties": props,
        "links": links(S2, item_id),
        "assets": assets,
        "collection": S2,
    }


def ls_item(
    rng: random.Random, when: datetime, scene: tuple[Any, ...], case: str
) -> dict[str, Any]:
    """A Landsat Collection 2 Level-2 scene in the Planetary Computer shape."""
    path, row, lon, lat = scene
    sat = rng.choice(["8", "9"])
    processed = when + timedelta(days=rng.randint(3, 12))
    tier = "T1" if rng.random() < 0.9 else "T2"
    item_id = f"LC0{sat}_L2SP_{path:03d}{row:03d}_{when:%Y%m%d}_{processed:%Y%m%d}_02_{tier}"
    geometry, bbox = footprint(rng, lon, lat, 2.45, 1.7, -12.5, False)
    props: dict[str, Any] = {"gsd": 30, "created": iso(processed, 6)}
    if rng.random() < 0.9:
        props["sci:doi"] = "10.5066/P9OGBGM6"
    props["datetime"] = iso(when, 6)
    props["platform"] = f"landsat-{sat}"
    projection(rng, props, 32632 if lon < 12 else 32633)
    props["description"] = "Landsat Collection 2 Level-2"
    props["instruments"] = ["oli", "tirs"]
    cloud_cover(rng, props)
    props.update(
        {
            "view:off_nadir": 0,
            "landsat:wrs_row": f"{row:03d}",
            "landsat:scene_id": f"LC{sat}{path:03d}{row:03d}{when:%Y%j}LGN00",
            "landsat:wrs_path": f"{path:03d}",
            "landsat:wrs_type": "2",
            "view:sun_azimuth": round(rng.uniform(130, 160), 8),
            "landsat:correction": "L2SP",
            "view:sun_elevation": round(rng.uniform(18, 66), 8),
            "landsat:collection_number": "02",
            "landsat:collection_category": tier,
            "demo:case": case,
        }
    )
    if "eo:cloud_cover" in props and rng.random() < 0.9:
        props["landsat:cloud_cover_land"] = props["eo:cloud_cover"]
    base = "https://landsateuwest.blob.core.windows.net/landsat-c2/level-2/standard/oli-tirs/"
    base += f"{when.year}/{path:03d}/{row:03d}/{item_id}/{item_id}"
    assets = {b[0]: band_asset(f"{base}_{b[1]}.TIF", b, 2.75e-05, -0.2) for b in LS_BANDS}
    assets["qa_pixel"] = {
        "href": f"{base}_QA_PIXEL.TIF",
        "type": _COG,
        "title": "Pixel Quality Assessment Band",
        "roles": ["cloud", "cloud-shadow", "snow-ice", "water-mask"],
    }
    if rng.random() < 0.93:
        assets["thumbnail"] = {
            "href": f"{base}_thumb_small.jpeg",
            "type": "image/jpeg",
            "title": "Thumbnail image",
            "roles": ["thumbnail"],
        }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": LS_EXTENSIONS,
        "id": item_id,
        "geometry": geometry,
        "bbox": bbox,
        "properties": props,
        "links": links(LS, item_id),
        "assets": assets,
        "collection": LS,
    }


def composite(
    rng: random.Random, collection: str, start: datetime, end: datetime, n: int
) -> dict[str, Any]:
    """A ``datetime: null`` composite over ``[start, end]`` (interval match only)."""
    lon, lat = rng.uniform(6, 15), rng.uniform(44.5, 47.5)
    geometry, bbox = footprint(rng, lon, lat, 1.5, 1.0, 0, False)
    prefix = "S2_L2A_COMPOSITE" if collection == S2 else "LC_L2_COMPOSITE"
    item_id = f"{prefix}_{start:%Y%m%d}_{end:%Y%m%d}_{n:03d}"
    props: dict[str, Any] = {
        "datetime": None,
        "start_datetime": iso(start, 0) if not start.microsecond else iso(start),
        "end_datetime": iso(end, 0) if not end.microsecond else iso(end),
        "created": iso(end + timedelta(days=rng.randint(2, 9)), 3),
        "platform": "sentinel-2" if collection == S2 else "landsat",
        "demo:case": "range-null",
        "demo:composite": "median",
    }
    cloud_cover(rng, props)
    asset = band_asset(
        f"https://data.example.com/composites/{collection}/{item_id}.tif",
        (S2_BANDS if collection == S2 else LS_BANDS)[2],
        1.0,
        0.0,
    )
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [f"{_EXT}/eo/v1.1.0/schema.json", f"{_EXT}/raster/v1.1.0/schema.json"],
        "id": item_id,
        "geometry": geometry,
        "bbox": bbox,
        "properties": props,
        "links": links(collection, item_id),
        "assets": {"red": asset},
        "collection": collection,
    }


def month_starts() -> list[datetime]:
    """The first instant of every month of the year, and of the next year."""
    return [datetime(2023, m, 1, tzinfo=UTC) for m in range(1, 13)] + [YEAR_END]


def random_instant(rng: random.Random) -> datetime:
    """A uniformly random instant of the year, with a microsecond, millisecond or whole second."""
    seconds = rng.uniform(0, (YEAR_END - YEAR_START).total_seconds() - 1)
    value = YEAR_START + timedelta(seconds=seconds)
    roll = rng.random()
    if roll < 0.3:
        return value.replace(microsecond=0)
    if roll < 0.7:
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def sentinel2(rng: random.Random) -> list[dict[str, Any]]:
    """Regular 5-day revisits, boundary items, one big same-instant datatake, composites."""
    items: list[dict[str, Any]] = []
    day = YEAR_START + timedelta(hours=10, minutes=20)
    while day < YEAR_END:  # about every 2.5 days one platform passes over part of the tiles
        sensing = day + timedelta(seconds=rng.uniform(0, 600))
        for tile in rng.sample(S2_TILES, rng.randint(8, 14)):
            when = sensing + timedelta(seconds=rng.uniform(-20, 20))
            items.append(s2_item(rng, when.replace(microsecond=when.microsecond // 1000 * 1000),
                                 tile, "regular"))  # fmt: skip
        day += timedelta(hours=rng.choice([48, 72]))
    for start in month_starts()[:-1]:  # exactly on month starts, and their neighbours
        for tile in rng.sample(S2_TILES, 3):
            items.append(s2_item(rng, start, tile, "boundary", seq=2))
        tile = rng.choice(S2_TILES)
        items.append(s2_item(rng, start - timedelta(microseconds=1), tile, "near-boundary", seq=3))
        items.append(s2_item(rng, start + timedelta(microseconds=1), tile, "near-boundary", seq=3))
    for day in sorted(rng.sample(range(1, 366), 24)):  # midnights inside months
        midnight = YEAR_START + timedelta(days=day)
        if midnight.day != 1:
            items.append(s2_item(rng, midnight, rng.choice(S2_TILES), "boundary", seq=2))
    same = datetime(2023, 7, 14, 10, 20, 31, 24000, tzinfo=UTC)  # one long datatake
    for tile in STRIP_TILES:
        items.append(s2_item(rng, same, tile, "same-instant", seq=1))
    for n in range(20):
        first = rng.randint(1, 10)
        start = datetime(2023, first, 1, tzinfo=UTC)
        months = rng.randint(1, 3)
        end = month_starts()[first - 1 + months]
        if n % 2:  # the common closed form of "that month"
            end -= timedelta(microseconds=1)
        items.append(composite(rng, S2, start, end, n))
    items.append(composite(rng, S2, YEAR_START, YEAR_END - timedelta(seconds=1), 99))
    return items


def landsat(rng: random.Random) -> list[dict[str, Any]]:
    """16-day WRS-2 revisits of two satellites 8 days apart, boundary items, composites."""
    items: list[dict[str, Any]] = []
    for path, row, lon, lat in LS_SCENES:
        first = YEAR_START + timedelta(days=(path * 7) % 8, hours=10, minutes=1 + 2 * (row - 27))
        day = first
        while day < YEAR_END:
            when = day + timedelta(seconds=rng.uniform(0, 30))
            items.append(ls_item(rng, when, (path, row, lon, lat), "regular"))
            day += timedelta(days=8)
    used = {it["id"][5:25] for it in items}  # scene + acquisition day

    def add(when: datetime, case: str) -> None:
        for scene in rng.sample(LS_SCENES, len(LS_SCENES)):  # a scene not acquired that day
            item = ls_item(rng, when, scene, case)
            if item["id"][5:25] not in used:
                used.add(item["id"][5:25])
                items.append(item)
                return
        raise AssertionError(f"no free scene on {when}")

    for start in month_starts()[1:-1]:
        add(start, "boundary")
        add(start - timedelta(microseconds=1), "near-boundary")
    same = datetime(2023, 3, 15, 10, 5, 0, tzinfo=UTC)  # reprocessed scenes, one timestamp
    for _ in range(12):
        add(same, "same-instant")
    for n in range(12):
        start = datetime(2023, n + 1, 1, tzinfo=UTC)
        end = month_starts()[min(12, n + rng.randint(1, 4))]
        items.append(composite(rng, LS, start, end, n))
    return items


def generate() -> list[dict[str, Any]]:
    """All demo items, in a deterministic order (by collection, then datetime, then id)."""
    rng = random.Random(SEED)
    items = sentinel2(rng) + landsat(rng)
    ids = [(it["collection"], it["id"]) for it in items]
    assert len(ids) == len(set(ids)), "duplicate item ids"

    def key(item: dict[str, Any]) -> tuple[str, str, str]:
        p = item["properties"]
        return (item["collection"], p["datetime"] or p["start_datetime"], item["id"])

    return sorted(items, key=key)


def encode(items: list[dict[str, Any]]) -> bytes:
    """ndjson, gzip-compressed without a file name or timestamp (reproducible bytes)."""
    text = "".join(json.dumps(it, separators=(",", ":"), sort_keys=False) + "\n" for it in items)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(text.encode("utf-8"))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the demo data file; prints what it wrote."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output file (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    items = generate()
    data = encode(items)
    counts: dict[str, int] = {}
    for it in items:
        counts[it["collection"]] = counts.get(it["collection"], 0) + 1
    summary = ", ".join(f"{c}: {n}" for c, n in counts.items())
    if args.check:
        current = args.out.read_bytes() if args.out.exists() else b""
        if current != data:
            print(f"{args.out} is out of date; run scripts/make_demo_data.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({summary})")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {len(items)} items ({summary}), {len(data) / 1e6:.2f} MB, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
