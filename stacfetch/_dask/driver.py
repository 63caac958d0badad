"""Scale out on Dask: an ingest's chunks run as Dask tasks, each writing its own GeoParquet part.

``Ingestor(...).to_parquet(path, client=client)`` (a ``distributed.Client``, or a scheduler
address) runs :func:`dask_to_parquet`. Nothing of Dask is imported until then (extra
``stacfetch[dask]``: dask, distributed, dask-geopandas).

What runs where:

- **Driver** (the process holding the Client): discovery and planning, once per entry and once
  per catalog (exactly as on one machine); the resume manifest; one task submitted per pending
  chunk, and one per child chunk a task reports; progress events and
  :class:`~stacfetch.FailureRecord` s, emitted from the futures as they complete; the final
  exactly-once pass.
- **Workers**: one task per chunk (:func:`~stacfetch._dask.task.fetch_chunk_task`, in
  :mod:`stacfetch._dask.task`): the same wiring as on one machine (``open_engine`` from the
  run's :class:`~stacfetch._run.run.Connection`), a split policy that only reports children,
  the catalog's ``ApiInfo`` pre-seeded; it writes ``e<entry>-<chunk_id>-<n>.parquet`` parts
  with the run's part writer and returns a small ``ChunkResult``.

Cluster-wide budget: every HTTP request of every task holds a lease of a
``distributed.Semaphore`` with ``max_leases=concurrency``, one per server origin and run, so
the server sees at most ``concurrency`` requests at once whatever the number of workers. A 429
(or throttling 403) seen by any task publishes a pause-until time for that origin in a
``distributed.Variable``; every task checks it (at most every ``PAUSE_POLL`` seconds)
before taking a lease, so the whole cluster backs off, not only the task that was told to.

Exactly once (``docs/decisions/0004-dask.md``): a **final deduplication pass on the driver**.
Tasks keep what the server returns for their chunk (deduplicated within the chunk, as on one
machine). Chunks share their boundary instants and range items match every chunk they overlap,
so two parts may hold the same item. After the last task, the driver reads the ``collection``
and ``id`` columns of every part of an entry, finds (collection, id) keys present more than
once (64-bit hashes first, then exact keys), keeps the copy in the part whose name sorts first,
and rewrites only the parts holding another copy (atomically). Like the single-machine set, it
assumes nothing about how the server matches datetimes; it is idempotent, so a run killed
during the pass, or rerun, gives the same dataset. Until that pass has run the directory may
hold duplicates (the manifest says ``complete: false``).

Resume and retry reuse :class:`~stacfetch._run.resume.Manifest`: the plan, the children of split
chunks and the chunks whose parts are on disk. Calling the same ``to_parquet(path,
client=...)`` again submits only what is pending: chunks that failed, were never finished, or
never started. Part names derive from chunk ids, so a task Dask runs twice (a worker died after
writing) replaces its own parts instead of adding copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from .._engine.records import EntryTask
from .._formats.geoparquet import unify_parts
from .._model.errors import ConfigurationError
from .._model.events import (
    ChunkFailed,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    EventSink,
    FailureRecord,
    PageFetched,
)
from .._model.types import Chunk
from .._run.connect import open_engine
from .._run.parquet import check_rows_per_part
from .._run.part_dedup import deduplicate_parts
from .._run.resume import Manifest
from .._run.run import Run
from .gates import distributed_module
from .task import ROWS_PER_PART, ChunkResult, RunSpec, fetch_chunk_task

__all__ = ["dask_to_parquet"]

logger = logging.getLogger("stacfetch")


# -- the driver ------------------------------------------------------------------------------------
@dataclasses.dataclass
class _EntryRun:
    key: str
    outstanding: int = 0
    items: int = 0
    failed: int = 0


def _task_failure(chunk: Chunk, exc: BaseException, since: float) -> FailureRecord:
    return FailureRecord.of_chunk(
        chunk,
        error_type=type(exc).__name__,
        message=f"the Dask task failed: {exc}"[:1000],
        first_time=since,
    )


async def _connect(client: Any) -> tuple[Any, bool]:
    """The Client to use, and whether we made it (a scheduler address was given)."""
    distributed = distributed_module()

    if isinstance(client, (str, os.PathLike)):
        made = await asyncio.to_thread(distributed.Client, os.fspath(client))
        return made, True
    if not isinstance(client, distributed.Client):
        raise ConfigurationError(
            f"client: expected a distributed.Client or a scheduler address, got {client!r}"
        )
    if client.asynchronous:
        raise ConfigurationError(
            "client: pass a synchronous distributed.Client (Client(address)), not one made "
            "with asynchronous=True"
        )
    return client, False


async def _cleanup(client: Any, spec: RunSpec, origins: set[str]) -> None:
    """Forget the run's semaphores and pause board on the scheduler (best effort)."""
    distributed = distributed_module()

    def run() -> None:
        for origin in origins:
            semaphore = distributed.Semaphore(
                max_leases=spec.concurrency,
                name=spec.semaphore_name(origin),
                scheduler_rpc=client.scheduler,
                loop=client.loop,
            )
            try:
                if semaphore.get_value() == 0:  # leases of a dead worker expire on their own
                    semaphore.close()
            except Exception as exc:
                logger.debug("stacfetch: semaphore cleanup: %r", exc)
        with contextlib.suppress(Exception):
            distributed.Variable(spec.pause_name, client=client).delete()

    await asyncio.to_thread(run)


async def dask_to_parquet(
    run: Run,
    path: str | os.PathLike[str],
    client: Any,
    *,
    overwrite: bool = False,
    rows_per_part: int = ROWS_PER_PART,
    renderer: Any = None,
) -> Path:
    """Run the chunks of ``run`` as Dask tasks writing a GeoParquet dataset at ``path``.

    ``client`` is a synchronous ``distributed.Client`` or a scheduler address (then a Client is
    made and closed here). ``path`` must be a directory the driver and every worker see under
    the same name (any local path for a ``LocalCluster``; a shared file system on a real
    cluster). ``renderer`` is the progress renderer (events are emitted as futures complete).
    Failures end up in ``run.failures``; calling again resumes: only chunks not on disk are
    submitted. Returns the dataset directory.

    Example::

        from distributed import Client
        ing = Ingestor(url, collections=["sentinel-2-l2a"], concurrency=16)
        client = Client("tcp://scheduler:8786")
        await dask_to_parquet(ing.run, "s2.parquet", client)   # -> PosixPath('s2.parquet')
    """
    distributed_module()
    check_rows_per_part(rows_per_part)
    files = [e.source_file for e in run.entries if e.source_file]
    if files:
        raise ConfigurationError(
            f"client=: file entries ({files[0]!r}) are read on this machine; call "
            "to_parquet() without client= for them"
        )
    if run.config.max_items is not None:
        raise ConfigurationError(
            "client=: max_items needs one engine that sees every item; drop max_items, or "
            "call to_parquet() without client="
        )
    sink = run.sink(renderer)
    connected: Any = None
    made = False
    try:
        connected, made = await _connect(client)
        return await _drive(run, Path(path), connected, overwrite, rows_per_part, sink)
    finally:
        if made and connected is not None:
            await asyncio.to_thread(connected.close)
        run.finish(sink, renderer)


async def _plan(
    run: Run, manifest: Manifest, sink: EventSink
) -> dict[int, tuple[list[Chunk], int | None]]:
    """Discover and plan every entry with pending work (once; resume reuses the plan)."""
    todo: dict[int, EntryTask] = {}
    for i, entry in enumerate(run.entries):
        pending = manifest.pending(i)
        if pending is not None and not pending:
            continue
        todo[i] = EntryTask(entry, run.config.filters, chunks=pending)
    if not todo:
        return {}
    async with open_engine(
        run.connection(), sink=sink, failures=run.failures, catalogs=run.catalogs
    ) as engine:
        for task in todo.values():
            sink.emit(EntryStarted(task.entry.key, task.entry.label))
        states = await asyncio.gather(*(engine.prepare(t) for t in todo.values()))
        await asyncio.gather(*(engine.plan(s) for s in states if s.info is not None))
    plans: dict[int, tuple[list[Chunk], int | None]] = {}
    for i, state in zip(todo, states, strict=True):
        if todo[i].chunks is None:
            manifest.record_plan(i, state.chunks)
        plans[i] = (list(state.chunks), state.total)
    return plans


async def _drive(
    run: Run,
    path: Path,
    client: Any,
    overwrite: bool,
    rows_per_part: int,
    sink: EventSink,
) -> Path:
    distributed = distributed_module()
    manifest = Manifest.open(path, run.signature(), overwrite=overwrite)
    run.restart()
    plans = await _plan(run, manifest, sink)
    spec = RunSpec(
        path=str(manifest.path.resolve()),
        run_id=uuid.uuid4().hex[:12],
        catalogs={url: api for url, (api, _) in run.catalogs.items()},
        connection=run.connection(),
        rows_per_part=rows_per_part,
    )
    entries = run.entries
    runs = {i: _EntryRun(entries[i].key) for i in plans}
    retried = {c.chunk_id for chunks, _ in plans.values() for c in chunks}
    run.failures.remove_chunks(retried)  # they run again now
    origins = set(spec.connection.trusted_origins)
    loop = asyncio.get_running_loop()
    finished: asyncio.Queue[Any] = asyncio.Queue()
    outstanding: dict[str, tuple[Any, int, Chunk, float]] = {}

    def on_done(future: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the driver's loop is gone: nothing to tell
            loop.call_soon_threadsafe(finished.put_nowait, future)

    def submit(index: int, chunk: Chunk, truncated: bool) -> None:
        key = f"stacfetch-chunk-{chunk.chunk_id}-{uuid.uuid4().hex[:8]}"
        future = client.submit(fetch_chunk_task, spec, index, chunk, truncated, key=key)
        outstanding[future.key] = (future, index, chunk, time.time())
        runs[index].outstanding += 1
        future.add_done_callback(on_done)

    def complete(index: int) -> None:
        tally = runs[index]
        tally.outstanding -= 1
        if tally.outstanding == 0:
            sink.emit(EntryDone(tally.key, tally.items, tally.failed))

    board = distributed.Variable(spec.pause_name, client=client)
    await asyncio.to_thread(board.set, {})  # also fails early when the scheduler is gone
    last_save = time.monotonic()
    try:
        for i, (chunks, total) in plans.items():
            sink.emit(EntryPlanned(entries[i].key, len(chunks), total))
            for chunk in chunks:
                submit(i, chunk, False)
            if not chunks:
                sink.emit(EntryDone(entries[i].key, 0, 0))
        while outstanding:
            future = await finished.get()
            held = outstanding.pop(future.key, None)
            if held is None:
                continue
            _, index, chunk, since = held
            try:
                result: ChunkResult = await asyncio.to_thread(future.result)
            except Exception as exc:  # the task raised, was cancelled, or killed its workers
                record = _task_failure(chunk, exc, since)
                events = (ChunkFailed(chunk.entry.key, record),)
                result = ChunkResult(index, chunk, ok=False, failure=record, events=events)
            finally:
                future.release()  # never recomputed once its part is accounted for
            origins.update(result.origins)
            tally = runs[index]
            tally.items += result.items
            for event in result.events:
                sink.emit(event)
            if result.failure is not None:
                tally.failed += 1
                run.failures.add(result.failure)
            if result.ok:
                manifest.record_done(index, [(chunk, result.children)])
                for child in result.children:
                    submit(index, child, child.chunk_id in result.truncation_children)
                if time.monotonic() - last_save > 1.0:
                    await asyncio.to_thread(manifest.save)
                    last_save = time.monotonic()
            complete(index)
    finally:
        if outstanding:
            futures = [held[0] for held in outstanding.values()]
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.cancel, futures)
        await asyncio.to_thread(manifest.save)
        with contextlib.suppress(Exception):
            await _cleanup(client, spec, origins)
    empty = f"{manifest.next_part_name(0)}.parquet"
    removed = await asyncio.to_thread(_settle, manifest.path, empty)
    for index, count in removed.items():
        if index < len(entries):  # the copies two chunks both fetched: count them once
            sink.emit(PageFetched(entries[index].key, "dedup", -count, count))
    pending = any(manifest.pending(i) for i in range(len(entries)))
    await asyncio.to_thread(manifest.set_complete, not pending and not run.failures)
    run.check_complete("run the same call again to fetch them")
    return manifest.path


def _settle(directory: Path, empty_part: str) -> dict[int, int]:
    """After the last task: the exactly-once pass, no temporary file of a dead task left, and
    one schema for every part (``unify_parts``: every reader reads the directory whole)."""
    removed = deduplicate_parts(directory)
    for temp in directory.glob(".*.parquet.tmp"):
        temp.unlink(missing_ok=True)
    unify_parts(directory, empty_part)
    return removed
