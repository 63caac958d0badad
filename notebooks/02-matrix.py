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
# # Several collections at once: a matrix run
#
# Each collection is a *matrix entry* with its own pipeline; the entries run in parallel and
# share one concurrency budget per host. Every entry gets its own live progress bar.
#
# Settings come from `STACFETCH_CATALOG_URL`, `STACFETCH_COLLECTIONS`, `STACFETCH_DATETIME`
# and `STACFETCH_BBOX` (see [01-quickstart](01-quickstart.ipynb)); by default two
# collections of Earth Search over Bern, summer 2024.

# %%
import os

from IPython.display import display

import stacfetch

CATALOG_URL = os.environ.get("STACFETCH_CATALOG_URL", "https://earth-search.aws.element84.com/v1")
COLLECTIONS = os.environ.get("STACFETCH_COLLECTIONS", "sentinel-2-c1-l2a,landsat-c2-l2").split(",")
DATETIME = os.environ.get("STACFETCH_DATETIME", "2024-06-01/2024-08-31") or None
BBOX_TEXT = os.environ.get("STACFETCH_BBOX", "7.0,46.6,8.0,47.2")
BBOX = [float(v) for v in BBOX_TEXT.split(",")] if BBOX_TEXT else None
print(f"{CATALOG_URL} · {COLLECTIONS} · datetime={DATETIME} · bbox={BBOX}")

# %% [markdown]
# ## `collections=[...]`: one entry per collection

# %%
ing = stacfetch.Ingestor(
    CATALOG_URL,
    collections=COLLECTIONS,
    datetime=DATETIME,
    bbox=BBOX,
    concurrency=8,
)
gdf = ing.ingest()

# %% [markdown]
# One GeoDataFrame for the whole run; the `collection` column says where each row came from.

# %%
if len(gdf):
    display(gdf["collection"].value_counts())
else:
    print("The search matched no items in any collection.")

# %% [markdown]
# The per-entry frames are there too, keyed by entry:

# %%
{label: len(frame) for label, frame in ing.frames.items()}

# %% [markdown]
# ## `matrix=[...]` and `await`
#
# The matrix form names the catalog of every entry, so one run may mix catalogs. Inside
# Jupyter you can also `await` the async twin: it runs on the kernel's own event loop and the
# bars update just the same.

# %%
matrix = [{"collection_id": c, "catalog_url": CATALOG_URL} for c in COLLECTIONS]
ing2 = stacfetch.Ingestor(matrix=matrix, datetime=DATETIME, bbox=BBOX, concurrency=8)
gdf2 = await ing2.aingest()  # noqa: F704 (Jupyter runs top-level await)

# %%
def keys(frame):
    """The (collection, id) of every row (none for an empty result)."""
    if not len(frame):
        return set()
    return set(zip(frame["collection"], frame["id"], strict=True))


first, second = keys(gdf), keys(gdf2)
print(f"{len(gdf2):,} items; the same set as the first run: {second == first}")

# %% [markdown]
# The summary of the second run (`print(ing2.summary)` gives the same as text, with a
# one-line timeline per entry):

# %%
ing2.summary

# %% [markdown]
# Next: [03-failures-and-retry](03-failures-and-retry.ipynb) shows what happens when part of a
# search keeps failing.
