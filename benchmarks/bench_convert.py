"""Benchmark: STAC items -> Arrow / GeoDataFrame / GeoParquet, against stac-geoparquet and rustac.

Each contender runs in its own subprocess (so peak RSS is its own), interleaved A B C A B C
for ``--repeat`` rounds; the table shows medians. Items come from a generator in this file
modelled on real Sentinel-2 and Landsat items (~20 assets, ~30-40 properties, optional
properties, ints and floats mixed, a few MultiPolygons and range items); every item is a fresh
JSON parse, as if it came from an HTTP response.

Contenders:
  arrow   stacfetch items_to_arrow(items)
  gdf     stacfetch arrow_to_geodataframe(items_to_arrow(items))
  sg      stac_geoparquet.arrow.parse_stac_items_to_arrow(items).read_all()
  rustac  rustac.to_arrow(items) (needs arro3-core), then pa.table(...)
  stream  stacfetch's to_parquet path: items_to_arrow(page) for pages of 1000 items,
          generated lazily, written as parts of 20,000 rows (write_part, unify_parts)

"seconds" times the conversion only (not the generation of the items); "peak RSS" is the
child's ru_maxrss; "added RSS" is the peak minus the RSS once the items exist, i.e. the memory
the conversion itself needed. The items are generated with the garbage collector off and then
frozen (gc.freeze), so that no contender pays for collections that scan the input.

Usage (from the repository root):
    python benchmarks/bench_convert.py --items 50000 --repeat 3
    python benchmarks/bench_convert.py --items 1000000 --only stream --repeat 1
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONTENDERS = ("arrow", "gdf", "sg", "rustac", "stream")
PAGE = 1000

# --- the item generator --------------------------------------------------------------------

_T0 = datetime(2018, 1, 1, tzinfo=timezone.utc)
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"

# (asset key, band name, common name, gsd, centre wavelength, fwhm)
_S2_BANDS = [
    ("coastal", "B01", "coastal", 60, 0.443, 0.027),
    ("blue", "B02", "blue", 10, 0.49, 0.098),
    ("green", "B03", "green", 10, 0.56, 0.045),
    ("red", "B04", "red", 10, 0.665, 0.038),
    ("rededge1", "B05", "rededge", 20, 0.704, 0.019),
    ("rededge2", "B06", "rededge", 20, 0.74, 0.018),
    ("rededge3", "B07", "rededge", 20, 0.783, 0.028),
    ("nir", "B08", "nir", 10, 0.842, 0.145),
    ("nir08", "B8A", "nir08", 20, 0.865, 0.033),
    ("nir09", "B09", "nir09", 60, 0.945, 0.026),
    ("swir16", "B11", "swir16", 20, 1.61, 0.143),
    ("swir22", "B12", "swir22", 20, 2.19, 0.242),
]
_S2_AUX = [("scl", 20, "Scene classification map (SCL)"), ("aot", 20, "Aerosol optical thickness")]
_S2_AUX += [("wvp", 20, "Water Vapour (WVP)"), ("cloud", 20, "Cloud Probabilities")]
_S2_META = [("granule_metadata", "application/xml"), ("tileinfo_metadata", "application/json")]
_S2_META += [("product_metadata", "application/xml"), ("thumbnail", "image/jpeg")]

_LS_BANDS = [
    ("coastal", "OLI_B1", "coastal", 0.44, 0.02),
    ("blue", "OLI_B2", "blue", 0.48, 0.06),
    ("green", "OLI_B3", "green", 0.56, 0.06),
    ("red", "OLI_B4", "red", 0.65, 0.04),
    ("nir08", "OLI_B5", "nir08", 0.87, 0.03),
    ("swir16", "OLI_B6", "swir16", 1.61, 0.09),
    ("swir22", "OLI_B7", "swir22", 2.2, 0.19),
]
_LS_ST = ["qa", "drad", "emis", "emsd", "trad", "urad", "atran", "cdist"]
_LS_META = [("mtl.txt", "text/plain"), ("mtl.xml", "application/xml")]
_LS_META += [("mtl.json", "application/json"), ("ang", "text/plain")]


def _stamp(t: datetime, digits: int) -> str:
    text = t.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (text[: len(text) - 6 + digits] if digits else text[:-7]) + "Z"


def _footprint(rng: random.Random) -> tuple[dict[str, Any], list[float]]:
    x, y = rng.uniform(-179.0, 178.0), rng.uniform(-60.0, 70.0)
    ring = [[x, y], [x + 1.1, y + 0.02], [x + 1.12, y + 1.0], [x + 0.01, y + 0.98], [x, y]]
    ring = [[round(a + rng.uniform(0, 1e-4), 9), round(b, 9)] for a, b in ring[:-1]]
    ring.append(list(ring[0]))
    if rng.random() < 0.02:  # an antimeridian-split scene
        other = [[a - 3.0, b] for a, b in ring]
        geometry: dict[str, Any] = {"type": "MultiPolygon", "coordinates": [[ring], [other]]}
        return geometry, [x - 3.0, y, x + 1.12, y + 1.0]
    return {"type": "Polygon", "coordinates": [ring]}, [x, y, x + 1.12, y + 1.0]


def _s2_item(i: int, rng: random.Random) -> dict[str, Any]:
    when = _T0 + timedelta(seconds=i * 617 + rng.random())
    tile = f"{rng.randint(1, 60):02d}{rng.choice('CDEFGHJKLMNPQRSTUVWX')}{rng.choice('ABCDEF')}D"
    item_id = f"S2{rng.choice('AB')}_T{tile}_{when:%Y%m%dT%H%M%S}_L2A_{i}"
    base = f"https://e84-earth-search-sentinel-data.s3.us-west-2.amazonaws.com/{item_id}"
    epsg = 32600 + rng.randint(1, 60)
    geometry, bbox = _footprint(rng)
    assets: dict[str, Any] = {}
    for key, band, common, gsd, wave, fwhm in _S2_BANDS:
        assets[key] = {
            "href": f"{base}/{band}.tif",
            "type": _COG,
            "title": f"{common} - {gsd}m",
            "eo:bands": [
                {
                    "name": band,
                    "common_name": common,
                    "center_wavelength": wave,
                    "full_width_half_max": fwhm,
                }
            ],
            "gsd": gsd,
            "proj:shape": [109800 // gsd, 109800 // gsd],
            "proj:transform": [gsd, 0, 399960, 0, -gsd, 4500000],
            "raster:bands": [
                {
                    "nodata": 0,
                    "data_type": "uint16",
                    "spatial_resolution": gsd,
                    "scale": 0.0001,
                    "offset": -0.1,
                }
            ],
            "file:checksum": f"1220{rng.getrandbits(128):032x}",
            "file:size": rng.randint(1_000_000, 60_000_000),
            "roles": ["data", "reflectance"],
        }
    for key, gsd, title in _S2_AUX:
        assets[key] = {
            "href": f"{base}/{key.upper()}.tif",
            "type": _COG,
            "title": title,
            "gsd": gsd,
            "proj:shape": [5490, 5490],
            "proj:transform": [gsd, 0, 399960, 0, -gsd, 4500000],
            "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": gsd}],
            "file:size": rng.randint(50_000, 2_000_000),
            "roles": ["data"],
        }
    for key, media in _S2_META:
        assets[key] = {
            "href": f"{base}/{key}",
            "type": media,
            "roles": ["metadata"],
            "file:size": rng.randint(1000, 200_000),
        }
    cloud: float | int = 0 if rng.random() < 0.1 else round(rng.uniform(0, 100), 6)
    props: dict[str, Any] = {
        "created": _stamp(when + timedelta(hours=9), 3),
        "platform": f"sentinel-2{item_id[2].lower()}",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": cloud,
        "proj:epsg": epsg,
        "proj:centroid": {"lat": round(bbox[1] + 0.5, 5), "lon": round(bbox[0] + 0.5, 5)},
        "mgrs:utm_zone": epsg - 32600,
        "mgrs:latitude_band": tile[2],
        "mgrs:grid_square": tile[3:5],
        "grid:code": f"MGRS-{tile[:5]}",
        "view:azimuth": rng.uniform(0, 360),
        "view:incidence_angle": rng.uniform(0, 12),
        "view:sun_azimuth": rng.uniform(0, 360),
        "view:sun_elevation": rng.uniform(0, 90),
        "s2:tile_id": f"S2A_OPER_MSI_L2A_TL_2APS_{when:%Y%m%dT%H%M%S}_A{i:06d}_T{tile[:5]}",
        "s2:degraded_msi_data_percentage": rng.uniform(0, 1),
        "s2:nodata_pixel_percentage": rng.uniform(0, 100),
        "s2:saturated_defective_pixel_percentage": 0,
        "s2:cloud_shadow_percentage": rng.uniform(0, 10),
        "s2:vegetation_percentage": rng.uniform(0, 100),
        "s2:not_vegetated_percentage": rng.uniform(0, 100),
        "s2:water_percentage": rng.uniform(0, 100),
        "s2:unclassified_percentage": rng.uniform(0, 10),
        "s2:medium_proba_clouds_percentage": rng.uniform(0, 50),
        "s2:high_proba_clouds_percentage": rng.uniform(0, 50),
        "s2:thin_cirrus_percentage": rng.uniform(0, 5),
        "s2:snow_ice_percentage": 0 if rng.random() < 0.5 else rng.uniform(0, 5),
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": rng.choice(["05.00", "05.09", "05.10"]),
        "s2:product_uri": f"{item_id}.SAFE",
        "s2:generation_time": _stamp(when + timedelta(hours=7), 6),
        "s2:datatake_id": f"GS2A_{when:%Y%m%dT%H%M%S}_{i:06d}_N05.10",
        "s2:reflectance_conversion_factor": rng.uniform(0.96, 1.04),
        "datetime": _stamp(when, 6),
        "storage:platform": "AWS",
        "storage:requester_pays": False,
        "processing:software": {"sentinel-2-c1-l2a-to-stac": "v2024.02.01"},
        "updated": _stamp(when + timedelta(hours=9), 3),
    }
    props["s2:dark_features_percentage"] = rng.uniform(0, 5)
    props["s2:datastrip_id"] = f"S2A_OPER_MSI_L2A_DS_2APS_{when:%Y%m%dT%H%M%S}_N05.10"
    extensions = [
        "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    ]
    return _item(item_id, "sentinel-2-c1-l2a", geometry, bbox, props, assets, extensions)


def _landsat_item(i: int, rng: random.Random) -> dict[str, Any]:
    when = _T0 + timedelta(seconds=i * 613 + rng.random())
    path, row = rng.randint(1, 233), rng.randint(1, 248)
    item_id = f"LC08_L2SP_{path:03d}{row:03d}_{when:%Y%m%d}_02_T1_{i}"
    base = f"https://landsateuwest.blob.core.windows.net/landsat-c2/level-2/{item_id}/{item_id}"
    geometry, bbox = _footprint(rng)
    assets: dict[str, Any] = {}
    for key, band, common, wave, fwhm in _LS_BANDS:
        assets[key] = {
            "href": f"{base}_SR_{band[-2:]}.TIF",
            "eo:bands": [
                {
                    "name": band,
                    "center_wavelength": wave,
                    "full_width_half_max": fwhm,
                    "common_name": common,
                    "description": f"Visible {common}",
                }
            ],
            "description": f"Collection 2 Level-2 {common} Band Surface Reflectance",
            "type": _COG,
            "roles": ["data", "reflectance"],
            "title": f"{common} Band",
            "raster:bands": [
                {
                    "scale": 2.75e-05,
                    "nodata": 0,
                    "offset": -0.2,
                    "data_type": "uint16",
                    "spatial_resolution": 30,
                }
            ],
        }
    for key in _LS_ST:
        assets[key] = {
            "href": f"{base}_ST_{key.upper()}.TIF",
            "type": _COG,
            "roles": ["data"],
            "title": f"{key} Band",
            "description": f"Collection 2 Level-2 {key} Band",
            "raster:bands": [
                {
                    "scale": 0.001,
                    "nodata": -9999,
                    "data_type": "int16",
                    "spatial_resolution": 30,
                    "unit": "watt/steradian/square_meter",
                }
            ],
        }
    assets["qa_pixel"] = {
        "href": f"{base}_QA_PIXEL.TIF",
        "type": _COG,
        "roles": ["cloud", "cloud-shadow"],
        "title": "Pixel Quality Assessment Band",
        "classification:bitfields": [
            {
                "name": name,
                "length": 1,
                "offset": k,
                "description": f"{name} mask",
                "classes": [{"name": f"not_{name}", "value": 0}, {"name": name, "value": 1}],
            }
            for k, name in enumerate(["fill", "dilated_cloud", "cirrus", "cloud", "shadow"])
        ],
        "raster:bands": [
            {"unit": "bit index", "nodata": 1, "data_type": "uint16", "spatial_resolution": 30}
        ],
    }
    for key, media in _LS_META:
        assets[key] = {
            "href": f"{base}_{key.upper()}",
            "type": media,
            "roles": ["metadata"],
            "title": f"Product Metadata File ({key})",
        }
    props: dict[str, Any] = {
        "gsd": 30,
        "created": _stamp(when + timedelta(days=3), 6),
        "sci:doi": "10.5066/P9OGBGM6",
        "datetime": _stamp(when, 6),
        "platform": "landsat-8",
        "proj:epsg": 32600 + rng.randint(1, 60),
        "proj:shape": [8001, 7871],
        "description": "Landsat Collection 2 Level-2",
        "instruments": ["oli", "tirs"],
        "eo:cloud_cover": round(rng.uniform(0, 100), 2),
        "proj:transform": [30.0, 0.0, 138585.0, 0.0, -30.0, 4429515.0],
        "view:off_nadir": 0,
        "landsat:wrs_row": f"{row:03d}",
        "landsat:scene_id": f"LC8{path:03d}{row:03d}{when:%Y%j}LGN00",
        "landsat:wrs_path": f"{path:03d}",
        "landsat:wrs_type": "2",
        "view:sun_azimuth": rng.uniform(0, 360),
        "landsat:correction": "L2SP",
        "view:sun_elevation": rng.uniform(0, 90),
        "landsat:cloud_cover_land": rng.uniform(0, 100),
        "landsat:collection_number": "02",
        "landsat:collection_category": rng.choice(["T1", "T2"]),
    }
    extensions = [
        "https://stac-extensions.github.io/raster/v1.0.0/schema.json",
        "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
        "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
        "https://landsat.usgs.gov/stac/landsat-extension/v1.1.1/schema.json",
        "https://stac-extensions.github.io/classification/v1.0.0/schema.json",
    ]
    return _item(item_id, "landsat-c2-l2", geometry, bbox, props, assets, extensions)


def _item(
    item_id: str,
    collection: str,
    geometry: dict[str, Any],
    bbox: list[float],
    props: dict[str, Any],
    assets: dict[str, Any],
    extensions: list[str],
) -> dict[str, Any]:
    root = "https://planetarycomputer.microsoft.com/api/stac/v1"
    links = [
        {
            "rel": "collection",
            "type": "application/json",
            "href": f"{root}/collections/{collection}",
        },
        {"rel": "parent", "type": "application/json", "href": f"{root}/collections/{collection}"},
        {"rel": "root", "type": "application/json", "href": root},
        {
            "rel": "self",
            "type": "application/geo+json",
            "href": f"{root}/collections/{collection}/items/{item_id}",
        },
        {
            "rel": "license",
            "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice",
        },
    ]
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": extensions,
        "id": item_id,
        "geometry": geometry,
        "bbox": bbox,
        "properties": props,
        "links": links,
        "assets": assets,
        "collection": collection,
    }
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(item))
    return parsed


_TEMPLATES: dict[str, bytes] = {}


def _template(kind: str) -> bytes:
    if kind not in _TEMPLATES:
        build = _landsat_item if kind == "landsat" else _s2_item
        _TEMPLATES[kind] = orjson.dumps(build(0, random.Random(0)))
    return _TEMPLATES[kind]


def make_item(i: int, seed: int = 0) -> dict[str, Any]:
    """Benchmark item number ``i`` of the benchmark stream (deterministic for a seed).

    A fresh parse of a per-collection template, then the per-item values: id, hrefs,
    geometry, bbox, timestamps, numbers, optional properties and extensions.
    """
    rng = random.Random(seed * 1_000_003 + i)
    landsat = rng.random() < 0.3
    item: dict[str, Any] = orjson.loads(_template("landsat" if landsat else "s2"))
    old_id = item["id"]
    when = _T0 + timedelta(seconds=i * 611, microseconds=rng.randrange(1_000_000))
    new_id = f"{old_id.rsplit('_', 1)[0]}_{i}_{seed}"
    item["id"] = new_id
    item["geometry"], item["bbox"] = _footprint(rng)
    for asset in item["assets"].values():
        asset["href"] = asset["href"].replace(old_id, new_id)
        if "file:size" in asset:
            asset["file:size"] = rng.randrange(1000, 60_000_000)
    for link in item["links"]:
        link["href"] = link["href"].replace(old_id, new_id)
    props = item["properties"]
    props["datetime"] = _stamp(when, 6)
    props["created"] = _stamp(when + timedelta(hours=9), 3 if not landsat else 6)
    props["eo:cloud_cover"] = 0 if rng.random() < 0.1 else round(rng.uniform(0, 100), 6)
    props["view:sun_azimuth"] = rng.uniform(0, 360)
    props["view:sun_elevation"] = rng.uniform(0, 90)
    props["proj:epsg"] = 32600 + rng.randint(1, 60)
    if landsat:
        props["landsat:cloud_cover_land"] = rng.uniform(0, 100)
        return item
    props["updated"] = props["created"]
    props["s2:snow_ice_percentage"] = 0 if rng.random() < 0.5 else rng.uniform(0, 5)
    props["s2:water_percentage"] = rng.uniform(0, 100)
    if rng.random() < 0.3:  # optional properties, absent on some items
        del props["s2:dark_features_percentage"], props["s2:datastrip_id"]
    if rng.random() < 0.05:  # an extra extension on a few items
        item["stac_extensions"].append(
            "https://stac-extensions.github.io/processing/v1.1.0/schema.json"
        )
        props["processing:level"] = "L2"
    if rng.random() < 0.02:  # a range item
        props["start_datetime"] = props["datetime"]
        props["end_datetime"] = _stamp(when + timedelta(seconds=30), 6)
    return item


def iter_pages(n: int, page_size: int = 1000, seed: int = 0) -> Iterator[list[dict[str, Any]]]:
    """Yield ``n`` items in pages, generated lazily (a page at a time in memory)."""
    for start in range(0, n, page_size):
        yield [make_item(i, seed) for i in range(start, min(n, start + page_size))]


def make_items(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """All ``n`` items in one list."""
    return [item for page in iter_pages(n, 1000, seed) for item in page]


# --- one measurement (in a child process) --------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _converter(name: str) -> Callable[[list[dict[str, Any]]], Any]:
    if name == "arrow":
        from stacfetch._formats.arrow import items_to_arrow

        return items_to_arrow
    if name == "gdf":
        from stacfetch._formats.arrow import items_to_arrow as to_arrow
        from stacfetch._formats.tables import arrow_to_geodataframe

        return lambda items: arrow_to_geodataframe(to_arrow(items))
    if name == "sg":
        from stac_geoparquet.arrow import parse_stac_items_to_arrow

        return lambda items: parse_stac_items_to_arrow(items).read_all()
    if name == "rustac":
        import pyarrow as pa
        import rustac

        return lambda items: pa.table(rustac.to_arrow(items))
    raise ValueError(name)


def _child(name: str, n: int) -> dict[str, Any]:
    if name == "stream":
        return _child_stream(n)
    convert = _converter(name)
    convert(make_items(5))  # imports and first-call costs out of the timing
    gc.disable()
    items = make_items(n)
    gc.enable()
    gc.freeze()
    base = _current_rss_mb()
    start = time.perf_counter()
    result = convert(items)
    seconds = time.perf_counter() - start
    assert len(result) == n, (name, len(result))
    return {"seconds": seconds, "peak_mb": _rss_mb(), "base_mb": base}


def _child_stream(n: int) -> dict[str, Any]:
    from pathlib import Path

    from stacfetch._formats.arrow import items_to_arrow
    from stacfetch._formats.geoparquet import read_arrow, unify_parts, write_part
    from stacfetch._formats.tables import concat_tables
    from stacfetch._run.parquet import FLUSH_ROWS

    items_to_arrow(make_items(5))
    directory = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    base = _current_rss_mb()
    seconds = 0.0
    try:
        held: list[Any] = []
        schema = None
        written: list[Path] = []

        def flush() -> None:
            nonlocal schema
            name = directory / f"part-{len(written):05d}.parquet"
            schema = write_part(concat_tables(held), name, schema)
            written.append(name)
            held.clear()

        for page in iter_pages(n, PAGE):
            start = time.perf_counter()
            held.append(items_to_arrow(page))
            if sum(t.num_rows for t in held) >= FLUSH_ROWS:  # the parts to_parquet writes
                flush()
            seconds += time.perf_counter() - start
            del page
        start = time.perf_counter()
        if held:
            flush()
        unify_parts(directory)
        parts = written
        seconds += time.perf_counter() - start
        peak = _rss_mb()
        rows = sum(read_arrow(part).num_rows for part in parts)
        assert rows == n, rows
        size = sum(part.stat().st_size for part in parts) / 2**20
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "base_mb": base,
        "parts": len(parts),
        "disk_mb": size,
    }


# --- the parent: interleaved runs, markdown table ------------------------------------------


def _run(name: str, n: int) -> dict[str, Any] | None:
    command = [sys.executable, __file__, "--child", name, "--items", str(n)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {name}: failed ({last})", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _table(n: int, results: dict[str, list[dict[str, Any]]]) -> str:
    medians = {
        name: {
            k: statistics.median(run[k] for run in runs) for k in ("seconds", "peak_mb", "base_mb")
        }
        for name, runs in results.items()
        if runs
    }
    ref = medians.get("sg")
    lines = [
        f"{n:,} items, median of {max(len(r) for r in results.values())} runs",
        "",
        "| contender | seconds | items/s | peak RSS MB | added RSS MB | speed vs sg | added RSS"
        " vs sg |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in medians.items():
        added = m["peak_mb"] - m["base_mb"]
        speed = f"{ref['seconds'] / m['seconds']:.2f}x" if ref else "-"
        memory = f"{added / (ref['peak_mb'] - ref['base_mb']):.2f}" if ref else "-"
        lines.append(
            f"| {name} | {m['seconds']:.2f} | {n / m['seconds']:,.0f} | {m['peak_mb']:,.0f} |"
            f" {added:,.0f} | {speed} | {memory} |"
        )
    for name, runs in results.items():
        if name == "stream" and runs:
            lines.append("")
            lines.append(
                f"stream: {runs[-1]['parts']} part files, {runs[-1]['disk_mb']:.0f} MB on disk"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.items)))
        return
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {sorted(unknown)}")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_number in range(args.repeat):
        for name in names:
            print(f"round {round_number + 1}: {name} ...", file=sys.stderr, flush=True)
            result = _run(name, args.items)
            if result is not None:
                results[name].append(result)
    print(_table(args.items, results))


if __name__ == "__main__":
    main()
