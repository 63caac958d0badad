"""One fetch of a :class:`~.run.Run`: every entry's source merged into one stream of outputs.

Entries with a collection go to the engine (split search), entries without one to the
catalog-wide ``ids`` source, file entries to the file source: the consumer (the GeoDataFrame
collector, ``to_parquet``, ``stream()``) reads them all alike. Around the fetch: log
redaction of the run's credentials, the relaxed garbage collector, the decoder processes,
discovery and the probe of searches a server may reject.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from .._engine.decoder_pool import DecoderPool
from .._engine.http import HttpSession
from .._engine.logsafe import redacting_logs
from .._engine.preflight import discover, needs_probe, probe
from .._engine.records import ChunkEnd, EntryTask, Output, PlanReady
from .._engine.sources import catalog_ids_source, file_source
from .._model.events import ChunkSpan, ChunksPlanned, EventSink
from .connect import open_engine
from .run import Run

__all__ = ["merge", "outputs"]


async def outputs(
    run: Run,
    tasks: list[EntryTask],
    sink: EventSink,
    *,
    arrow: bool = False,
    max_chunk: int | None = None,
) -> AsyncIterator[Output]:
    """Pages and chunk ends of every entry of ``tasks``; ``arrow``: pages carry Arrow tables
    when decoder processes are on (the engine decides whether to start them); ``max_chunk``:
    chunks of at most this many items unless the config sets a ``chunk_size``.

    Example::

        async for out in outputs(run, run.tasks(), run.sink(None)):
            if isinstance(out, Page):
                ...
    """
    api = [t for t in tasks if t.entry.source_file is None]
    files = [t for t in tasks if t.entry.source_file is not None]
    decoder = DecoderPool(run.decoders) if arrow and api and run.decoders > 0 else None
    conn = run.connection(max_chunk)
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(redacting_logs(run.headers))
        if decoder is not None:
            await stack.enter_async_context(decoder)
        engine = await stack.enter_async_context(
            open_engine(
                conn, sink=sink, failures=run.failures, catalogs=run.catalogs, decoder=decoder
            )
        )
        await _prepare(run, engine.http, api)
        by_collection = [t for t in api if t.entry.collection_id is not None]
        sources: list[AsyncIterator[Output]] = []
        if by_collection:
            sources.append(engine.stream(by_collection))
        for task in api:
            if task.entry.collection_id is None:
                assert task.entry.catalog_url is not None
                sources.append(
                    catalog_ids_source(
                        task,
                        run.catalogs[task.entry.catalog_url][0],
                        engine.http,
                        sink=sink,
                        failures=run.failures,
                        limit=conn.limit,
                        max_items=conn.max_items,
                        modifier=conn.modifier,
                    )
                )
        sources.extend(file_source(t, sink, page_size=conn.limit) for t in files)
        async for out in merge(sources):
            _announce(out, sink)
            yield out


async def _prepare(run: Run, http: HttpSession, api: list[EntryTask]) -> None:
    """Before the engine: discover the catalogs that need it here (``ids`` across a
    catalog, searches to probe), and probe searches a server may reject (raises
    :class:`~stacfetch.SearchRejectedError` once, before any chunk is fetched)."""
    probing = [t for t in api if t.chunks is None and needs_probe(t.filters)]
    across = [t for t in api if t.entry.collection_id is None]
    urls = {t.entry.catalog_url for t in [*probing, *across] if t.entry.catalog_url}
    await asyncio.gather(*(discover(run.catalogs, url, http) for url in sorted(urls)))
    await asyncio.gather(
        *(
            probe(http, run.catalogs[t.entry.catalog_url][0], t)
            for t in probing
            if t.entry.catalog_url
        )
    )


def _announce(out: Output, sink: EventSink) -> None:
    """Tell the front ends where the chunks search (the timeline), from the engine's plan and
    split outputs: ``ChunksPlanned`` is idempotent, so an engine that sends it too is fine."""
    if isinstance(out, PlanReady):
        sink.emit(ChunksPlanned(out.entry.key, tuple(ChunkSpan.of(c) for c in out.chunks)))
    elif isinstance(out, ChunkEnd) and out.children:
        spans = tuple(ChunkSpan.of(c) for c in out.children)
        sink.emit(ChunksPlanned(out.entry.key, spans, parent_id=out.chunk.chunk_id))


async def merge(sources: list[AsyncIterator[Any]]) -> AsyncIterator[Any]:
    """Interleave several async iterators; errors propagate; all are closed on exit.

    Example::

        async for out in merge([engine.stream(tasks), file_source(task, sink, page_size=100)]):
            ...
    """
    if len(sources) == 1:
        async for item in sources[0]:
            yield item
        return
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue(maxsize=16)
    done = object()

    async def pump(i: int, src: AsyncIterator[Any]) -> None:
        try:
            async for item in src:
                await queue.put((i, item))
        finally:
            await queue.put((i, done))

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(sources)]
    remaining = len(tasks)
    try:
        while remaining:
            _, item = await queue.get()
            if item is done:
                remaining -= 1
                continue
            yield item
        for t in tasks:
            await t
    finally:
        for t in tasks:
            t.cancel()
