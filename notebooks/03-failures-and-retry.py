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
# # Failures and retry
#
# Servers fail. stacfetch retries every request with backoff; a chunk that still fails is
# not lost silently: it goes to `ing.failures`, the rest of the run goes on, and
# `ing.retry_failed()` (or the **Retry failed** button) fetches exactly what is missing.
#
# To make a server fail on purpose, this notebook starts stacfetch's own demo STAC API on
# this machine (127.0.0.1, sample items of two collections over the Alps in 2023) and tells it
# to answer `503` to every search that touches March 2023, until we heal it. It needs no
# network, on Binder or anywhere else.

# %%
from IPython.display import display

import stacfetch
from stacfetch.demo import DEMO_COLLECTIONS, demo_items, demo_server

server = demo_server(fail_window=("2023-03-01", "2023-03-31"))
print(f"demo STAC API at {server.url}, collections {list(DEMO_COLLECTIONS)}")

# %% [markdown]
# ## A run with a broken month
#
# Few retries with short waits, so the demo does not keep you waiting. Watch the bars turn
# red and the failure table appear under them.

# %%
ing = stacfetch.Ingestor(
    server.url,
    collections=DEMO_COLLECTIONS,
    retry={"max_retries": 2, "backoff_base": 0.1},
)
gdf = ing.ingest()

# %%
print(f"{len(gdf):,} items fetched, {len(ing.failures)} chunks failed")

# %% [markdown]
# The timeline under each bar shows where: the red segments are the failed chunks, exactly
# the intervals of the failure table (hover one for its interval and attempts). The run's
# numbers:

# %%
ing.summary

# %% [markdown]
# `ing.failures` lists every failed chunk: entry, datetime interval, HTTP status, error and
# attempts. `ing.failures.to_dataframe()` has all the details (request body, times...).

# %%
display(ing.failures)

# %% [markdown]
# `ing.failure_table()` is the same list as a widget with a **Retry failed** button: once the
# server is healthy again, a click fetches the failed chunks (its progress shows up under the
# button).

# %%
ing.failure_table()

# %% [markdown]
# ## Heal the server and retry
#
# The server recovers; `retry_failed()` re-runs only the failed chunks and merges them into the
# result without duplicates. (Clicking **Retry failed** above does the same.)

# %%
server.heal()
gdf = ing.retry_failed()

# %%
expected = len(demo_items())
print(
    f"{len(gdf):,} items of {expected:,} served, ids unique: {gdf['id'].is_unique}, "
    f"failed chunks left: {len(ing.failures)}"
)

# %%
display(ing.failures)

# %%
server.stop()
