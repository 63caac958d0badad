"""The GeoDataFrame (and pystac) results of a :class:`~.run.Run`: pages in, Arrow tables per
entry, converted in a worker thread while fetching goes on; one frame at the end.

The results are built with the collector's threshold raised, as during the run
(:func:`~stacfetch._engine.tuning.gc_relaxed`; the collector stays on). A 50,000-item run
leaves some 240,000 tracked objects (its stubs and keys); building the frame allocates enough
to start young collections, and the collections of the older generations then walk them
all: that frame took 0.33-0.36 s with the default threshold and 0.25-0.27 s with it raised
(three runs each)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._engine.records import EntryTask, Page
from .._engine.tuning import gc_relaxed
from .._formats.results import coerce_integers, sort_frame, sort_items
from .._formats.sources import table_to_items
from .._formats.tables import arrow_to_geodataframe, concat_tables
from .parts import Rows
from .pipeline import outputs
from .run import Run

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["CONVERT_BATCH", "collect", "entry_frames", "result_dicts", "result_frame"]

CONVERT_BATCH = 2000
"""Items per Arrow conversion batch (converted in a worker thread while fetching goes on)."""


async def collect(run: Run, tasks: list[EntryTask], renderer: Any) -> None:
    """Fetch ``tasks`` into ``run.tables``; raises with ``strict`` when chunks failed.

    Example::

        await collect(run, run.tasks(), renderer=None)
        frame = result_frame(run)
    """
    run.collected = True
    sink = run.sink(renderer)
    batches: dict[str, Rows] = {}
    pending: list[asyncio.Future[None]] = []

    async def convert(key: str, rows: Rows) -> None:
        run.tables[key].append(await asyncio.to_thread(rows.to_arrow))

    try:
        async for out in outputs(run, tasks, sink, arrow=True):
            if not isinstance(out, Page):
                continue
            key = out.entry.key
            if out.table is not None:
                run.tables[key].append(out.table)
                continue
            rows = batches.setdefault(key, Rows())
            rows.add(out)
            if len(rows) >= CONVERT_BATCH:
                pending.append(asyncio.ensure_future(convert(key, batches.pop(key))))
                pending[:] = [p for p in pending if not p.done()]
                if len(pending) > 2:  # bound memory: at most a few batches in flight
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        pending.extend(asyncio.ensure_future(convert(k, r)) for k, r in batches.items())
        batches.clear()
        await asyncio.gather(*pending)
    finally:
        for p in pending:
            p.cancel()
        run.finish(sink, renderer)
    run.check_complete("see .failures and retry_failed()")


def _tables(run: Run) -> list[Any]:
    return [t for key in run.tables for t in run.tables[key]]


def result_frame(run: Run) -> gpd.GeoDataFrame:
    """Everything collected as one GeoDataFrame, in ``sortby`` order when one was given."""
    with gc_relaxed():
        frame = arrow_to_geodataframe(concat_tables(_tables(run)))
    sortby = run.config.filters.sortby
    return sort_frame(frame, sortby) if sortby else frame


def result_dicts(run: Run) -> list[dict[str, Any]]:
    """Everything collected as STAC item dicts (pystac-client's ``items_as_dicts()``)."""
    with gc_relaxed():
        items = [coerce_integers(item) for item in table_to_items(concat_tables(_tables(run)))]
    return sort_items(items, run.config.filters.sortby)


def entry_frames(run: Run) -> dict[str, gpd.GeoDataFrame]:
    """What each entry collected so far, keyed by entry label."""
    with gc_relaxed():
        return {
            e.label: arrow_to_geodataframe(concat_tables(run.tables[e.key])) for e in run.entries
        }
