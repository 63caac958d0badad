"""The Ingestor: matrix entries in, one GeoDataFrame (or GeoParquet dataset, or pystac Items) out.

``Ingestor`` validates everything up front (no request is sent for bad input) and resolves it
into one :class:`~stacfetch._run.run.Run`, which every way of running it drives: the local
fetch (:mod:`stacfetch._run.collect`, :mod:`stacfetch._run.parquet`), retry, resume and the
Dask driver. The Ingestor itself only chooses the progress display and hands the run over.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._display.auto import check_progress, make_progress
from ._display.overview import ingestor_html
from ._display.summary import RunSummary
from ._engine.decoder import default_decoders
from ._engine.logsafe import redacting_logs
from ._engine.records import Page
from ._formats.sources import resolve_source
from ._model.arguments import check_hooks, merge_config
from ._model.config import IngestConfig, RetryConfig
from ._model.entries import resolve_entries
from ._model.events import EventSink
from ._model.failures import FailureCollector
from ._model.progress import ProgressTracker
from ._model.types import Entry
from ._pystac_results import PystacResults
from ._run.collect import collect, entry_frames, result_frame
from ._run.parquet import FLUSH_ROWS, to_parquet
from ._run.pipeline import outputs
from ._run.run import Run
from ._run.sync import run_sync

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["ARGS_DOC", "Ingestor", "with_args"]

ARGS_DOC = """\
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
"""The keyword arguments of :class:`Ingestor`, :func:`stacfetch.ingest` and
:func:`stacfetch.aingest` (one text, shown by all three)."""


class Ingestor(PystacResults):
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
            {ARGS}
        """
        self.config: IngestConfig = merge_config(
            config,
            {
                "source_file": source_file,
                "concurrency": concurrency,
                "limit": limit,
                "max_items": max_items,
                "retry": retry,
            },
            {
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
            },
        )
        self.entries: list[Entry] = resolve_entries(url, collections, matrix, self.config)
        for pattern in [e.source_file for e in self.entries if e.source_file]:
            resolve_source(pattern)  # a missing file raises now
        check_hooks(headers, modifier, request_modifier, decoders)
        self.progress = progress
        self.run = Run(
            self.entries,
            self.config,
            headers=dict(headers or {}),
            modifier=modifier,
            request_modifier=request_modifier,
            decoders=default_decoders() if decoders is None else decoders,
            strict=strict,
        )
        """Everything this Ingestor resolved, which every way of running it drives."""
        self.failures: FailureCollector = self.run.failures
        """The failed chunks of the last run (``retry_failed()`` fetches them again)."""
        self.tracker: ProgressTracker = self.run.tracker
        """Per-entry progress of the runs so far (what the progress displays draw)."""
        self.headers: dict[str, str] = self.run.headers
        """The HTTP headers sent to the catalogs' own origins (never logged)."""
        self.output: str | None = None
        """Where a workflow file asked the output to go (``stacfetch run`` writes there)."""
        if progress not in (None, False, True, "auto") and not isinstance(progress, EventSink):
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

    # -- what the run holds --------------------------------------------------------------
    @property
    def modifier(self) -> Callable[[Any], Any] | None:
        """Called with every page (a dict) before its items are kept."""
        return self.run.modifier

    @property
    def request_modifier(self) -> Callable[[Any], Any] | None:
        """Called with every ``httpx.Request`` to a catalog's origin."""
        return self.run.request_modifier

    @property
    def decoders(self) -> int:
        """Decoder processes for ``ingest()`` and ``to_parquet()`` (0: decode in-process)."""
        return self.run.decoders

    @property
    def strict(self) -> bool:
        """Raise :class:`~stacfetch.IncompleteIngestError` at the end when chunks failed."""
        return self.run.strict

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
        return RunSummary.of(self.tracker, self.failures)

    def _repr_html_(self) -> str:
        """The Ingestor in Jupyter: its entries, filters, run state and counts."""
        filters = self.config.filters.model_dump(mode="json", exclude_none=True)
        return ingestor_html(self.entries, self.tracker, self.failures, filters)

    # -- progress ----------------------------------------------------------------------------
    def make_renderer(self) -> Any:
        """The progress display of one run (None with ``progress=False``), built on the
        calling thread (the kernel's, in Jupyter, so that widget updates from the runner
        thread reach the right cell). Every call that fetches makes one.

        Example:
            >>> Ingestor("https://x/stac", collections=["c1"], progress=False).make_renderer()
        """
        if self.progress in (None, False):
            return None
        return make_progress(
            self.progress, on_retry=self._retry_from_widget, failures=self.failures
        )

    def _retry_from_widget(self) -> Coroutine[Any, Any, gpd.GeoDataFrame]:
        """The "Retry failed" button: build (and display) the retry's progress now, while the
        click is being handled (JupyterLab drops output displayed after it), then run."""
        return self._aretry(self.make_renderer())

    def failure_table(self) -> Any:
        """A live failure table with a "Retry failed" button (ipywidgets), for notebooks.

        Example::

            ing.failure_table()
        """
        from ._display.failure_table import FailureTableWidget

        return FailureTableWidget(self.failures, on_retry=self._retry_from_widget)

    # -- the raw stream ----------------------------------------------------------------------
    async def stream(self) -> AsyncIterator[dict[str, Any]]:
        """The raw interleaved stream of item dicts, exactly once, as pages arrive.

        In no particular order: ``sortby`` is sent to the server, but pages of parallel chunks
        interleave, so the stream cannot keep it (``ingest()`` and ``items()`` sort the result).

        Example:
            >>> async def count(ing: Ingestor) -> int:
            ...     return sum([1 async for _ in ing.stream()])
        """
        renderer = self.make_renderer()
        sink = self.run.sink(renderer)
        self.run.restart()
        try:
            async for out in outputs(self.run, self.run.tasks(), sink):
                if isinstance(out, Page):
                    for item in out.items:
                        yield item
        finally:
            self.run.finish(sink, renderer)

    # -- GeoDataFrame results ----------------------------------------------------------------
    async def aingest(self) -> gpd.GeoDataFrame:
        """Fetch everything and return one GeoDataFrame (``collection`` column per row).

        Example::

            gdf = await Ingestor(url, collections=["c1", "c2"]).aingest()
        """
        return await self._aingest(self.make_renderer())

    async def _aingest(self, renderer: Any) -> gpd.GeoDataFrame:
        self.run.restart()
        await collect(self.run, self.run.tasks(), renderer)
        return result_frame(self.run)

    def ingest(self) -> gpd.GeoDataFrame:
        """Sync twin of :meth:`aingest`; works in scripts and inside Jupyter's running loop.

        Example::

            gdf = Ingestor(url, collections=["c1"]).ingest()
        """
        renderer = self.make_renderer()
        return run_sync(lambda: self._aingest(renderer))

    @property
    def frames(self) -> dict[str, gpd.GeoDataFrame]:
        """Per-entry GeoDataFrames of what has been fetched so far, keyed by entry label."""
        return entry_frames(self.run)

    async def aretry_failed(self) -> gpd.GeoDataFrame:
        """Re-run exactly the failed chunks; merge into the result without duplicates.

        Example::

            gdf = await ing.aretry_failed()
        """
        return await self._aretry(self.make_renderer())

    async def _aretry(self, renderer: Any) -> gpd.GeoDataFrame:
        chunks = self.run.failed_chunks()
        if chunks:
            self.failures.clear()
            await collect(self.run, self.run.tasks(chunks), renderer)
        elif renderer is not None:
            renderer.close()
        return result_frame(self.run)

    def retry_failed(self) -> gpd.GeoDataFrame:
        """Sync twin of :meth:`aretry_failed`.

        Example::

            gdf = ing.retry_failed()
        """
        renderer = self.make_renderer()
        return run_sync(lambda: self._aretry(renderer))

    # -- GeoParquet output with resume ---------------------------------------------------------
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
        call resumes: chunks already on disk are skipped and the result is exactly the set of
        an uninterrupted run. Read it back with :func:`stacfetch.read_geoparquet` (or
        geopandas/DuckDB/rustac on the directory).

        Example::

            ing.to_parquet("s2-alps.parquet")   # -> PosixPath('s2-alps.parquet')
        """
        renderer = self.make_renderer()
        if client is not None:
            with redacting_logs(self.headers):
                return run_sync(
                    lambda: self._dask(path, client, overwrite, rows_per_part, renderer)
                )
        return run_sync(lambda: to_parquet(self.run, path, overwrite, rows_per_part, renderer))

    async def ato_parquet(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        rows_per_part: int = FLUSH_ROWS,
        client: Any = None,
    ) -> Path:
        """Async twin of :meth:`to_parquet`.

        Example::

            await ing.ato_parquet("s2-alps.parquet")   # -> PosixPath('s2-alps.parquet')
        """
        renderer = self.make_renderer()
        if client is not None:
            return await self._dask(path, client, overwrite, rows_per_part, renderer)
        return await to_parquet(self.run, path, overwrite, rows_per_part, renderer)

    async def _dask(
        self,
        path: str | os.PathLike[str],
        client: Any,
        overwrite: bool,
        rows_per_part: int,
        renderer: Any,
    ) -> Path:
        from ._dask.driver import dask_to_parquet

        return await dask_to_parquet(
            self.run,
            path,
            client,
            overwrite=overwrite,
            rows_per_part=rows_per_part,
            renderer=renderer,
        )


def with_args(doc: str | None) -> str | None:
    """``doc`` with its ``{ARGS}`` line replaced by :data:`ARGS_DOC`, indented like that line.

    Example:
        >>> print(with_args("Args:\\n    {ARGS}").splitlines()[1])
            url: the STAC API root (e.g. ``https://planetarycomputer.microsoft.com/api/stac/v1``).
    """
    if doc is None:
        return None
    match = re.search(r"^( *)\{ARGS\}$", doc, flags=re.M)
    if match is None:
        return doc
    indent = match.group(1)
    text = "\n".join(indent + line if line else "" for line in ARGS_DOC.splitlines())
    return doc[: match.start()] + text + doc[match.end() :]


Ingestor.__init__.__doc__ = with_args(Ingestor.__init__.__doc__)
