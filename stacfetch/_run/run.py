"""A :class:`Run`: everything one Ingestor resolved, once, that every way of running it drives.

The local engine (:mod:`.pipeline`), the GeoDataFrame collector (:mod:`.collect`),
``to_parquet`` (:mod:`.parquet`), retry, resume and the Dask driver all take a ``Run``; none of
them reaches into an Ingestor. :class:`Connection` is the part of it that builds the HTTP
session and the engine (:mod:`.connect`), small and picklable for Dask workers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._engine.http import origin_of
from .._engine.records import EntryTask
from .._engine.search import ApiInfo
from .._model.config import IngestConfig, RetryConfig
from .._model.errors import IncompleteIngestError
from .._model.events import EventSink, RunDone, fanout
from .._model.failures import FailureCollector
from .._model.progress import ProgressTracker
from .._model.types import Chunk, Entry

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Connection", "Run"]


@dataclasses.dataclass(frozen=True)
class Connection:
    """What the HTTP session and the engine are built from (see :func:`.connect.open_engine`).

    ``concurrency`` is the one number behind the parallel requests of an entry: the engine's
    workers, the session's per-host limit and, on Dask, the cluster-wide semaphore.
    ``headers`` and ``request_modifier`` go to the catalogs' own origins (``trusted_origins``)
    only, on both HTTP stacks (httpx for searches, pystac-client for discovery).

    Example:
        >>> from stacfetch import RetryConfig
        >>> c = Connection(RetryConfig(), concurrency=8, limit=500)
        >>> (c.concurrency, c.limit, c.chunk_size)
        (8, 500, None)
    """

    retry: RetryConfig
    concurrency: int
    limit: int
    chunk_size: int | None = None
    max_chunk: int | None = None
    max_items: int | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    trusted_origins: tuple[str, ...] = ()
    modifier: Callable[[Any], Any] | None = None
    request_modifier: Callable[[Any], Any] | None = None


@dataclasses.dataclass(eq=False)
class Run:
    """The resolved entries, config, credentials, failures, progress and caches of an ingest.

    Created once by an :class:`~stacfetch.Ingestor` (which holds it as ``ingestor.run``);
    :meth:`restart` begins a new fetch of the same search (``ingest()``, ``stream()`` and
    ``to_parquet()`` each fetch everything again; ``retry_failed()`` continues).

    Example:
        >>> from stacfetch import Entry, IngestConfig
        >>> run = Run([Entry("https://x/stac", "c1")], IngestConfig())
        >>> run.signature()["entries"]
        ['https://x/stac#c1']
        >>> run.connection().concurrency
        10
    """

    entries: list[Entry]
    config: IngestConfig
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    modifier: Callable[[Any], Any] | None = None
    request_modifier: Callable[[Any], Any] | None = None
    decoders: int = 0
    """Decoder processes for JSON -> Arrow (0: decode in this process)."""
    strict: bool = False
    failures: FailureCollector = dataclasses.field(default_factory=FailureCollector)
    tracker: ProgressTracker = dataclasses.field(default_factory=ProgressTracker)
    catalogs: dict[str, tuple[ApiInfo, Any]] = dataclasses.field(default_factory=dict)
    """Each catalog's landing page, read once (discovery) and shared by every path."""
    seen: dict[str, set[tuple[str, str]]] = dataclasses.field(default_factory=dict)
    """The exactly-once set of each entry: (collection, id) of every item kept."""
    tables: dict[str, list[pa.Table]] = dataclasses.field(default_factory=dict)
    """What ``ingest()`` collected, per entry, as Arrow tables."""
    collected: bool = False
    """Whether a GeoDataFrame result was collected (``items()`` reuses it)."""

    def __post_init__(self) -> None:
        self.seen = {e.key: set() for e in self.entries}
        self.tables = {e.key: [] for e in self.entries}

    def restart(self) -> None:
        """Start a fetch of its own: an empty exactly-once set and no failures."""
        self.seen = {e.key: set() for e in self.entries}
        self.tables = {e.key: [] for e in self.entries}
        self.failures.clear()

    def origins(self) -> tuple[str, ...]:
        """The catalogs' origins: the only ones credentials are sent to."""
        return tuple(sorted({origin_of(e.catalog_url) for e in self.entries if e.catalog_url}))

    def connection(self, max_chunk: int | None = None) -> Connection:
        """The session and engine settings; ``max_chunk`` caps the chunks' size when the
        config sets no ``chunk_size``."""
        cfg = self.config
        return Connection(
            retry=cfg.retry,
            concurrency=cfg.concurrency.workers,
            limit=cfg.limit,
            chunk_size=cfg.concurrency.chunk_size,
            max_chunk=max_chunk,
            max_items=cfg.max_items,
            headers=dict(self.headers),
            trusted_origins=self.origins(),
            modifier=self.modifier,
            request_modifier=self.request_modifier,
        )

    def signature(self) -> dict[str, Any]:
        """What makes two runs the same search (a resumed ``to_parquet`` must match it)."""
        return {
            "entries": [e.key for e in self.entries],
            "filters": self.config.filters.model_dump(mode="json", exclude_none=True),
        }

    def tasks(self, plan: Mapping[str, list[Chunk] | None] | None = None) -> list[EntryTask]:
        """Tasks for every entry (``plan`` None), or per entry: None = plan afresh, a list =
        exactly these chunks, missing or empty = nothing to do."""
        tasks = []
        for e in self.entries:
            chunks = None if plan is None else plan.get(e.key, [])
            if chunks is not None and not chunks:
                continue
            tasks.append(EntryTask(e, self.config.filters, chunks=chunks, seen=self.seen[e.key]))
        return tasks

    def failed_chunks(self) -> dict[str, list[Chunk] | None]:
        """The failed chunks per entry, as a plan for :meth:`tasks` (retry)."""
        chunks: dict[str, list[Chunk] | None] = {}
        for chunk in self.failures.chunks:
            listed = chunks.setdefault(chunk.entry.key, [])
            assert listed is not None
            listed.append(chunk)
        return chunks

    def sink(self, renderer: EventSink | None) -> EventSink:
        """Where a fetch's events go: the tracker (``summary``) and the progress renderer."""
        return fanout(self.tracker, renderer)

    def finish(self, sink: EventSink, renderer: Any) -> None:
        """The end of a fetch: tell the front ends, close the progress display."""
        items = sum(p.items for p in self.tracker.entries.values())
        sink.emit(RunDone(items, len(self.failures)))
        if renderer is not None:
            renderer.close()

    def check_complete(self, hint: str) -> None:
        """With ``strict``, raise :class:`~stacfetch.IncompleteIngestError` when chunks failed
        (``hint`` says how to fetch them)."""
        if self.strict and self.failures:
            raise IncompleteIngestError(
                f"{len(self.failures)} chunk(s) failed; {hint}", self.failures
            )
