"""``to_parquet`` on this machine: a :class:`~.run.Run` streamed into a GeoParquet dataset
(a directory of parts plus a resume manifest) with bounded memory.

Parts are cut per entry on size (``rows_per_part``) and on time (``FLUSH_SECONDS``); the
manifest records a chunk as done only once the part holding its rows is on disk, so a killed
run, called again, re-fetches only the chunks that were in flight.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .._engine.records import ChunkEnd, PlanReady
from .._formats.geoparquet import unify_parts
from .._model.errors import ConfigurationError
from .._model.types import Chunk
from .part_dedup import deduplicate_parts
from .parts import PartWriter, Rows
from .pipeline import outputs
from .resume import Manifest
from .run import Run

__all__ = ["FLUSH_ROWS", "FLUSH_SECONDS", "RESUME_CHUNK_PAGES", "check_rows_per_part", "to_parquet"]

FLUSH_ROWS = 20_000
"""Items per GeoParquet part in ``to_parquet`` (per entry), at most."""

FLUSH_SECONDS = 2.0
"""``to_parquet`` writes what it holds (and the manifest) at least this often, whatever the
run's size and speed: a killed run loses at most these seconds of fetched work."""

RESUME_CHUNK_PAGES = 3
"""``to_parquet`` without a configured ``chunk_size``: chunks of at most this many pages (fewer
when that keeps every worker busy), so that chunks end (and are recorded done in the manifest)
every few seconds: a resumed run re-fetches only the chunks that were in flight (a chunk is
the unit of resume)."""

Ends = list[tuple[Chunk, tuple[Chunk, ...]]]


def check_rows_per_part(rows_per_part: Any) -> None:
    """Raise :class:`~stacfetch.ConfigurationError` unless ``rows_per_part`` is an int >= 1.

    Example:
        >>> check_rows_per_part(0)
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: rows_per_part: must be an integer >= 1, got 0
    """
    if isinstance(rows_per_part, bool) or not isinstance(rows_per_part, int) or rows_per_part < 1:
        raise ConfigurationError(f"rows_per_part: must be an integer >= 1, got {rows_per_part!r}")


def _seen_on_disk(run: Run, manifest: Manifest) -> None:
    """Resume: the items of the parts already written are in the exactly-once set."""
    for i, files in manifest.parts().items():
        if i < len(run.entries):
            seen = run.seen[run.entries[i].key]
            for file in files:
                keys = pq.read_table(file, columns=["collection", "id"])
                seen.update(
                    zip(
                        keys.column("collection").to_pylist(),
                        keys.column("id").to_pylist(),
                        strict=True,
                    )
                )


async def to_parquet(
    run: Run, path: str | os.PathLike[str], overwrite: bool, rows_per_part: int, renderer: Any
) -> Path:
    """Fetch ``run`` into the dataset at ``path`` (resuming what a manifest there records).

    Example::

        await to_parquet(run, "s2.parquet", overwrite=False, rows_per_part=20_000,
                         renderer=None)   # -> PosixPath('s2.parquet')
    """
    check_rows_per_part(rows_per_part)
    manifest = Manifest.open(path, run.signature(), overwrite=overwrite)
    run.restart()
    _seen_on_disk(run, manifest)
    index = {e.key: i for i, e in enumerate(run.entries)}
    tasks = run.tasks({e.key: manifest.pending(i) for i, e in enumerate(run.entries)})
    sink = run.sink(renderer)
    buffers: dict[int, Rows] = {}
    ends: dict[int, Ends] = {}
    max_chunk = run.config.limit * RESUME_CHUNK_PAGES

    async def flush(parts: PartWriter, i: int) -> None:
        done = ends.pop(i, [])

        def record() -> None:
            manifest.record_done(i, done)
            manifest.save()

        name = f"{manifest.next_part_name(i)}.parquet"
        await parts.put(buffers.pop(i, Rows()), name, then=record)

    try:
        async with PartWriter(manifest.path) as parts:
            last_flush = time.monotonic()
            async for out in outputs(run, tasks, sink, arrow=True, max_chunk=max_chunk):
                parts.check()  # surface a write error now
                i = index[out.entry.key]
                if isinstance(out, PlanReady):
                    manifest.record_plan(i, out.chunks)
                elif isinstance(out, ChunkEnd):
                    if out.ok:
                        ends.setdefault(i, []).append((out.chunk, out.children))
                else:
                    rows = buffers.setdefault(i, Rows())
                    rows.add(out)
                    if len(rows) >= rows_per_part:
                        await flush(parts, i)
                if time.monotonic() - last_flush >= FLUSH_SECONDS:
                    # on time as well as on size: a kill loses at most FLUSH_SECONDS of work
                    for j in sorted(set(buffers) | set(ends)):
                        await flush(parts, j)
                    last_flush = time.monotonic()
            for i in sorted(set(buffers) | set(ends)):
                await flush(parts, i)
    finally:
        run.finish(sink, renderer)
    pending = any(manifest.pending(i) for i in range(len(run.entries)))
    if not pending:
        # a local run never writes an item twice, but an interrupted Dask run may have
        # left copies that its final pass did not get to remove
        await asyncio.to_thread(deduplicate_parts, manifest.path)
    # one schema for every part: every reader reads the directory whole (decision 0005)
    await asyncio.to_thread(unify_parts, manifest.path, f"{manifest.next_part_name(0)}.parquet")
    manifest.set_complete(not pending and not run.failures)
    run.check_complete("run the same call again (or retry_failed()) to fetch them")
    return manifest.path
