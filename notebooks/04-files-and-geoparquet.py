# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Files: GeoParquet out, items in
#
# For large searches, keep the items on disk instead of in memory: `to_parquet()` streams
# every page straight into a GeoParquet dataset, with bounded memory, and resumes where it
# stopped if the run is interrupted. File mode reads items back from files (GeoParquet,
# FeatureCollections, ndjson) through the same pipeline as a STAC API.
#
# Settings come from `STACFETCH_CATALOG_URL`, `STACFETCH_COLLECTIONS`, `STACFETCH_DATETIME`
# and `STACFETCH_BBOX` (see [01-quickstart](01-quickstart.ipynb)).

# %%
import os
from pathlib import Path

from IPython.display import display

import stacfetch

CATALOG_URL = os.environ.get("STACFETCH_CATALOG_URL", "https://earth-search.aws.element84.com/v1")
COLLECTIONS = os.environ.get("STACFETCH_COLLECTIONS", "sentinel-2-c1-l2a,landsat-c2-l2").split(",")
DATETIME = os.environ.get("STACFETCH_DATETIME", "2024-06-01/2024-08-31") or None
BBOX_TEXT = os.environ.get("STACFETCH_BBOX", "7.0,46.6,8.0,47.2")
BBOX = [float(v) for v in BBOX_TEXT.split(",")] if BBOX_TEXT else None
OUT = Path("stacfetch-items.parquet")
print(f"{CATALOG_URL} · {COLLECTIONS} · datetime={DATETIME} · bbox={BBOX}")

# %% [markdown]
# ## Stream to GeoParquet
#
# The output is a directory of part files plus a small manifest that records which chunks are
# on disk. `overwrite=True` starts afresh; without it, the same call on an unfinished dataset
# resumes it.

# %%
ing = stacfetch.Ingestor(
    CATALOG_URL,
    collections=COLLECTIONS,
    datetime=DATETIME,
    bbox=BBOX,
    concurrency=8,
)
path = ing.to_parquet(OUT, overwrite=True)
sorted(p.name for p in path.iterdir())

# %% [markdown]
# ## Read it back
#
# `stacfetch.read_geoparquet` reads the whole directory as one GeoDataFrame; geopandas,
# DuckDB or rustac read the part files too.

# %%
gdf = stacfetch.read_geoparquet(path)
if len(gdf):
    duplicates = gdf.duplicated(["collection", "id"]).sum()
    print(f"{len(gdf):,} items, {duplicates} duplicates")
    display(gdf["collection"].value_counts())
else:
    print("The search matched no items: the dataset is empty (it keeps the base columns).")
    print("columns:", ", ".join(gdf.columns))
    gdf = None

# %% [markdown]
# ## File mode
#
# `source_file=` takes a file, a directory or a glob instead of a STAC API. The items go
# through the same pipeline (the same dedup, the same progress, the same GeoDataFrame), so
# local files and live searches mix in one workflow.

# %%
if gdf is not None:
    from_files = stacfetch.Ingestor(source_file=str(path))
    again = from_files.ingest()
else:
    again = None
    print("Nothing to read back in file mode: the run fetched no items.")

# %%
if gdf is not None and again is not None:
    fetched = set(zip(gdf["collection"], gdf["id"], strict=True))
    read = set(zip(again["collection"], again["id"], strict=True))
    print(f"{len(again):,} items read from {path}; the same items as fetched: {read == fetched}")
else:
    print("No items were fetched, so there is nothing to compare.")
