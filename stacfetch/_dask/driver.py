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
- **Workers**: one task per chunk (:func:`fetch_chunk_task`). It builds its own HTTP session and
  a :class:`~stacfetch._engine.fetch.FetchEngine` with ``local_splits=False`` and the catalog's
  ``ApiInfo`` pre-seeded (no discovery request), fetches the chunk with the usual retry policy,
  and writes ``e<entry>-<chunk_id>-<n>.parquet`` parts into the output directory (temporary
  name, then rename). A chunk that proves large (``chunk_size`` items, else five pages, and
  more to come) stops, and the rest of its interval comes back as children for the driver to
  submit. It returns a small :class:`ChunkResult`.

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
import hashlib
import importlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._engine.fetch import MAX_SPLIT_PIECES, ChunkEnd, EntryTask, FetchEngine, Page, _EntryState
from .._engine.http import HttpSession, origin_of
from .._engine.search import ApiInfo
from .._formats.part_dedup import deduplicate_parts
from .._model.config import RetryConfig
from .._model.errors import ConfigurationError, IncompleteIngestError
from .._model.events import (
    ChunkDone,
    ChunkFailed,
    ChunkSplit,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    Event,
    EventSink,
    FailureRecord,
    PageFetched,
    Retrying,
)
from .._model.failures import FailureCollector
from .._model.filters import IngestFilters
from .._model.types import Chunk
from .._run.resume import Manifest
from .gates import GatedSession, Gates, distributed_module

if TYPE_CHECKING:
    import dask_geopandas
    import geopandas as gpd
    import pyarrow as pa

    from .._ingestor import Ingestor

__all__ = [
    "ChunkResult",
    "dask_to_parquet",
    "deduplicate_parts",
    "fetch_chunk_task",
    "read_dask_geodataframe",
]

logger = logging.getLogger("stacfetch")

ROWS_PER_PART = 20_000
"""Items per GeoParquet part a task writes (a chunk larger than that writes several parts)."""

SPLIT_PIECES = 4
"""Pieces the rest of a chunk is split into when it proves large and the server gives no count."""

MAX_EVENTS = 100
"""Retry events a task reports back per chunk (the rest are counted, not listed)."""


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


# -- what travels to the workers and back ----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _RunSpec:
    """Everything a task needs besides its chunk; pickled with every task (small)."""

    path: str
    run_id: str
    catalogs: Mapping[str, ApiInfo]
    retry: RetryConfig
    limit: int
    chunk_size: int | None
    concurrency: int
    rows_per_part: int
    headers: Mapping[str, str]
    trusted_origins: tuple[str, ...]
    modifier: Callable[[Any], Any] | None = None
    request_modifier: Callable[[Any], Any] | None = None

    def semaphore_name(self, origin: str) -> str:
        return f"stacfetch-{self.run_id}-{_digest(origin)}"

    @property
    def pause_name(self) -> str:
        return f"stacfetch-{self.run_id}-pause"


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    """What a task reports about its chunk: small, whatever the chunk's size.

    ``children`` are the chunks the rest of a large chunk was split into (to be submitted);
    ``parts`` the file names written into the output directory; ``events`` the progress events
    to replay on the driver (one aggregated :class:`~stacfetch._model.events.PageFetched`).

    Example:
        >>> from stacfetch import Chunk, Entry, Interval
        >>> c = Chunk.make(Entry("https://x/stac", "c1"), Interval(None, None))
        >>> r = ChunkResult(index=0, chunk=c, ok=True, items=3)
        >>> (r.ok, r.items, r.children)
        (True, 3, ())
    """

    index: int
    chunk: Chunk
    ok: bool
    items: int = 0
    duplicates: int = 0
    children: tuple[Chunk, ...] = ()
    truncation_children: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    failure: FailureRecord | None = None
    events: tuple[Event, ...] = ()
    origins: tuple[str, ...] = ()
    requests: int = 0
    seconds: float = 0.0
    worker: str = ""


# -- one chunk on a worker -------------------------------------------------------------------------
class _ChunkEngine(FetchEngine):
    """A FetchEngine for exactly one chunk on a worker: splits only when the chunk proves large.

    On one machine the engine splits a chunk when its own workers would idle; a task cannot see
    the cluster's idle slots, so it splits when the count says the rest exceeds the target, or
    (no count) once it has delivered the target and pages keep coming.
    """

    def __init__(self, *args: Any, truncated: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._truncated = set(truncated)
        self.state: _EntryState | None = None

    async def prepare(self, task: EntryTask) -> _EntryState:
        state = await super().prepare(task)
        state.truncation_children.update(self._truncated)
        self.state = state
        return state

    def _split_pieces(
        self,
        state: _EntryState,
        matched: int | None,
        returned: int,
        *,
        has_next: bool,
        full: bool,
        probe: bool,
    ) -> int:
        target = max(1, state.target)
        if matched is not None:
            remaining = matched - returned
            if remaining > target or (remaining > 0 and not has_next):
                return max(2, min(MAX_SPLIT_PIECES, -(-matched // target)))
            return 0
        if not has_next:
            return 2 if full else 0
        return SPLIT_PIECES if state.items >= target else 0


class _Recorder:
    """The task's event sink: keeps what the driver replays, aggregates pages."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.new = 0
        self.duplicates = 0
        self.matched: int | None = None
        self.retries = 0

    def emit(self, event: Event) -> None:
        if isinstance(event, PageFetched):
            self.new += event.new
            self.duplicates += event.duplicates
            if event.matched is not None:
                self.matched = event.matched
        elif isinstance(event, Retrying):
            self.retries += 1
            if self.retries <= MAX_EVENTS:
                self.events.append(event)
        elif isinstance(event, (ChunkSplit, ChunkDone, ChunkFailed)):
            self.events.append(event)


def _part_prefix(index: int, chunk: Chunk) -> str:
    return f"e{index:02d}-{chunk.chunk_id}-"


def _remove_parts(directory: Path, prefix: str) -> None:
    for stale in directory.glob(f"{prefix}*.parquet"):
        stale.unlink(missing_ok=True)


def fetch_chunk_task(spec: _RunSpec, index: int, chunk: Chunk, truncated: bool) -> ChunkResult:
    """The Dask task: fetch one chunk, write its GeoParquet part(s), report a :class:`ChunkResult`.

    Runs on a worker thread (its own event loop); submitted by :func:`dask_to_parquet`, not
    meant to be called directly.

    Example::

        fut = client.submit(fetch_chunk_task, spec, 0, chunk, False)
        fut.result().items   # -> 1000
    """
    gates = Gates(spec)
    try:
        return asyncio.run(_fetch_chunk(spec, index, chunk, truncated, gates))
    finally:
        gates.close()


async def _fetch_chunk(
    spec: _RunSpec, index: int, chunk: Chunk, truncated: bool, gates: Gates
) -> ChunkResult:
    from .._formats.geoparquet import write_geoparquet
    from .._formats.tables import items_to_arrow

    started = time.monotonic()
    entry = chunk.entry
    assert entry.catalog_url is not None
    out = Path(spec.path)
    prefix = _part_prefix(index, chunk)
    await asyncio.to_thread(_remove_parts, out, prefix)  # of an earlier, unfinished attempt
    parts: list[str] = []
    writing: asyncio.Future[Any] | None = None

    def write(items: list[dict[str, Any]], name: str) -> None:
        write_geoparquet(items_to_arrow(items), out / name)

    async def flush(items: list[dict[str, Any]]) -> None:
        nonlocal writing
        if writing is not None:
            await writing
        name = f"{prefix}{len(parts):05d}.parquet"
        parts.append(name)
        writing = asyncio.ensure_future(asyncio.to_thread(write, items, name))

    recorder = _Recorder()
    failures = FailureCollector()
    end: ChunkEnd | None = None
    buffer: list[dict[str, Any]] = []
    async with GatedSession(
        gates,
        spec.retry,
        max_concurrency=2,
        headers=spec.headers,
        request_modifier=spec.request_modifier,
        trusted_origins=set(spec.trusted_origins),
    ) as http:
        engine = _ChunkEngine(
            http,
            sink=recorder,
            failures=failures,
            workers=1,
            limit=spec.limit,
            chunk_size=spec.chunk_size,
            modifier=spec.modifier,
            headers=spec.headers,
            request_modifier=spec.request_modifier,
            catalogs={entry.catalog_url: (spec.catalogs[entry.catalog_url], None)},
            local_splits=False,
            truncated=[chunk.chunk_id] if truncated else [],
        )
        task = EntryTask(entry, IngestFilters(), chunks=[chunk], seen=set())
        try:
            async for output in engine.stream([task]):
                if isinstance(output, Page):
                    for item in output.items:
                        if entry.collection_id and not item.get("collection"):
                            item["collection"] = entry.collection_id
                    buffer.extend(output.items)
                    if len(buffer) >= spec.rows_per_part:
                        await flush(buffer)
                        buffer = []
                elif isinstance(output, ChunkEnd):
                    end = output
            if buffer:
                await flush(buffer)
            if writing is not None:
                await writing
        finally:
            await gates.board.flush()
        requests = http.requests_sent
    if end is None:
        raise RuntimeError(f"chunk {chunk.chunk_id}: the engine ended without a result")
    state = engine.state
    marked = state.truncation_children if state is not None else set()
    events: list[Event] = [
        PageFetched(entry.key, chunk.chunk_id, recorder.new, recorder.duplicates, recorder.matched),
        *recorder.events,
    ]
    return ChunkResult(
        index=index,
        chunk=chunk,
        ok=end.ok,
        items=recorder.new,
        duplicates=recorder.duplicates,
        children=end.children,
        truncation_children=tuple(c.chunk_id for c in end.children if c.chunk_id in marked),
        parts=tuple(parts),
        failure=failures[0] if failures else None,
        events=tuple(events),
        origins=gates.origins,
        requests=requests,
        seconds=time.monotonic() - started,
        worker=gates.worker,
    )


# -- the driver ------------------------------------------------------------------------------------
@dataclasses.dataclass
class _EntryRun:
    key: str
    outstanding: int = 0
    items: int = 0
    failed: int = 0


def _task_failure(chunk: Chunk, exc: BaseException, since: float) -> FailureRecord:
    entry = chunk.entry
    return FailureRecord(
        entry_key=entry.key,
        catalog_url=entry.catalog_url,
        collection_id=entry.collection_id,
        chunk_id=chunk.chunk_id,
        interval=chunk.interval.to_param(),
        filters=chunk.filters,
        method="",
        url=entry.catalog_url or "",
        body=None,
        status_code=None,
        error_type=type(exc).__name__,
        message=f"the Dask task failed: {exc}"[:1000],
        attempts=1,
        first_time=since,
        last_time=time.time(),
        items_delivered=0,
        chunk=chunk,
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


async def _cleanup(client: Any, spec: _RunSpec, origins: set[str]) -> None:
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
    ingestor: Ingestor,
    path: str | os.PathLike[str],
    client: Any,
    *,
    overwrite: bool = False,
    rows_per_part: int = ROWS_PER_PART,
    renderer: Any = None,
) -> Path:
    """Run ``ingestor``'s chunks as Dask tasks writing a GeoParquet dataset at ``path``.

    ``client`` is a synchronous ``distributed.Client`` or a scheduler address (then a Client is
    made and closed here). ``path`` must be a directory the driver and every worker see under
    the same name (any local path for a ``LocalCluster``; a shared file system on a real
    cluster). ``renderer`` is the Ingestor's progress renderer (events are emitted as futures
    complete). Failures end up in ``ingestor.failures``; calling again resumes: only chunks
    not on disk are submitted. Returns the dataset directory.

    Example::

        from distributed import Client
        ing = Ingestor(url, collections=["sentinel-2-l2a"], concurrency=16)
        client = Client("tcp://scheduler:8786")
        await dask_to_parquet(ing, "s2.parquet", client)   # -> PosixPath('s2.parquet')
    """
    distributed_module()
    if isinstance(rows_per_part, bool) or not isinstance(rows_per_part, int) or rows_per_part < 1:
        raise ConfigurationError(f"rows_per_part: must be an integer >= 1, got {rows_per_part!r}")
    files = [e.source_file for e in ingestor.entries if e.source_file]
    if files:
        raise ConfigurationError(
            f"client=: file entries ({files[0]!r}) are read on this machine; call "
            "to_parquet() without client= for them"
        )
    cfg = ingestor.config
    if cfg.max_items is not None:
        raise ConfigurationError(
            "client=: max_items needs one engine that sees every item; drop max_items, or "
            "call to_parquet() without client="
        )
    sink = ingestor._sink(renderer)
    connected: Any = None
    made = False
    try:
        connected, made = await _connect(client)
        return await _drive(ingestor, Path(path), connected, overwrite, rows_per_part, sink)
    finally:
        if made and connected is not None:
            await asyncio.to_thread(connected.close)
        ingestor._finish(sink, renderer)


async def _plan(
    ingestor: Ingestor, manifest: Manifest, sink: EventSink
) -> dict[int, tuple[list[Chunk], int | None]]:
    """Discover and plan every entry with pending work (once; resume reuses the plan)."""
    cfg = ingestor.config
    origins = {origin_of(e.catalog_url) for e in ingestor.entries if e.catalog_url}
    todo: dict[int, EntryTask] = {}
    for i, entry in enumerate(ingestor.entries):
        pending = manifest.pending(i)
        if pending is not None and not pending:
            continue
        todo[i] = EntryTask(entry, cfg.filters, chunks=pending)
    if not todo:
        return {}
    async with HttpSession(
        cfg.retry,
        max_concurrency=cfg.concurrency.workers,
        headers=ingestor.headers,
        request_modifier=ingestor.request_modifier,
        trusted_origins=origins,
    ) as http:
        engine = FetchEngine(
            http,
            sink=sink,
            failures=ingestor.failures,
            workers=cfg.concurrency.workers,
            limit=cfg.limit,
            chunk_size=cfg.concurrency.chunk_size,
            headers=ingestor.headers,
            request_modifier=ingestor.request_modifier,
            catalogs=ingestor._catalogs,
        )
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
    ingestor: Ingestor,
    path: Path,
    client: Any,
    overwrite: bool,
    rows_per_part: int,
    sink: EventSink,
) -> Path:
    distributed = distributed_module()
    cfg = ingestor.config
    manifest = Manifest.open(path, ingestor._signature(), overwrite=overwrite)
    ingestor._new_run()
    plans = await _plan(ingestor, manifest, sink)
    spec = _RunSpec(
        path=str(manifest.path.resolve()),
        run_id=uuid.uuid4().hex[:12],
        catalogs={url: api for url, (api, _) in ingestor._catalogs.items()},
        retry=cfg.retry,
        limit=cfg.limit,
        chunk_size=cfg.concurrency.chunk_size,
        concurrency=cfg.concurrency.workers,
        rows_per_part=rows_per_part,
        headers=dict(ingestor.headers),
        trusted_origins=tuple(
            sorted({origin_of(e.catalog_url) for e in ingestor.entries if e.catalog_url})
        ),
        modifier=ingestor.modifier,
        request_modifier=ingestor.request_modifier,
    )
    entries = ingestor.entries
    runs = {i: _EntryRun(entries[i].key) for i in plans}
    retried = {c.chunk_id for chunks, _ in plans.values() for c in chunks}
    ingestor.failures.remove_chunks(retried)  # they run again now
    origins = set(spec.trusted_origins)
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
        run = runs[index]
        run.outstanding -= 1
        if run.outstanding == 0:
            sink.emit(EntryDone(run.key, run.items, run.failed))

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
            run = runs[index]
            run.items += result.items
            for event in result.events:
                sink.emit(event)
            if result.failure is not None:
                run.failed += 1
                ingestor.failures.add(result.failure)
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
    await asyncio.to_thread(manifest.set_complete, not pending and not ingestor.failures)
    if ingestor.strict and ingestor.failures:
        raise IncompleteIngestError(
            f"{len(ingestor.failures)} chunk(s) failed; run the same call again to fetch them",
            ingestor.failures,
        )
    return manifest.path


def _settle(directory: Path, empty_part: str) -> dict[int, int]:
    """After the last task: the exactly-once pass, no temporary file of a dead task left, and
    one schema for every part (``unify_parts``: every reader reads the directory whole)."""
    from .._formats.geoparquet import unify_parts

    removed = deduplicate_parts(directory)
    for temp in directory.glob(".*.parquet.tmp"):
        temp.unlink(missing_ok=True)
    unify_parts(directory, empty_part)
    return removed


# -- reading back lazily ---------------------------------------------------------------------------
def _read_part(file: str, schema: pa.Schema, like: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    import pyarrow.parquet as pq

    from .._formats.tables import arrow_to_geodataframe, conform_table

    present = set(pq.read_schema(file).names)
    table = pq.read_table(file, columns=[n for n in schema.names if n in present])
    frame = arrow_to_geodataframe(conform_table(table, schema))
    frame = frame[list(like.columns)]
    for name, dtype in like.dtypes.items():
        if name != like.geometry.name and frame[name].dtype != dtype:
            frame[name] = frame[name].astype(dtype)
    return frame


def read_dask_geodataframe(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> dask_geopandas.GeoDataFrame:
    """Read a ``to_parquet`` dataset lazily: a dask-geopandas GeoDataFrame, one partition a part.

    Parts written by different chunks may disagree on types (a property missing in one part,
    an int in one and a float in another); they are unified from the files' footers, as
    :func:`stacfetch.read_geoparquet` does eagerly. ``columns`` limits what is read
    (``geometry`` is always kept).

    Example::

        ddf = read_dask_geodataframe("s2.parquet", columns=["id", "datetime"])
        ddf.npartitions, len(ddf)   # -> (42, 812345)
    """
    distributed_module()
    import dask_geopandas  # noqa: F401  (registers GeoDataFrame collections with dask)
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .._formats.geoparquet import parquet_files
    from .._formats.tables import arrow_to_geodataframe, conform_table, unify_schemas

    files = [str(f) for f in parquet_files(Path(path))]
    if not files:
        raise FileNotFoundError(f"no GeoParquet part in {os.fspath(path)!r}")
    schema = unify_schemas([pq.read_schema(f) for f in files])
    if columns is not None:
        wanted = [*columns, *(["geometry"] if "geometry" not in columns else [])]
        unknown = [c for c in wanted if c not in schema.names]
        if unknown:
            raise ConfigurationError(f"columns: not in the dataset: {unknown}")
        schema = pa.schema([schema.field(c) for c in wanted], metadata=schema.metadata)
    # one all-null row: every column takes the dtype a part with nulls in it gets
    nulls = pa.table({f.name: pa.nulls(1, f.type) for f in schema})
    meta = arrow_to_geodataframe(conform_table(nulls, schema)).iloc[:0]
    if columns is not None:
        meta = meta[[c for c in meta.columns if c in schema.names]]
    dd: Any = importlib.import_module("dask.dataframe")
    return dd.from_map(_read_part, files, schema=schema, like=meta, meta=meta)
