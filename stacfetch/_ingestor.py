"""The Ingestor: matrix entries in, one GeoDataFrame (or GeoParquet dataset) out.

``Ingestor`` validates everything up front (no request is sent for bad input), runs every
entry's pipeline in parallel on one event loop, streams pages through exactly-once dedup,
converts them to Arrow in a worker thread while fetching continues, and keeps what failed in
``failures`` for ``retry_failed()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._engine.decoder import DecoderPool, default_decoders
from ._engine.fetch import ChunkEnd, EntryTask, FetchEngine, Output, Page, PlanReady
from ._engine.gc import gc_relaxed
from ._engine.http import HttpSession, origin_of
from ._engine.logsafe import redacting_logs
from ._engine.preflight import catalog_ids_stream, discover, needs_probe, probe
from ._model.config import IngestConfig, RetryConfig
from ._model.errors import ConfigurationError, IncompleteIngestError
from ._model.events import (
    ChunkDone,
    ChunkSpan,
    ChunksPlanned,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    EventSink,
    PageFetched,
    RunDone,
    fanout,
)
from ._model.failures import FailureCollector
from ._model.progress import ProgressTracker
from ._model.types import Chunk, Entry, Interval
from ._model.validation import validate_url
from ._run.sync import run_sync

if TYPE_CHECKING:
    import geopandas as gpd
    import pyarrow as pa
    import pystac

    from ._display.summary import RunSummary

__all__ = ["Ingestor", "aingest", "ingest"]

logger = logging.getLogger("stacfetch")

FLUSH_ROWS = 20_000
"""Items per GeoParquet part in ``to_parquet`` (per entry), at most."""

FLUSH_SECONDS = 2.0
"""``to_parquet`` writes what it holds (and the manifest) at least this often, whatever the
run's size and speed: a killed run loses at most these seconds of fetched work."""

RESUME_CHUNK_PAGES = 3
"""``to_parquet`` without a configured ``chunk_size``: chunks of about this many pages, so that
chunks end (and are recorded done in the manifest) every few seconds: a resumed run re-fetches
only the chunks that were in flight (a chunk is the unit of resume)."""

CONVERT_BATCH = 2000
"""Items per Arrow conversion batch (converted in a worker thread while fetching goes on)."""

_FILTER_KEYS = (
    "bbox",
    "datetime",
    "intersects",
    "query",
    "filter",
    "filter_lang",
    "ids",
    "sortby",
    "fields",
    "method",
)


def _entries_from(
    url: str | None,
    collections: Sequence[str] | str | None,
    matrix: Sequence[Mapping[str, Any]] | None,
    config: IngestConfig,
) -> list[Entry]:
    base = config.catalog_url or (validate_url(url, "url") if url is not None else None)
    entries: list[Entry] = []
    if matrix is not None:
        if isinstance(matrix, (str, Mapping)) or not isinstance(matrix, Iterable):
            raise ConfigurationError("matrix: expected a list of {'collection_id', 'catalog_url'}")
        for i, row in enumerate(matrix):
            if not isinstance(row, Mapping):
                raise ConfigurationError(f"matrix[{i}]: expected a mapping, got {row!r}")
            unknown = set(row) - {"collection_id", "catalog_url", "source_file"}
            if unknown:
                raise ConfigurationError(
                    f"matrix[{i}]: unknown keys {sorted(unknown)}; use collection_id, "
                    "catalog_url or source_file"
                )
            source = row.get("source_file") or None
            cid = config.collection_id or row.get("collection_id")
            cat = row.get("catalog_url")
            cat = validate_url(cat, f"matrix[{i}].catalog_url") if cat else base
            if source is None and not cid:
                raise ConfigurationError(f"matrix[{i}]: needs a collection_id or a source_file")
            entries.append(Entry(cat, cid, source))
    elif config.source_file:
        entries.append(Entry(None, config.collection_id, config.source_file))
    else:
        if isinstance(collections, str):
            collections = [c.strip() for c in collections.split(",") if c.strip()]
        ids = list(collections or [])
        if not ids and config.collection_id:
            ids = [config.collection_id]
        if not ids and config.filters.collections:
            ids = list(config.filters.collections)
        if not all(isinstance(c, str) and c for c in ids):
            raise ConfigurationError(f"collections: expected non-empty strings, got {ids!r}")
        entries = [Entry(base, c) for c in dict.fromkeys(ids)]
        if not entries and config.filters.ids:
            # ids without collections: one entry searching the whole catalog (no collection id)
            entries = [Entry(base, None)]
    if not entries:
        raise ConfigurationError(
            "Ingest target (collection_id or source_file) not defined: pass collections=[...], "
            "ids=[...] (searched across the catalog), "
            "matrix=[{'collection_id': ..., 'catalog_url': ...}], or source_file=..."
        )
    for e in entries:
        if e.source_file is None and e.catalog_url is None:
            what = f"collection {e.collection_id!r}" if e.collection_id else "an ids search"
            raise ConfigurationError(
                f"url: {what} needs a STAC API URL (url=... or catalog_url in the matrix entry)"
            )
    return entries


class Ingestor:
    """Fetch every item of a search from one or more collections ("matrix entries").

    Everything is validated when the Ingestor is built; nothing is sent until you call
    ``ingest()``, ``aingest()``, ``stream()`` or ``to_parquet()``.

    Example:
        >>> ing = Ingestor("https://earth-search.aws.element84.com/v1",
        ...                collections=["sentinel-2-l2a"], bbox=[5.9, 45.8, 10.5, 47.8],
        ...                datetime="2024-06", concurrency=16, progress=False)
        >>> [e.collection_id for e in ing.entries]
        ['sentinel-2-l2a']

    Then ``gdf = ing.ingest()`` fetches it (``len(ing.failures) == 0`` when all went well).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        collections: Sequence[str] | str | None = None,
        matrix: Sequence[Mapping[str, Any]] | None = None,
        config: IngestConfig | Mapping[str, Any] | None = None,
        source_file: str | None = None,
        datetime: Any = None,
        bbox: Any = None,
        intersects: Any = None,
        query: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | str | None = None,
        filter_lang: str | None = None,
        ids: Sequence[str] | str | None = None,
        sortby: Any = None,
        fields: Sequence[str] | Mapping[str, Sequence[str]] | str | None = None,
        method: str | None = None,
        concurrency: int | Mapping[str, Any] | None = None,
        limit: int | None = None,
        max_items: int | None = None,
        retry: RetryConfig | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        modifier: Callable[[Any], Any] | None = None,
        request_modifier: Callable[[Any], Any] | None = None,
        progress: bool | str | EventSink | None = "auto",
        strict: bool = False,
        decoders: int | None = None,
    ) -> None:
        """Validate everything (raises :class:`ConfigurationError`); send nothing yet.

        Args:
            url: the STAC API root (e.g. ``https://planetarycomputer.microsoft.com/api/stac/v1``).
            collections: collection ids (a list or ``"a,b"``); each is one entry fetched in
                parallel. Leave it out with ``ids`` to search the whole catalog.
            matrix: entries ``[{"collection_id": ..., "catalog_url": ...}]`` (several catalogs).
            config: an :class:`IngestConfig` or its dict; the keywords below override it.
            source_file: file mode: STAC items from JSON/NDJSON/GeoParquet files (a glob).
            datetime: an instant, ``"a/b"``, ``"2024-06"``, ``"../b"``, datetimes or a pair.
            bbox: ``[west, south, east, north]`` (or 6 numbers), or ``"w,s,e,n"``.
            intersects: a GeoJSON geometry, or any object with ``__geo_interface__``.
            query: the query-extension object, ``{"eo:cloud_cover": {"lt": 50}}``.
            filter: CQL2-text (``"eo:cloud_cover < 50"``) or CQL2-JSON (a dict), validated
                before any request; sent as CQL2-JSON in POST bodies, CQL2-text in GET queries.
            filter_lang: ``"cql2-text"`` or ``"cql2-json"``: what ``filter`` is written in
                (default: told by its type).
            ids: item ids (a list or ``"a,b"``).
            sortby: ``"-datetime,+id"``, ``["-eo:cloud_cover"]`` or
                ``[{"field": ..., "direction": "asc"|"desc"}]``. Sent to the server, and the
                GeoDataFrame / items come back sorted by it (``stream()`` and ``to_parquet()``
                cannot keep an order: pages arrive in parallel).
            fields: the fields extension: ``["id", "-assets"]``, ``"id,-assets"`` or
                ``{"include": [...], "exclude": [...]}``; excluded fields are absent columns
                (``geometry`` excluded: null geometries). ``id``/``collection`` are always kept.
            method: ``"GET"`` or ``"POST"``: force that method for searches (default: POST when
                the landing page advertises it).
            concurrency: parallel requests per entry (int) or ``{"workers", "chunk_size"}``.
            limit: items per page asked of the server (1..10000).
            max_items: the first N items per entry in the server's order (paged, not split).
            retry: a :class:`RetryConfig` or its dict (retries, backoff, timeouts).
            headers: HTTP headers for the catalogs' own origins (e.g. ``Authorization``); their
                values never reach a log record (stacfetch redacts them during a run).
            modifier: called with every page (a dict) before its items are kept.
            request_modifier: called with every ``httpx.Request`` to a catalog's origin
                (sign it, add a token).
            progress: ``"auto"``, True/False, ``"notebook"``, ``"terminal"``, or an EventSink.
            strict: raise :class:`IncompleteIngestError` at the end when chunks failed.
            decoders: decoder processes for JSON->Arrow (0: in-process; None: chosen).
        """
        cfg = IngestConfig.model_validate(config) if config is not None else IngestConfig()
        updates: dict[str, Any] = {}
        for name, value in (
            ("source_file", source_file),
            ("concurrency", concurrency),
            ("limit", limit),
            ("max_items", max_items),
            ("retry", retry),
        ):
            if value is not None:
                updates[name] = value
        filters = cfg.filters.model_dump(exclude_none=True)
        local = {
            "bbox": bbox,
            "datetime": datetime,
            "intersects": intersects,
            "query": query,
            "filter": filter,
            "filter_lang": filter_lang,
            "ids": ids,
            "sortby": sortby,
            "fields": fields,
            "method": method,
        }
        filters.update({k: v for k, v in local.items() if v is not None})
        updates["filters"] = filters
        self.config: IngestConfig = IngestConfig.model_validate(
            {**cfg.model_dump(exclude_none=True), **updates}
        )
        self.entries: list[Entry] = _entries_from(url, collections, matrix, self.config)
        self._check_sources()
        if headers is not None and not (
            isinstance(headers, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise ConfigurationError("headers: expected a mapping of str to str")
        for name, fn in (("modifier", modifier), ("request_modifier", request_modifier)):
            if fn is not None and not callable(fn):
                raise ConfigurationError(f"{name}: expected a callable, got {fn!r}")
        if decoders is not None and (
            isinstance(decoders, bool) or not isinstance(decoders, int) or decoders < 0
        ):
            raise ConfigurationError(
                f"decoders: expected an integer >= 0 (0 decodes in-process), got {decoders!r}"
            )
        self.decoders = default_decoders() if decoders is None else decoders
        """Decoder processes for ``ingest()`` and ``to_parquet()`` (0: decode in-process)."""
        self.headers = dict(headers or {})
        self.modifier = modifier
        self.request_modifier = request_modifier
        self.progress = progress
        self.strict = strict
        self.failures = FailureCollector()
        self.tracker = ProgressTracker()
        self.output: str | None = None
        """Where a workflow file asked the output to go (``stacfetch run`` writes there)."""
        self._seen: dict[str, set[tuple[str, str]]] = {e.key: set() for e in self.entries}
        self._tables: dict[str, list[pa.Table]] = {e.key: [] for e in self.entries}
        self._catalogs: dict[str, Any] = {}
        self._ran = False
        if progress not in (None, False, True, "auto") and not isinstance(progress, EventSink):
            from ._display.auto import check_progress

            check_progress(progress)

    @classmethod
    def from_config(
        cls, source: str | os.PathLike[str] | Mapping[str, Any], **overrides: Any
    ) -> Ingestor:
        """Build an Ingestor from a workflow file (YAML/JSON with ``strategy.matrix``) or dict.

        Keyword ``overrides`` replace the file's arguments (e.g. ``progress=False``).

        Example:
            >>> ing = Ingestor.from_config({
            ...     "catalog_url": "https://earth-search.aws.element84.com/v1",
            ...     "strategy": {"matrix": [{"collection_id": "sentinel-2-l2a"}]},
            ...     "ingest": {"concurrency": 8, "filters": {"datetime": "2024-06"}},
            ... }, progress=False)
            >>> [e.collection_id for e in ing.entries]
            ['sentinel-2-l2a']
        """
        from ._workflow import load_workflow

        spec = load_workflow(source)
        kwargs = {**spec.ingestor_kwargs(), **overrides}
        ing = cls(**kwargs)
        ing.output = spec.output
        return ing

    def __repr__(self) -> str:
        labels = ", ".join(e.label for e in self.entries)
        noun = "entry" if len(self.entries) == 1 else "entries"
        return f"<Ingestor {len(self.entries)} {noun}: {labels}>"

    @property
    def summary(self) -> RunSummary:
        """What the runs so far did: items per entry, duplicates dropped, requests, retries,
        failed chunks and time (text with ``print``, a table in Jupyter).

        Example:
            >>> ing = Ingestor("https://x/stac", collections=["c1"], progress=False)
            >>> ing.summary.state
            'not started'
        """
        from ._display.summary import RunSummary

        return RunSummary.of(self.tracker, self.failures)

    def _repr_html_(self) -> str:
        """The Ingestor in Jupyter: its entries, filters, run state and counts."""
        import html

        from ._display.summary import RunSummary

        summary = RunSummary.of(self.tracker, self.failures)
        failed = {r.entry_key for r in self.failures}
        cell = "padding:2px 8px;text-align:left"
        rows = []
        for e in self.entries:
            tracked = self.tracker.entries.get(e.key)
            where = e.source_file or e.catalog_url or ""
            items = f"{tracked.items:,}" if tracked is not None else "–"
            if tracked is None:
                state = "not started"
            elif tracked.finished is None:
                state = "running"
            elif tracked.error or e.key in failed:
                state = "failed"
            else:
                state = "done"
            cells = (e.label, where, items, state)
            rows.append(
                "<tr>"
                + "".join(f"<td style='{cell}'>{html.escape(c)}</td>" for c in cells)
                + "</tr>"
            )
        filters = self.config.filters.model_dump(mode="json", exclude_none=True)
        shown = ", ".join(f"{k}={v!r}" for k, v in filters.items()) or "none"
        head = "".join(f"<th style='{cell}'>{h}</th>" for h in ("entry", "from", "items", "state"))
        noun = "entry" if len(self.entries) == 1 else "entries"
        return (
            f"<div class='stacfetch-ingestor'><div><b>Ingestor</b> · {len(self.entries)} "
            f"{noun} · {html.escape(summary.state)} · {summary.items:,} items · "
            f"{summary.failed_chunks:,} failed chunks</div>"
            f"<div>filters: <code>{html.escape(shown)}</code></div>"
            f"<table style='border-collapse:collapse;font-size:90%'><thead><tr>{head}</tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
        )

    def _new_run(self) -> None:
        """Start a run of its own: ``ingest()``, ``stream()`` and ``to_parquet()`` each fetch the
        whole search again (``retry_failed()`` is the one call that continues the last run)."""
        self._seen = {e.key: set() for e in self.entries}
        self._tables = {e.key: [] for e in self.entries}
        self.failures.clear()

    def _check_sources(self) -> None:
        sources = [e.source_file for e in self.entries if e.source_file]
        if sources:
            from ._formats.sources import resolve_source

            for pattern in sources:
                resolve_source(pattern)

    # -- events ------------------------------------------------------------------------------
    def _make_renderer(self) -> Any:
        """One progress renderer per run, built on the calling thread (the kernel's, in
        Jupyter, so widget updates from the runner thread reach the right cell)."""
        if self.progress in (None, False):
            return None
        from ._display.auto import make_progress

        return make_progress(
            self.progress, on_retry=self._retry_from_widget, failures=self.failures
        )

    def _retry_from_widget(self) -> Coroutine[Any, Any, gpd.GeoDataFrame]:
        """The "Retry failed" button: build (and display) the retry's progress now, while the
        click is being handled (JupyterLab drops output displayed after it), then run."""
        return self._aretry(self._make_renderer())

    def _sink(self, renderer: Any) -> EventSink:
        return fanout(self.tracker, renderer)

    def failure_table(self) -> Any:
        """A live failure table with a "Retry failed" button (ipywidgets), for notebooks.

        Example::

            ing.failure_table()
        """
        from ._display.notebook import FailureTableWidget

        return FailureTableWidget(self.failures, on_retry=self._retry_from_widget)

    # -- the raw stream ----------------------------------------------------------------------
    async def _outputs(
        self,
        tasks: list[EntryTask],
        sink: EventSink,
        arrow: bool = False,
        chunk_size: int | None = None,
    ) -> AsyncIterator[Output]:
        """Pages and chunk ends of every entry; ``arrow``: pages carry Arrow tables when
        decoder processes are on (see :mod:`stacfetch._engine.decoder`)."""
        api = [t for t in tasks if t.entry.source_file is None]
        files = [t for t in tasks if t.entry.source_file is not None]
        # the engine decides whether to start it (not with a page modifier, nor for small runs)
        decoder = DecoderPool(self.decoders) if arrow and api and self.decoders > 0 else None
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(redacting_logs(self.headers))
            stack.enter_context(gc_relaxed())
            if decoder is not None:
                await stack.enter_async_context(decoder)
            async for out in self._outputs_in(api, files, sink, decoder, chunk_size):
                _announce(out, sink)
                yield out

    async def _outputs_in(
        self,
        api: list[EntryTask],
        files: list[EntryTask],
        sink: EventSink,
        decoder: DecoderPool | None,
        chunk_size: int | None = None,
    ) -> AsyncIterator[Output]:
        cfg = self.config
        origins = {origin_of(e.catalog_url) for e in self.entries if e.catalog_url}
        async with HttpSession(
            cfg.retry,
            max_concurrency=cfg.concurrency.workers,
            headers=self.headers,
            request_modifier=self.request_modifier,
            trusted_origins=origins,
        ) as http:
            engine = FetchEngine(
                http,
                sink=sink,
                failures=self.failures,
                workers=cfg.concurrency.workers,
                limit=cfg.limit,
                chunk_size=chunk_size or cfg.concurrency.chunk_size,
                modifier=self.modifier,
                max_items=cfg.max_items,
                headers=self.headers,
                request_modifier=self.request_modifier,
                catalogs=self._catalogs,
                decoder=decoder,
            )
            await self._prepare(http, api)
            by_collection = [t for t in api if t.entry.collection_id is not None]
            across = [t for t in api if t.entry.collection_id is None]
            sources: list[AsyncIterator[Output]] = []
            if by_collection:
                sources.append(engine.stream(by_collection))
            for task in across:
                assert task.entry.catalog_url is not None
                sources.append(
                    catalog_ids_stream(
                        task,
                        self._catalogs[task.entry.catalog_url][0],
                        http,
                        sink=sink,
                        failures=self.failures,
                        limit=cfg.limit,
                        max_items=cfg.max_items,
                        modifier=self.modifier,
                    )
                )
            sources.extend(self._file_stream(t, sink) for t in files)
            async for out in _merge(sources):
                yield out

    async def _prepare(self, http: HttpSession, api: list[EntryTask]) -> None:
        """Before the engine: discover the catalogs that need it here (``ids`` across a
        catalog, searches to probe), and probe searches a server may reject (raises
        :class:`~stacfetch.SearchRejectedError` once, before any chunk is fetched)."""
        probing = [t for t in api if t.chunks is None and needs_probe(t.filters)]
        across = [t for t in api if t.entry.collection_id is None]
        urls = {t.entry.catalog_url for t in [*probing, *across] if t.entry.catalog_url}
        await asyncio.gather(
            *(
                discover(self._catalogs, url, http, self.headers, self.request_modifier)
                for url in sorted(urls)
            )
        )
        await asyncio.gather(
            *(
                probe(http, self._catalogs[t.entry.catalog_url][0], t)
                for t in probing
                if t.entry.catalog_url
            )
        )

    async def _file_stream(self, task: EntryTask, sink: EventSink) -> AsyncIterator[Output]:
        from ._formats.sources import aiter_source_pages

        entry = task.entry
        assert entry.source_file is not None
        seen = task.seen if task.seen is not None else set()
        chunk = Chunk.make(entry, Interval(None, None))
        sink.emit(EntryStarted(entry.key, entry.label))
        sink.emit(EntryPlanned(entry.key, 1, None))
        yield PlanReady(entry, (chunk,))
        total = 0
        async for page in aiter_source_pages(entry.source_file, page_size=self.config.limit):
            new = []
            for item in page:
                key = (
                    str(item.get("collection") or entry.collection_id or ""),
                    str(item.get("id")),
                )
                if key not in seen:
                    seen.add(key)
                    new.append(item)
            total += len(new)
            sink.emit(PageFetched(entry.key, chunk.chunk_id, len(new), len(page) - len(new)))
            if new:
                yield Page(entry, "file", new)
        sink.emit(ChunkDone(entry.key, chunk.chunk_id, total))
        yield ChunkEnd(entry, chunk, ok=True)
        sink.emit(EntryDone(entry.key, total, 0))

    def _tasks(self, plan: Mapping[str, list[Chunk] | None] | None = None) -> list[EntryTask]:
        """Tasks for every entry (``plan`` None), or per entry: None = plan afresh, a list =
        exactly these chunks, missing or empty = nothing to do."""
        tasks = []
        for e in self.entries:
            chunks = None if plan is None else plan.get(e.key, [])
            if chunks is not None and not chunks:
                continue
            tasks.append(EntryTask(e, self.config.filters, chunks=chunks, seen=self._seen[e.key]))
        return tasks

    async def stream(self) -> AsyncIterator[dict[str, Any]]:
        """The raw interleaved stream of item dicts, exactly once, as pages arrive.

        In no particular order: ``sortby`` is sent to the server, but pages of parallel chunks
        interleave, so the stream cannot keep it (``ingest()`` and ``items()`` sort the result).

        Example:
            >>> async def count(ing: Ingestor) -> int:
            ...     return sum([1 async for _ in ing.stream()])
        """
        renderer = self._make_renderer()
        sink = self._sink(renderer)
        self._new_run()
        try:
            async for out in self._outputs(self._tasks(), sink):
                if isinstance(out, Page):
                    for item in out.items:
                        yield item
        finally:
            self._finish(sink, renderer)

    def _finish(self, sink: EventSink, renderer: Any) -> None:
        items = sum(p.items for p in self.tracker.entries.values())
        sink.emit(RunDone(items, len(self.failures)))
        if renderer is not None:
            renderer.close()

    # -- GeoDataFrame results ----------------------------------------------------------------
    async def _collect(self, tasks: list[EntryTask], renderer: Any) -> None:
        from ._formats.tables import items_to_arrow

        self._ran = True
        sink = self._sink(renderer)
        batches: dict[str, list[dict[str, Any]]] = {}
        pending: list[asyncio.Task[None]] = []

        async def convert(key: str, items: list[dict[str, Any]]) -> None:
            table = await asyncio.to_thread(items_to_arrow, items)
            self._tables[key].append(table)

        def flush(key: str) -> None:
            items = batches.pop(key, [])
            if items:
                pending.append(asyncio.ensure_future(convert(key, items)))

        try:
            async for out in self._outputs(tasks, sink, arrow=True):
                if not isinstance(out, Page):
                    continue
                if out.table is not None:
                    self._tables[out.entry.key].append(out.table)
                    continue
                cid = out.entry.collection_id
                for item in out.items:
                    if cid and not item.get("collection"):
                        item["collection"] = cid
                batch = batches.setdefault(out.entry.key, [])
                batch.extend(out.items)
                if len(batch) >= CONVERT_BATCH:
                    flush(out.entry.key)
                    pending[:] = [p for p in pending if not p.done()] + []
                    if len(pending) > 2:  # bound memory: at most a few batches in flight
                        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for key in list(batches):
                flush(key)
            await asyncio.gather(*pending)
        finally:
            for p in pending:
                p.cancel()
            self._finish(sink, renderer)
        if self.strict and self.failures:
            raise IncompleteIngestError(
                f"{len(self.failures)} chunk(s) failed; see .failures and retry_failed()",
                self.failures,
            )

    def _result(self) -> gpd.GeoDataFrame:
        from ._formats.results import sort_frame
        from ._formats.tables import arrow_to_geodataframe, concat_tables

        tables = [t for key in self._tables for t in self._tables[key]]
        frame = arrow_to_geodataframe(concat_tables(tables))
        sortby = self.config.filters.sortby
        return sort_frame(frame, sortby) if sortby else frame

    # -- results for the pystac world --------------------------------------------------------
    def _item_dicts(self) -> list[dict[str, Any]]:
        from ._formats.results import coerce_integers, sort_items
        from ._formats.sources import table_to_items
        from ._formats.tables import concat_tables

        tables = [t for key in self._tables for t in self._tables[key]]
        items = [coerce_integers(item) for item in table_to_items(concat_tables(tables))]
        return sort_items(items, self.config.filters.sortby)

    async def aitems_as_dicts(self) -> list[dict[str, Any]]:
        """Async twin of :meth:`items_as_dicts`.

        Example::

            dicts = await Ingestor(url, collections=["c1"], ids=["a", "b"]).aitems_as_dicts()
        """
        if not self._ran:
            await self._collect(self._tasks(), self._make_renderer())
        return self._item_dicts()

    def items_as_dicts(self) -> list[dict[str, Any]]:
        """Every item as a STAC item dict (pystac-client's ``ItemSearch.items_as_dicts()``).

        Fetches like :meth:`ingest` unless this Ingestor has already run (then it gives back
        what was fetched, retries included). In ``sortby`` order when one was given; the
        values are those of the GeoDataFrame's Arrow table (datetimes as RFC 3339 in UTC,
        integer fields as ``int``).

        Example::

            dicts = Ingestor(url, collections=["sentinel-2-l2a"], bbox=bbox,
                             datetime="2024-06", sortby="-eo:cloud_cover").items_as_dicts()
        """
        if not self._ran:
            renderer = self._make_renderer()
            run_sync(lambda: self._collect(self._tasks(), renderer))
        return self._item_dicts()

    def items(self) -> list[pystac.Item]:
        """Every item as a :class:`pystac.Item` (pystac-client's ``ItemSearch.items()``, as a
        list): ready for ``odc.stac.load(items, ...)`` and ``stackstac.stack(items, ...)``.

        Example::

            items = Ingestor(url, collections=["sentinel-2-l2a"], bbox=bbox,
                             datetime="2024-06").items()
            xx = odc.stac.load(items, bands=["B04"], chunks={})
        """
        from ._formats.results import to_pystac_items

        return to_pystac_items(self.items_as_dicts())

    async def aitems(self) -> list[pystac.Item]:
        """Async twin of :meth:`items`.

        Example::

            items = await Ingestor(url, collections=["c1"]).aitems()
        """
        from ._formats.results import to_pystac_items

        return to_pystac_items(await self.aitems_as_dicts())

    def item_collection(self) -> pystac.ItemCollection:
        """Every item in a :class:`pystac.ItemCollection` (pystac-client's
        ``ItemSearch.item_collection()``).

        Example::

            ic = Ingestor(url, collections=["c1"]).item_collection()
            ic.save_object("items.json")
        """
        import pystac

        return pystac.ItemCollection(self.items())

    async def aitem_collection(self) -> pystac.ItemCollection:
        """Async twin of :meth:`item_collection`.

        Example::

            ic = await Ingestor(url, collections=["c1"]).aitem_collection()
        """
        import pystac

        return pystac.ItemCollection(await self.aitems())

    @property
    def frames(self) -> dict[str, gpd.GeoDataFrame]:
        """Per-entry GeoDataFrames of what has been fetched so far, keyed by entry label."""
        from ._formats.tables import arrow_to_geodataframe, concat_tables

        return {
            e.label: arrow_to_geodataframe(concat_tables(self._tables[e.key])) for e in self.entries
        }

    async def aingest(self) -> gpd.GeoDataFrame:
        """Fetch everything and return one GeoDataFrame (``collection`` column per row).

        Example::

            gdf = await Ingestor(url, collections=["c1", "c2"]).aingest()
        """
        return await self._aingest(self._make_renderer())

    async def _aingest(self, renderer: Any) -> gpd.GeoDataFrame:
        self._new_run()
        await self._collect(self._tasks(), renderer)
        return self._result()

    def ingest(self) -> gpd.GeoDataFrame:
        """Sync twin of :meth:`aingest`; works in scripts and inside Jupyter's running loop.

        Example::

            gdf = Ingestor(url, collections=["c1"]).ingest()
        """
        renderer = self._make_renderer()
        return run_sync(lambda: self._aingest(renderer))

    def _failed_chunks(self) -> dict[str, list[Chunk] | None]:
        chunks: dict[str, list[Chunk] | None] = {}
        for chunk in self.failures.chunks:
            listed = chunks.setdefault(chunk.entry.key, [])
            assert listed is not None
            listed.append(chunk)
        return chunks

    async def aretry_failed(self) -> gpd.GeoDataFrame:
        """Re-run exactly the failed chunks; merge into the result without duplicates.

        Example::

            gdf = await ing.aretry_failed()
        """
        return await self._aretry(self._make_renderer())

    async def _aretry(self, renderer: Any) -> gpd.GeoDataFrame:
        chunks = self._failed_chunks()
        if chunks:
            self.failures.clear()
            await self._collect(self._tasks(chunks), renderer)
        elif renderer is not None:
            renderer.close()
        return self._result()

    def retry_failed(self) -> gpd.GeoDataFrame:
        """Sync twin of :meth:`aretry_failed`.

        Example::

            gdf = ing.retry_failed()
        """
        renderer = self._make_renderer()
        return run_sync(lambda: self._aretry(renderer))

    # -- GeoParquet output with resume ---------------------------------------------------------
    def _signature(self) -> dict[str, Any]:
        return {
            "entries": [e.key for e in self.entries],
            "filters": self.config.filters.model_dump(mode="json", exclude_none=True),
        }

    def to_parquet(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        rows_per_part: int = FLUSH_ROWS,
        client: Any = None,
    ) -> Path:
        """Stream every item to a GeoParquet dataset (a directory of parts) with bounded memory.

        Parts are written as pages arrive: ``sortby`` order is not kept (sort when reading).

        With ``client`` (a ``distributed.Client`` or a scheduler address), the chunks run as Dask
        tasks that each write their own parts (``docs/dask.md``). Killed at any moment, the same
        call resumes: chunks already on disk are skipped and the
        result is exactly the set of an uninterrupted run (see ``_resume``). Read it back with
        :func:`stacfetch.read_geoparquet` (or geopandas/DuckDB/rustac on the directory).

        Example::

            ing.to_parquet("s2-alps.parquet")   # -> PosixPath('s2-alps.parquet')
        """
        renderer = self._make_renderer()
        if client is not None:
            from ._dask.driver import dask_to_parquet

            with redacting_logs(self.headers):
                return run_sync(
                    lambda: dask_to_parquet(
                        self,
                        path,
                        client,
                        overwrite=overwrite,
                        rows_per_part=rows_per_part,
                        renderer=renderer,
                    )
                )
        return run_sync(lambda: self._to_parquet(path, overwrite, rows_per_part, renderer))

    async def ato_parquet(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        rows_per_part: int = FLUSH_ROWS,
        client: Any = None,
    ) -> Path:
        """Async twin of :meth:`to_parquet`."""
        if client is not None:
            from ._dask.driver import dask_to_parquet

            return await dask_to_parquet(
                self,
                path,
                client,
                overwrite=overwrite,
                rows_per_part=rows_per_part,
                renderer=self._make_renderer(),
            )
        return await self._to_parquet(path, overwrite, rows_per_part, self._make_renderer())

    async def _to_parquet(
        self, path: str | os.PathLike[str], overwrite: bool, rows_per_part: int, renderer: Any
    ) -> Path:
        if (
            isinstance(rows_per_part, bool)
            or not isinstance(rows_per_part, int)
            or rows_per_part < 1
        ):
            raise ConfigurationError(
                f"rows_per_part: must be an integer >= 1, got {rows_per_part!r}"
            )
        import time

        import pyarrow.parquet as pq

        from ._formats.geoparquet import unify_parts, write_part
        from ._formats.tables import concat_tables, items_to_arrow
        from ._run.resume import Manifest

        manifest = Manifest.open(path, self._signature(), overwrite=overwrite)
        self._new_run()
        index = {e.key: i for i, e in enumerate(self.entries)}
        for i, files in manifest.parts().items():
            if i < len(self.entries):
                seen = self._seen[self.entries[i].key]
                for file in files:
                    keys = pq.read_table(file, columns=["collection", "id"])
                    seen.update(
                        zip(
                            keys.column("collection").to_pylist(),
                            keys.column("id").to_pylist(),
                            strict=True,
                        )
                    )
        plan = {e.key: manifest.pending(i) for i, e in enumerate(self.entries)}
        tasks = self._tasks(plan)
        sink = self._sink(renderer)
        # a part's rows: item dicts (decoded in-process) and Arrow tables (decoder processes)
        Rows = tuple[list[dict[str, Any]], list["pa.Table"]]
        Job = tuple[int, Rows, list[tuple[Chunk, tuple[Chunk, ...]]]]
        jobs: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=2)
        written: list[pa.Schema] = []  # the schema of the last part: the next conforms to it

        def write(i: int, rows: Rows) -> None:
            items, tables = rows
            table = concat_tables([*tables, *([items_to_arrow(items)] if items else [])])
            name = manifest.path / f"{manifest.next_part_name(i)}.parquet"
            written[:] = [write_part(table, name, written[0] if written else None)]

        async def writer() -> None:
            while (job := await jobs.get()) is not None:
                i, rows, ends = job
                if rows[0] or rows[1]:
                    await asyncio.to_thread(write, i, rows)
                manifest.record_done(i, ends)
                await asyncio.to_thread(manifest.save)

        buffers: dict[int, Rows] = {}
        ends: dict[int, list[tuple[Chunk, tuple[Chunk, ...]]]] = {}
        writing = asyncio.ensure_future(writer())
        last_flush = time.monotonic()
        chunk_size = self.config.concurrency.chunk_size or self.config.limit * RESUME_CHUNK_PAGES
        try:
            async for out in self._outputs(tasks, sink, arrow=True, chunk_size=chunk_size):
                if writing.done():
                    writing.result()  # surface a write error now
                i = index[out.entry.key]
                if isinstance(out, PlanReady):
                    manifest.record_plan(i, out.chunks)
                elif isinstance(out, ChunkEnd):
                    if out.ok:
                        ends.setdefault(i, []).append((out.chunk, out.children))
                else:
                    items, tables = buffers.setdefault(i, ([], []))
                    if out.table is not None:
                        tables.append(out.table)
                    else:
                        cid = out.entry.collection_id
                        for item in out.items:
                            if cid and not item.get("collection"):
                                item["collection"] = cid
                        items.extend(out.items)
                    if len(items) + sum(t.num_rows for t in tables) >= rows_per_part:
                        await jobs.put((i, buffers.pop(i), ends.pop(i, [])))
                if time.monotonic() - last_flush >= FLUSH_SECONDS:
                    # on time as well as on size: a kill loses at most FLUSH_SECONDS of work
                    for j in sorted(set(buffers) | set(ends)):
                        await jobs.put((j, buffers.pop(j, ([], [])), ends.pop(j, [])))
                    last_flush = time.monotonic()
            for i in sorted(set(buffers) | set(ends)):
                await jobs.put((i, buffers.pop(i, ([], [])), ends.pop(i, [])))
            await jobs.put(None)
            await writing
        finally:
            writing.cancel()
            self._finish(sink, renderer)
        pending = any(manifest.pending(i) for i in range(len(self.entries)))
        if not pending:
            from ._formats.part_dedup import deduplicate_parts

            # a local run never writes an item twice, but an interrupted Dask run may have
            # left copies that its final pass did not get to remove
            await asyncio.to_thread(deduplicate_parts, manifest.path)
        # one schema for every part: every reader reads the directory whole (0005)
        await asyncio.to_thread(unify_parts, manifest.path, f"{manifest.next_part_name(0)}.parquet")
        manifest.set_complete(not pending and not self.failures)
        if self.strict and self.failures:
            raise IncompleteIngestError(
                f"{len(self.failures)} chunk(s) failed; run the same call again (or "
                "retry_failed()) to fetch them",
                self.failures,
            )
        return manifest.path


def _announce(out: Output, sink: EventSink) -> None:
    """Tell the front ends where the chunks search (the timeline), from the engine's plan and
    split outputs: ``ChunksPlanned`` is idempotent, so an engine that sends it too is fine."""
    if isinstance(out, PlanReady):
        sink.emit(ChunksPlanned(out.entry.key, tuple(ChunkSpan.of(c) for c in out.chunks)))
    elif isinstance(out, ChunkEnd) and out.children:
        spans = tuple(ChunkSpan.of(c) for c in out.children)
        sink.emit(ChunksPlanned(out.entry.key, spans, parent_id=out.chunk.chunk_id))


async def _merge(sources: list[AsyncIterator[Any]]) -> AsyncIterator[Any]:
    """Interleave several async iterators; errors propagate; all are closed on exit."""
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


def ingest(
    url: str | None = None,
    *,
    collections: Sequence[str] | str | None = None,
    matrix: Sequence[Mapping[str, Any]] | None = None,
    config: IngestConfig | Mapping[str, Any] | None = None,
    source_file: str | None = None,
    datetime: Any = None,
    bbox: Any = None,
    intersects: Any = None,
    query: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | str | None = None,
    filter_lang: str | None = None,
    ids: Sequence[str] | str | None = None,
    sortby: Any = None,
    fields: Sequence[str] | Mapping[str, Sequence[str]] | str | None = None,
    method: str | None = None,
    concurrency: int | Mapping[str, Any] | None = None,
    limit: int | None = None,
    max_items: int | None = None,
    retry: RetryConfig | Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    modifier: Callable[[Any], Any] | None = None,
    request_modifier: Callable[[Any], Any] | None = None,
    progress: bool | str | EventSink | None = "auto",
    strict: bool = False,
    decoders: int | None = None,
) -> gpd.GeoDataFrame:
    """Fetch every item of a search into a GeoDataFrame: ``Ingestor(url, ...).ingest()``.

    The parameters are :class:`Ingestor`'s, one for one (pystac-client's ``Client.search()``
    arguments keep their names: ``docs/from-pystac-client.md``).

    Args:
        url: the STAC API root (e.g. ``https://planetarycomputer.microsoft.com/api/stac/v1``).
        collections: collection ids (a list or ``"a,b"``); each is one entry fetched in
            parallel. Leave it out with ``ids`` to search the whole catalog.
        matrix: entries ``[{"collection_id": ..., "catalog_url": ...}]`` (several catalogs).
        config: an :class:`IngestConfig` or its dict; the keywords below override it.
        source_file: file mode: STAC items from JSON/NDJSON/GeoParquet files (a glob).
        datetime: an instant, ``"a/b"``, ``"2024-06"``, ``"../b"``, datetimes or a pair.
        bbox: ``[west, south, east, north]`` (or 6 numbers), or ``"w,s,e,n"``.
        intersects: a GeoJSON geometry, or any object with ``__geo_interface__``.
        query: the query-extension object, ``{"eo:cloud_cover": {"lt": 50}}``.
        filter: CQL2-text (``"eo:cloud_cover < 50"``) or CQL2-JSON (a dict), validated
            before any request; sent as CQL2-JSON in POST bodies, CQL2-text in GET queries.
        filter_lang: ``"cql2-text"`` or ``"cql2-json"``: what ``filter`` is written in
            (default: told by its type).
        ids: item ids (a list or ``"a,b"``).
        sortby: ``"-datetime,+id"``, ``["-eo:cloud_cover"]`` or
            ``[{"field": ..., "direction": "asc"|"desc"}]``. Sent to the server, and the
            GeoDataFrame / items come back sorted by it (``stream()`` and ``to_parquet()``
            cannot keep an order: pages arrive in parallel).
        fields: the fields extension: ``["id", "-assets"]``, ``"id,-assets"`` or
            ``{"include": [...], "exclude": [...]}``; excluded fields are absent columns
            (``geometry`` excluded: null geometries). ``id``/``collection`` are always kept.
        method: ``"GET"`` or ``"POST"``: force that method for searches (default: POST when
            the landing page advertises it).
        concurrency: parallel requests per entry (int) or ``{"workers", "chunk_size"}``.
        limit: items per page asked of the server (1..10000).
        max_items: the first N items per entry in the server's order (paged, not split).
        retry: a :class:`RetryConfig` or its dict (retries, backoff, timeouts).
        headers: HTTP headers for the catalogs' own origins (e.g. ``Authorization``); their
            values never reach a log record (stacfetch redacts them during a run).
        modifier: called with every page (a dict) before its items are kept.
        request_modifier: called with every ``httpx.Request`` to a catalog's origin
            (sign it, add a token).
        progress: ``"auto"``, True/False, ``"notebook"``, ``"terminal"``, or an EventSink.
        strict: raise :class:`IncompleteIngestError` at the end when chunks failed.
        decoders: decoder processes for JSON->Arrow (0: in-process; None: chosen).

    Example::

        import stacfetch
        gdf = stacfetch.ingest("https://earth-search.aws.element84.com/v1",
                               collections=["sentinel-2-l2a"], datetime="2024-06",
                               bbox=[5.9, 45.8, 10.5, 47.8], concurrency=16)
    """
    return Ingestor(
        url,
        collections=collections,
        matrix=matrix,
        config=config,
        source_file=source_file,
        datetime=datetime,
        bbox=bbox,
        intersects=intersects,
        query=query,
        filter=filter,
        filter_lang=filter_lang,
        ids=ids,
        sortby=sortby,
        fields=fields,
        method=method,
        concurrency=concurrency,
        limit=limit,
        max_items=max_items,
        retry=retry,
        headers=headers,
        modifier=modifier,
        request_modifier=request_modifier,
        progress=progress,
        strict=strict,
        decoders=decoders,
    ).ingest()


async def aingest(
    url: str | None = None,
    *,
    collections: Sequence[str] | str | None = None,
    matrix: Sequence[Mapping[str, Any]] | None = None,
    config: IngestConfig | Mapping[str, Any] | None = None,
    source_file: str | None = None,
    datetime: Any = None,
    bbox: Any = None,
    intersects: Any = None,
    query: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | str | None = None,
    filter_lang: str | None = None,
    ids: Sequence[str] | str | None = None,
    sortby: Any = None,
    fields: Sequence[str] | Mapping[str, Sequence[str]] | str | None = None,
    method: str | None = None,
    concurrency: int | Mapping[str, Any] | None = None,
    limit: int | None = None,
    max_items: int | None = None,
    retry: RetryConfig | Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    modifier: Callable[[Any], Any] | None = None,
    request_modifier: Callable[[Any], Any] | None = None,
    progress: bool | str | EventSink | None = "auto",
    strict: bool = False,
    decoders: int | None = None,
) -> gpd.GeoDataFrame:
    """Async twin of :func:`ingest`: ``await Ingestor(url, ...).aingest()``.

    Args:
        url: the STAC API root (e.g. ``https://planetarycomputer.microsoft.com/api/stac/v1``).
        collections: collection ids (a list or ``"a,b"``); each is one entry fetched in
            parallel. Leave it out with ``ids`` to search the whole catalog.
        matrix: entries ``[{"collection_id": ..., "catalog_url": ...}]`` (several catalogs).
        config: an :class:`IngestConfig` or its dict; the keywords below override it.
        source_file: file mode: STAC items from JSON/NDJSON/GeoParquet files (a glob).
        datetime: an instant, ``"a/b"``, ``"2024-06"``, ``"../b"``, datetimes or a pair.
        bbox: ``[west, south, east, north]`` (or 6 numbers), or ``"w,s,e,n"``.
        intersects: a GeoJSON geometry, or any object with ``__geo_interface__``.
        query: the query-extension object, ``{"eo:cloud_cover": {"lt": 50}}``.
        filter: CQL2-text (``"eo:cloud_cover < 50"``) or CQL2-JSON (a dict), validated
            before any request; sent as CQL2-JSON in POST bodies, CQL2-text in GET queries.
        filter_lang: ``"cql2-text"`` or ``"cql2-json"``: what ``filter`` is written in
            (default: told by its type).
        ids: item ids (a list or ``"a,b"``).
        sortby: ``"-datetime,+id"``, ``["-eo:cloud_cover"]`` or
            ``[{"field": ..., "direction": "asc"|"desc"}]``. Sent to the server, and the
            GeoDataFrame / items come back sorted by it (``stream()`` and ``to_parquet()``
            cannot keep an order: pages arrive in parallel).
        fields: the fields extension: ``["id", "-assets"]``, ``"id,-assets"`` or
            ``{"include": [...], "exclude": [...]}``; excluded fields are absent columns
            (``geometry`` excluded: null geometries). ``id``/``collection`` are always kept.
        method: ``"GET"`` or ``"POST"``: force that method for searches (default: POST when
            the landing page advertises it).
        concurrency: parallel requests per entry (int) or ``{"workers", "chunk_size"}``.
        limit: items per page asked of the server (1..10000).
        max_items: the first N items per entry in the server's order (paged, not split).
        retry: a :class:`RetryConfig` or its dict (retries, backoff, timeouts).
        headers: HTTP headers for the catalogs' own origins (e.g. ``Authorization``); their
            values never reach a log record (stacfetch redacts them during a run).
        modifier: called with every page (a dict) before its items are kept.
        request_modifier: called with every ``httpx.Request`` to a catalog's origin
            (sign it, add a token).
        progress: ``"auto"``, True/False, ``"notebook"``, ``"terminal"``, or an EventSink.
        strict: raise :class:`IncompleteIngestError` at the end when chunks failed.
        decoders: decoder processes for JSON->Arrow (0: in-process; None: chosen).

    Example::

        gdf = await stacfetch.aingest(url, collections=["c1"])
    """
    return await Ingestor(
        url,
        collections=collections,
        matrix=matrix,
        config=config,
        source_file=source_file,
        datetime=datetime,
        bbox=bbox,
        intersects=intersects,
        query=query,
        filter=filter,
        filter_lang=filter_lang,
        ids=ids,
        sortby=sortby,
        fields=fields,
        method=method,
        concurrency=concurrency,
        limit=limit,
        max_items=max_items,
        retry=retry,
        headers=headers,
        modifier=modifier,
        request_modifier=request_modifier,
        progress=progress,
        strict=strict,
        decoders=decoders,
    ).aingest()
