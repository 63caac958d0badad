"""Deterministic generator of realistic STAC Items (and Collections) for the tests.

The items are modelled on real ones (Earth Search / Planetary Computer Sentinel-2 L2A, Landsat
Collection 2 Level-2, Sentinel-1 GRD and annual land-cover composites): polygon footprint plus a
matching ``bbox``, ``links``, ``stac_extensions``, assets with ``href``/``type``/``roles`` and
``eo:bands``/``raster:bands``, and properties such as ``platform``, ``eo:cloud_cover``,
``proj:epsg`` and ``view:*``. Everything is generated from ``random.Random`` seeded with the
collection id and ``seed``, so the same arguments always give byte-identical items.

Every item carries ``properties["test:case"]``, naming the case it was built for:

``regular``
    Sentinel-2 (85 %) or Landsat (15 %) scenes at uniformly random instants of the extent,
    stamped with whole seconds, milliseconds or microseconds (``...T10:22:33.123457Z``).
``boundary``
    Items stamped exactly on chunk-boundary-like instants: the extent's first and last instant,
    the first instant of every year and of (up to 24) months inside the extent, and midnight of
    ten days.
``near-boundary``
    Microsecond neighbours of boundaries: one microsecond before and after some of the midnights
    and month starts (``23:59:59.999999``), the items a ``23:59:59`` chunk end would lose.
``same-instant``
    ``max(60, n // 50)`` items sharing one identical timestamp (more than a page of 50).
``range-null``
    ``datetime: null`` with ``start_datetime``/``end_datetime`` spanning two to seven months
    (land-cover composite style); one of them spans the whole extent and one starts and ends
    exactly on month boundaries.
``range-short``
    Sentinel-1 GRD style: ``datetime`` AND ``start_datetime``/``end_datetime`` about 25 s apart.
``range-wide``
    ``datetime`` in the middle of a 30-day ``start_datetime``/``end_datetime`` window (a composite
    that also states a nominal datetime). Servers match these by their interval, not by
    ``datetime``.

Heterogeneous properties, spread over all cases: ``eo:cloud_cover`` missing (about 5 %),
``null`` (about 1 %) or an ``int`` instead of a ``float`` (0, 100 and some rounded values);
``view:sun_elevation`` sometimes an ``int``; ``proj:code`` (projection v2) instead of
``proj:epsg`` on a few items; optional ``sat:*`` and ``s2:*`` blocks; a nested object
(``processing:software``); the thumbnail asset missing on some items. Landsat, Sentinel-1 and
composite items have their own property sets and extensions.

The special cases are only added when ``n >= 200``; smaller ``n`` gives the extent's first and
last instant (when ``n >= 2``) plus regular items. ``generate_items`` always returns exactly
``n`` items with unique ids, in a deterministic shuffled order.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from os import PathLike
from typing import Any

import orjson

__all__ = [
    "BASE_HREF",
    "format_datetime",
    "generate_items",
    "item_interval",
    "make_collection",
    "parse_datetime",
    "write_ndjson",
]

#: Made-up public base for the links and asset hrefs (never contacted).
BASE_HREF = "https://stac.example.com/v1"
_DATA_HREF = "https://data.example.com"

_S2_BANDS: list[tuple[str, str, str, float, float, int]] = [
    # asset key, band name, common name, centre wavelength, fwhm, gsd
    ("coastal", "B01", "coastal", 0.443, 0.027, 60),
    ("blue", "B02", "blue", 0.49, 0.098, 10),
    ("green", "B03", "green", 0.56, 0.045, 10),
    ("red", "B04", "red", 0.665, 0.038, 10),
    ("rededge1", "B05", "rededge", 0.704, 0.019, 20),
    ("nir", "B08", "nir", 0.842, 0.145, 10),
    ("swir16", "B11", "swir16", 1.61, 0.143, 20),
    ("swir22", "B12", "swir22", 2.19, 0.242, 20),
]
_LS_BANDS: list[tuple[str, str, str, float, float, int]] = [
    ("blue", "OLI_B2", "blue", 0.48, 0.06, 30),
    ("green", "OLI_B3", "green", 0.56, 0.06, 30),
    ("red", "OLI_B4", "red", 0.65, 0.04, 30),
    ("nir08", "OLI_B5", "nir08", 0.86, 0.03, 30),
    ("swir16", "OLI_B6", "swir16", 1.6, 0.08, 30),
]
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"
_EXT = "https://stac-extensions.github.io"
_EXT_EO = f"{_EXT}/eo/v1.1.0/schema.json"
_EXT_PROJ = f"{_EXT}/projection/v1.1.0/schema.json"
_EXT_PROJ2 = f"{_EXT}/projection/v2.0.0/schema.json"
_EXT_VIEW = f"{_EXT}/view/v1.0.0/schema.json"
_EXT_RASTER = f"{_EXT}/raster/v1.1.0/schema.json"
_EXT_SAT = f"{_EXT}/sat/v1.0.0/schema.json"
_EXT_SAR = f"{_EXT}/sar/v1.0.0/schema.json"
_EXT_S2 = f"{_EXT}/sentinel-2/v1.0.0/schema.json"
_EXT_PROC = f"{_EXT}/processing/v1.1.0/schema.json"
_EXT_LABEL = f"{_EXT}/classification/v1.1.0/schema.json"


def parse_datetime(value: str) -> datetime:
    """Parse an RFC 3339 string (``Z`` or offset, 0-9 fraction digits) into an aware UTC datetime.

    Works on Python 3.10 too, whose ``fromisoformat`` accepts neither ``Z`` nor 1, 2, 4, 5, 7+
    fraction digits.
    """
    text = value.strip().replace(" ", "T")
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    main, sep, rest = text.partition(".")
    if sep:
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{main}.{(digits + '000000')[:6]}{rest}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_datetime(value: datetime, digits: int | None = None) -> str:
    """Format as RFC 3339 UTC with ``Z``.

    ``digits`` is the number of fraction digits (0, 3 or 6); ``None`` uses 6 when the value has
    microseconds and 0 otherwise. Sub-millisecond parts are truncated for ``digits=3``.
    """
    value = _utc(value)
    if digits is None:
        digits = 6 if value.microsecond else 0
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if digits == 0:
        return base + "Z"
    return f"{base}.{value.microsecond:06d}"[: len(base) + 1 + digits] + "Z"


def item_interval(item: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """The closed time interval a server matches an item by.

    ``start_datetime``/``end_datetime`` when both are present (even if ``datetime`` is set too),
    otherwise ``[datetime, datetime]``.
    """
    props = item["properties"]
    if props.get("start_datetime") and props.get("end_datetime"):
        return parse_datetime(props["start_datetime"]), parse_datetime(props["end_datetime"])
    instant = parse_datetime(props["datetime"])
    return instant, instant


def make_collection(
    collection_id: str, extent_start: datetime, extent_end: datetime | None
) -> dict[str, Any]:
    """A STAC Collection for ``collection_id`` whose temporal extent is the given interval."""
    end = format_datetime(extent_end) if extent_end is not None else None
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [f"{_EXT}/item-assets/v1.0.0/schema.json"],
        "id": collection_id,
        "title": f"Generated test collection {collection_id}",
        "description": (
            f"Sentinel-2/Landsat-like items generated by stacfetch's test suite ({collection_id})."
        ),
        "keywords": ["test", "generated", "sentinel-2", "landsat"],
        "license": "CC0-1.0",
        "providers": [
            {"name": "stacfetch tests", "roles": ["producer", "host"], "url": BASE_HREF},
        ],
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [[format_datetime(extent_start), end]]},
        },
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b", "landsat-8", "landsat-9", "sentinel-1a"],
            "constellation": ["sentinel-2", "landsat", "sentinel-1"],
            "gsd": [10, 30],
            "eo:cloud_cover": {"minimum": 0, "maximum": 100},
        },
        "item_assets": {
            "red": {"type": _COG, "roles": ["data", "reflectance"], "title": "Red"},
            "thumbnail": {"type": "image/jpeg", "roles": ["thumbnail"]},
        },
        "links": [
            {"rel": "license", "href": "https://creativecommons.org/publicdomain/zero/1.0/"},
        ],
    }


def write_ndjson(items: Iterable[Mapping[str, Any]], path: str | PathLike[str]) -> int:
    """Write ``items`` as newline-delimited JSON; returns how many were written."""
    count = 0
    with open(path, "wb") as out:
        for item in items:
            out.write(orjson.dumps(item))
            out.write(b"\n")
            count += 1
    return count


def generate_items(
    collection_id: str,
    n: int,
    start: datetime,
    end: datetime,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Generate ``n`` deterministic, realistic items stamped inside ``[start, end]``.

    Naive datetimes are taken as UTC. See the module docstring for the built-in awkward cases
    (present when ``n >= 200``). Range items always lie inside the extent.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise ValueError("end must be after start")
    gen = _Generator(collection_id, start, end, random.Random(f"{collection_id}/{seed}"))
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small acyclic dicts: the cyclic GC would triple the run time
    try:
        if n >= 200:
            gen.add_specials(n)
        elif n >= 2:
            gen.add_instant("boundary", start, 0)
            gen.add_instant("boundary", end, None)
        while len(gen.items) < n:
            gen.add_instant("regular", gen.random_instant(), gen.rng.choice([0, 3, 6, 6]))
    finally:
        if gc_was_enabled:
            gc.enable()
    items = gen.items[:n]
    gen.rng.shuffle(items)
    return items


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _month_starts(start: datetime, end: datetime) -> list[datetime]:
    out: list[datetime] = []
    cur = datetime(start.year, start.month, 1, tzinfo=timezone.utc)
    while cur <= end:
        if cur >= start:
            out.append(cur)
        cur = datetime(cur.year + cur.month // 12, cur.month % 12 + 1, 1, tzinfo=timezone.utc)
    return out


def _spread(values: list[datetime], k: int) -> list[datetime]:
    """Up to ``k`` values evenly spread over ``values`` (keeping first and last)."""
    if len(values) <= k:
        return list(values)
    step = (len(values) - 1) / (k - 1)
    return [values[round(i * step)] for i in range(k)]


class _Generator:
    """Accumulates items; one instance per ``generate_items`` call."""

    def __init__(
        self, collection_id: str, start: datetime, end: datetime, rng: random.Random
    ) -> None:
        self.cid = collection_id
        self.start = start
        self.end = end
        self.rng = rng
        self.items: list[dict[str, Any]] = []

    # ----------------------------------------------------------------- cases
    def add_specials(self, n: int) -> None:
        start, end, rng = self.start, self.end, self.rng
        self.add_instant("boundary", start, 0)
        self.add_instant("boundary", end, None)
        months = _month_starts(start, end)
        years = [m for m in months if m.month == 1]
        for instant in years + _spread([m for m in months if m.month != 1], 24):
            self.add_instant("boundary", instant, rng.choice([0, 3, 6]))
        span_days = max(1, (end - start).days)
        day0 = start.replace(hour=0, minute=0, second=0, microsecond=0)
        midnights = sorted(
            {
                day0 + timedelta(days=d)
                for d in rng.sample(range(1, span_days + 1), min(10, span_days))
            }
        )
        micro = timedelta(microseconds=1)
        for instant in [m for m in midnights if start <= m <= end]:
            self.add_instant("boundary", instant, 0)
        for instant in (midnights[:4] + months[1:4])[:6]:
            for near in (instant - micro, instant + micro):
                if start <= near <= end:
                    self.add_instant("near-boundary", near, 6)
        same = self.random_instant().replace(microsecond=0)
        for _ in range(max(60, n // 50)):
            self.add_instant("same-instant", same, 0)
        self.add_range_null(start, end)
        if len(months) >= 3:
            self.add_range_null(months[1], months[min(len(months) - 1, 3)])
        for _ in range(max(6, n // 100)):
            r_start = self.random_instant()
            length = timedelta(days=rng.randint(60, 210), seconds=rng.randint(0, 86399))
            self.add_range_null(r_start, min(end, r_start + length))
        for _ in range(max(6, n // 100)):
            r_start = self.random_instant(margin=timedelta(seconds=30))
            r_end = r_start + timedelta(seconds=25, microseconds=rng.randint(0, 999_999))
            self.add_sar(r_start, r_end)
        for _ in range(max(3, n // 300)):
            mid = self.random_instant(margin=timedelta(days=16))
            self.add_wide(mid - timedelta(days=15), mid, mid + timedelta(days=15))

    def random_instant(self, margin: timedelta = timedelta(0)) -> datetime:
        lo, hi = self.start, self.end - margin
        if hi <= lo:
            hi = self.end
        total = int((hi - lo).total_seconds() * 1_000_000)
        return lo + timedelta(microseconds=self.rng.randint(0, total))

    def add_instant(self, case: str, instant: datetime, digits: int | None) -> None:
        if case == "regular" and self.rng.random() < 0.15:
            item = self._landsat(instant, digits)
        else:
            item = self._sentinel2(instant, digits)
        item["properties"]["test:case"] = case
        self.items.append(item)

    def add_range_null(self, r_start: datetime, r_end: datetime) -> None:
        rng = self.rng
        idx = len(self.items)
        item_id = f"LC_{r_start:%Y%m%d}_{r_end:%Y%m%d}_{idx:06d}"
        props: dict[str, Any] = {
            "datetime": None,
            "start_datetime": format_datetime(r_start),
            "end_datetime": format_datetime(r_end),
            "title": f"Land cover composite {r_start:%Y-%m} to {r_end:%Y-%m}",
            "proj:epsg": 4326,
            "classification:classes": [
                {"value": 1, "description": "water"},
                {"value": 2, "description": "trees"},
                {"value": 5, "description": "crops"},
            ],
            "test:case": "range-null",
        }
        if rng.random() < 0.5:
            props["io:tile_id"] = f"{rng.randint(1, 60)}{rng.choice('CDEFGHJKLMNPQRSTUVWX')}"
        assets = {
            "data": {
                "href": f"{_DATA_HREF}/{self.cid}/composite/{item_id}.tif",
                "type": _COG,
                "title": "Land cover classes",
                "roles": ["data"],
                "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 10}],
            },
        }
        item = self._feature(item_id, props, assets, [_EXT_PROJ, _EXT_RASTER, _EXT_LABEL], 1.0)
        self.items.append(item)

    def add_sar(self, r_start: datetime, r_end: datetime) -> None:
        rng = self.rng
        idx = len(self.items)
        platform = rng.choice(["sentinel-1a", "sentinel-1b"])
        item_id = (
            f"S1{platform[-1].upper()}_IW_GRDH_1SDV_{r_start:%Y%m%dT%H%M%S}_"
            f"{r_end:%Y%m%dT%H%M%S}_{idx:06d}"
        )
        props: dict[str, Any] = {
            "datetime": format_datetime(r_start + (r_end - r_start) / 2, 6),
            "start_datetime": format_datetime(r_start, 6),
            "end_datetime": format_datetime(r_end, 6),
            "platform": platform,
            "constellation": "sentinel-1",
            "sar:instrument_mode": "IW",
            "sar:frequency_band": "C",
            "sar:polarizations": ["VV", "VH"],
            "sar:product_type": "GRD",
            "sar:center_frequency": 5.405,
            "sar:looks_range": 5,
            "sar:looks_equivalent_number": 4.4,
            "sat:orbit_state": rng.choice(["ascending", "descending"]),
            "sat:relative_orbit": rng.randint(1, 175),
            "sat:absolute_orbit": rng.randint(20000, 60000),
            "test:case": "range-short",
        }
        assets = {
            pol: {
                "href": f"{_DATA_HREF}/{self.cid}/grd/{item_id}/measurement/iw-{pol}.tiff",
                "type": _COG,
                "title": f"{pol.upper()}: vertical transmit, {pol[1].upper()} receive",
                "roles": ["data"],
            }
            for pol in ("vv", "vh")
        }
        self.items.append(self._feature(item_id, props, assets, [_EXT_SAR, _EXT_SAT], 2.2))

    def add_wide(self, r_start: datetime, mid: datetime, r_end: datetime) -> None:
        item = self._sentinel2(mid, 3)
        item["id"] = f"S2_MOSAIC_{r_start:%Y%m%d}_{r_end:%Y%m%d}_{len(self.items):06d}"
        item["properties"]["start_datetime"] = format_datetime(r_start, 3)
        item["properties"]["end_datetime"] = format_datetime(r_end, 3)
        item["properties"]["test:case"] = "range-wide"
        self.items.append(item)

    # --------------------------------------------------------------- shapes
    def _cloud_cover(self) -> float | int | None:
        roll = self.rng.random()
        if roll < 0.04:
            return 0
        if roll < 0.07:
            return 100
        if roll < 0.12:
            return self.rng.randint(1, 99)
        if roll < 0.13:
            return None
        return round(self.rng.uniform(0.0, 100.0), 6)

    def _sentinel2(self, instant: datetime, digits: int | None) -> dict[str, Any]:
        rng = self.rng
        idx = len(self.items)
        platform = rng.choice(["sentinel-2a", "sentinel-2b", "sentinel-2b", "sentinel-2c"])
        zone = rng.randint(1, 60)
        band = rng.choice("CDEFGHJKLMNPQRSTUVWX")
        square = rng.choice("ABCDEFGHJK") + rng.choice("ABCDEFGHJKLMNPQRSTUV")
        tile = f"{zone:02d}{band}{square}"
        item_id = f"S2{platform[-1].upper()}_T{tile}_{instant:%Y%m%dT%H%M%S}_{idx:06d}_L2A"
        epsg = 32600 + zone if band >= "N" else 32700 + zone
        props: dict[str, Any] = {
            "datetime": format_datetime(instant, digits),
            "created": format_datetime(instant + timedelta(hours=9, seconds=rng.randint(0, 999))),
            "platform": platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "gsd": 10,
            "mgrs:utm_zone": zone,
            "mgrs:latitude_band": band,
            "mgrs:grid_square": square,
            "grid:code": f"MGRS-{tile}",
            "view:sun_azimuth": round(rng.uniform(90.0, 200.0), 9),
            "view:sun_elevation": round(rng.uniform(10.0, 70.0), 9),
            "s2:product_type": "S2MSI2A",
            "s2:processing_baseline": rng.choice(["04.00", "05.00", "05.10"]),
        }
        extensions = [_EXT_EO, _EXT_VIEW, _EXT_RASTER, f"{_EXT}/mgrs/v1.0.0/schema.json"]
        cloud = self._cloud_cover()
        if rng.random() >= 0.05:
            props["eo:cloud_cover"] = cloud
        if rng.random() < 0.05:
            props["view:sun_elevation"] = rng.randint(10, 70)
        if rng.random() < 0.03:
            props["proj:code"] = f"EPSG:{epsg}"
            extensions.append(_EXT_PROJ2)
        else:
            props["proj:epsg"] = epsg
            extensions.append(_EXT_PROJ)
        if rng.random() < 0.5:
            props["s2:water_percentage"] = round(rng.uniform(0.0, 40.0), 6)
            props["s2:vegetation_percentage"] = round(rng.uniform(0.0, 80.0), 6)
            props["s2:nodata_pixel_percentage"] = rng.choice([0, round(rng.uniform(0, 90), 6)])
            extensions.append(_EXT_S2)
        if rng.random() < 0.3:
            props["sat:orbit_state"] = "descending"
            props["sat:relative_orbit"] = rng.randint(1, 143)
            extensions.append(_EXT_SAT)
        if rng.random() < 0.2:
            props["processing:software"] = {
                "sentinel-2-to-stac": rng.choice(["v2023.1", "v2024.2"])
            }
            extensions.append(_EXT_PROC)
        origin_x = rng.choice([300000, 399960, 499980, 600000, 699960])
        origin_y = rng.randint(1000, 9000) * 1000
        month = f"{instant.year}/{instant.month}"
        folder = f"{_DATA_HREF}/{self.cid}/{zone}/{band}/{square}/{month}/{item_id}"
        assets: dict[str, Any] = {}
        for key, name, common, centre, fwhm, gsd in _S2_BANDS:
            assets[key] = {
                "href": f"{folder}/{name}.tif",
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
                "proj:shape": [109800 // gsd, 109800 // gsd],
                "proj:transform": [gsd, 0, origin_x, 0, -gsd, origin_y],
                "raster:bands": [
                    {"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}
                ],
                "roles": ["data", "reflectance"],
            }
        assets["visual"] = {
            "href": f"{folder}/TCI.tif",
            "type": _COG,
            "title": "True color image",
            "roles": ["visual"],
        }
        if rng.random() >= 0.1:
            assets["thumbnail"] = {
                "href": f"{folder}/L2A_PVI.jpg",
                "type": "image/jpeg",
                "title": "Thumbnail of preview image",
                "roles": ["thumbnail"],
            }
        assets["granule_metadata"] = {
            "href": f"{folder}/metadata.xml",
            "type": "application/xml",
            "roles": ["metadata"],
        }
        return self._feature(item_id, props, assets, sorted(extensions), 0.9)

    def _landsat(self, instant: datetime, digits: int | None) -> dict[str, Any]:
        rng = self.rng
        idx = len(self.items)
        platform = rng.choice(["landsat-8", "landsat-9"])
        path, row = rng.randint(1, 233), rng.randint(1, 248)
        item_id = f"LC0{platform[-1]}_L2SP_{path:03d}{row:03d}_{instant:%Y%m%d}_02_T1_{idx:06d}"
        zone = rng.randint(1, 60)
        props: dict[str, Any] = {
            "datetime": format_datetime(instant, digits),
            "platform": platform,
            "instruments": ["oli", "tirs"],
            "gsd": 30,
            "description": "Landsat Collection 2 Level-2",
            "eo:cloud_cover": self._cloud_cover(),
            "proj:epsg": 32600 + zone,
            "proj:shape": [rng.randint(7700, 8100), rng.randint(7600, 8000)],
            "view:off_nadir": rng.choice([0, 0, 0.0]),
            "view:sun_elevation": round(rng.uniform(10.0, 70.0), 8),
            "landsat:wrs_path": f"{path:03d}",
            "landsat:wrs_row": f"{row:03d}",
            "landsat:collection_category": "T1",
            "landsat:correction": "L2SP",
        }
        if props["eo:cloud_cover"] is not None:
            props["landsat:cloud_cover_land"] = props["eo:cloud_cover"]
        folder = f"{_DATA_HREF}/{self.cid}/landsat-c2/level-2/{path:03d}/{row:03d}/{item_id}"
        assets: dict[str, Any] = {}
        for key, name, common, centre, fwhm, gsd in _LS_BANDS:
            assets[key] = {
                "href": f"{folder}/{item_id}_SR_B{name[-1]}.TIF",
                "type": _COG,
                "title": f"{common.capitalize()} Band",
                "eo:bands": [
                    {
                        "name": name,
                        "common_name": common,
                        "center_wavelength": centre,
                        "full_width_half_max": fwhm,
                    }
                ],
                "raster:bands": [{"scale": 2.75e-05, "offset": -0.2, "data_type": "uint16"}],
                "gsd": gsd,
                "roles": ["data", "reflectance"],
            }
        assets["mtl.json"] = {
            "href": f"{folder}/{item_id}_MTL.json",
            "type": "application/json",
            "roles": ["metadata"],
        }
        extensions = [_EXT_EO, _EXT_PROJ, _EXT_RASTER, _EXT_VIEW]
        return self._feature(item_id, props, assets, extensions, 1.6)

    def _feature(
        self,
        item_id: str,
        props: dict[str, Any],
        assets: dict[str, Any],
        extensions: list[str],
        size_deg: float,
    ) -> dict[str, Any]:
        rng = self.rng
        lon = rng.uniform(-175.0, 175.0 - size_deg)
        lat = rng.uniform(-75.0, 75.0 - size_deg)
        skew = rng.uniform(0.0, size_deg * 0.3)
        ring = [
            [lon + skew, lat + size_deg],
            [lon, lat],
            [lon + size_deg, lat + rng.uniform(0.0, 0.01)],
            [lon + size_deg, lat + size_deg],
            [lon + skew, lat + size_deg],
        ]
        ring = [[round(x, 9), round(y, 9)] for x, y in ring]
        xs = [p[0] for p in ring]
        ys = [p[1] for p in ring]
        bbox = [min(xs), min(ys), max(xs), max(ys)]
        bbox = [math.floor(bbox[0] * 1e6) / 1e6, math.floor(bbox[1] * 1e6) / 1e6]
        bbox += [math.ceil(max(xs) * 1e6) / 1e6, math.ceil(max(ys) * 1e6) / 1e6]
        coll_href = f"{BASE_HREF}/collections/{self.cid}"
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": extensions,
            "id": item_id,
            "collection": self.cid,
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "bbox": bbox,
            "properties": props,
            "links": [
                {
                    "rel": "self",
                    "type": "application/geo+json",
                    "href": f"{coll_href}/items/{item_id}",
                },
                {"rel": "parent", "type": "application/json", "href": coll_href},
                {"rel": "collection", "type": "application/json", "href": coll_href},
                {"rel": "root", "type": "application/json", "href": BASE_HREF},
                {"rel": "via", "type": "application/xml", "href": f"{_DATA_HREF}/{item_id}.xml"},
            ],
            "assets": assets,
        }
