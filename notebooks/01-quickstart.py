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
# # stacfetch quickstart
#
# Fetch every STAC item of a search, exactly once, into a GeoDataFrame, and watch it happen.
#
# The catalog comes from the environment, so the same notebook runs on Binder against a public
# STAC API and in CI against a local test server:
#
# | variable | default |
# |---|---|
# | `STACFETCH_CATALOG_URL` | `https://earth-search.aws.element84.com/v1` (Earth Search) |
# | `STACFETCH_COLLECTIONS` | `sentinel-2-c1-l2a,landsat-c2-l2` (this notebook uses the first) |
# | `STACFETCH_DATETIME` | `2024-06-01/2024-08-31` (empty: no datetime filter) |
# | `STACFETCH_BBOX` | `7.0,46.6,8.0,47.2`, around Bern (empty: no bbox) |

# %%
import os

import shapely
from IPython.display import display

import stacfetch

CATALOG_URL = os.environ.get("STACFETCH_CATALOG_URL", "https://earth-search.aws.element84.com/v1")
COLLECTIONS = os.environ.get("STACFETCH_COLLECTIONS", "sentinel-2-c1-l2a,landsat-c2-l2").split(",")
DATETIME = os.environ.get("STACFETCH_DATETIME", "2024-06-01/2024-08-31") or None
BBOX_TEXT = os.environ.get("STACFETCH_BBOX", "7.0,46.6,8.0,47.2")
BBOX = [float(v) for v in BBOX_TEXT.split(",")] if BBOX_TEXT else None
print(f"{CATALOG_URL} · {COLLECTIONS[0]} · datetime={DATETIME} · bbox={BBOX}")

# %% [markdown]
# ## One collection
#
# An `Ingestor` checks its arguments at once and sends nothing until you ask for the items.

# %%
ing = stacfetch.Ingestor(
    CATALOG_URL,
    collections=COLLECTIONS[:1],
    datetime=DATETIME,
    bbox=BBOX,
    concurrency=8,
)
display(ing)

# %% [markdown]
# `ingest()` splits the search into datetime chunks, fetches them in parallel and shows a live
# progress bar: blue while running, green when every chunk arrived, red if some failed. Under
# the bar, the *timeline* shows the entry's time range with one segment per chunk, coloured by
# state (grey pending, blue running, green done, orange split, red failed); hover a segment
# for its interval, items and attempts. Both stay here after the run.

# %%
gdf = ing.ingest()

# %% [markdown]
# What the run did, in numbers: items, duplicates dropped, requests, retries, time.

# %%
ing.summary

# %% [markdown]
# The result is a GeoDataFrame with one row per item: the STAC properties are columns, the
# footprint is the geometry. (A search may match nothing: the notebook says so and goes on.)

# %%
if len(gdf):
    shown = [c for c in ("id", "collection", "datetime", "geometry") if c in gdf.columns]
    display(gdf[shown].head())
else:
    print("The search matched no items: widen DATETIME or BBOX to see some.")

# %% [markdown]
# Each item exactly once, and nothing failed:

# %%
unique = gdf["id"].is_unique if "id" in gdf.columns else True
print(f"{len(gdf):,} items, ids unique: {unique}, failed chunks: {len(ing.failures)}")

# %% [markdown]
# The footprints of the first few hundred items, drawn by shapely (no plotting library needed):

# %%
if len(gdf) and "geometry" in gdf.columns:
    display(shapely.GeometryCollection(list(gdf.geometry.head(300))))
else:
    print("No footprints to draw.")

# %% [markdown]
# In a script the same run is one call; `progress=False` keeps it quiet:
#
# ```python
# gdf = stacfetch.ingest(url, collections=["sentinel-2-c1-l2a"], datetime="2024-06",
#                        bbox=[7.0, 46.6, 8.0, 47.2], progress=False)
# ```
#
# Next: [02-matrix](02-matrix.ipynb) fetches several collections at once.
