"""The seed's own names, for pipeline use: IngestModule, RequestSplitter, temporal_split_search.

``IngestModule(config).fetch(context)`` is the Fetcher of the STAC Manager pipeline: it
resolves its target (config first, then ``context.data``), then yields one interleaved stream
of raw item dicts, from the API (parallel chunks) or from ``source_file``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from ._engine.plan import plan_chunks
from ._ingestor import Ingestor
from ._model.config import IngestConfig, WorkflowContext
from ._model.datetimes import parse_datetime
from ._model.entries import missing_fields, row_entry
from ._model.errors import ConfigurationError
from ._model.filters import IngestFilters
from ._model.types import Chunk, Entry

__all__ = ["IngestModule", "RequestSplitter", "temporal_split_search"]


class IngestModule:
    """The seed's Fetcher for one matrix entry.

    Example:
        >>> module = IngestModule(IngestConfig(concurrency=8))
        >>> ctx = WorkflowContext(data={"collection_id": "sentinel-2-l2a",
        ...                             "catalog_url": "https://example.org/stac"})
        >>> module.target(ctx).key
        'https://example.org/stac#sentinel-2-l2a'
    """

    def __init__(
        self,
        config: IngestConfig | Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        modifier: Callable[[Any], Any] | None = None,
        request_modifier: Callable[[Any], Any] | None = None,
    ) -> None:
        self.config = (
            config
            if isinstance(config, IngestConfig)
            else IngestConfig.model_validate(config or {})
        )
        self.headers = headers
        self.modifier = modifier
        self.request_modifier = request_modifier
        self.ingestor: Ingestor | None = None
        """The Ingestor of the last ``fetch`` (its ``failures`` hold what failed)."""

    def target(self, context: WorkflowContext | Mapping[str, Any] | None = None) -> Entry:
        """Resolve the target: the config first, then ``context.data``."""
        data: Mapping[str, Any] = {}
        if isinstance(context, WorkflowContext):
            data = context.data
        elif isinstance(context, Mapping):
            data = context.get("data", context)
        # the context's data is the matrix row; the config's fields win over it
        source = self.config.source_file
        url = None if source else (self.config.catalog_url or data.get("catalog_url"))
        entry = row_entry(
            {"collection_id": data.get("collection_id"), "source_file": source}, self.config, url
        )
        missing = missing_fields(entry)
        if "collection_id" in missing:
            raise ConfigurationError("Ingest target (collection_id or source_file) not defined")
        if missing:
            raise ConfigurationError(
                "catalog_url: not defined in the config nor in context.data['catalog_url']"
            )
        return entry

    async def fetch(
        self, context: WorkflowContext | Mapping[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield raw STAC item dicts for the resolved target, exactly once.

        Failed chunks do not stop the stream; they are in ``self.ingestor.failures``.
        """
        entry = self.target(context)
        self.ingestor = Ingestor(
            entry.catalog_url,
            matrix=[
                {
                    k: v
                    for k, v in (
                        ("collection_id", entry.collection_id),
                        ("source_file", entry.source_file),
                    )
                    if v
                }
            ],
            config=self.config.model_copy(update={"collection_id": None, "source_file": None}),
            headers=self.headers,
            modifier=self.modifier,
            request_modifier=self.request_modifier,
            progress=False,
        )
        async for item in self.ingestor.stream():
            yield item


class RequestSplitter:
    """Plans the chunks of a search from its datetime range (pure, no IO).

    Without a collection extent, open ends stay open chunks; the engine refines chunks with
    counts and with the datetime of items as they arrive.

    Example:
        >>> splitter = RequestSplitter(IngestConfig(collection_id="c", concurrency=4))
        >>> chunks = splitter.generate_chunks("2024-01-01T00:00:00Z/2024-01-02T00:00:00Z")
        >>> [c.interval.to_param() for c in chunks]  # doctest: +NORMALIZE_WHITESPACE
        ['2024-01-01T00:00:00Z/2024-01-01T06:00:00Z',
         '2024-01-01T06:00:00Z/2024-01-01T12:00:00Z',
         '2024-01-01T12:00:00Z/2024-01-01T18:00:00Z',
         '2024-01-01T18:00:00Z/2024-01-02T00:00:00Z']
    """

    def __init__(self, config: IngestConfig, entry: Entry | None = None) -> None:
        self.config = config
        self.entry = entry or Entry(config.catalog_url, config.collection_id)

    def generate_chunks(
        self, datetime_range: Any = None, n: int | None = None, *, now: datetime | None = None
    ) -> list[Chunk]:
        """Contiguous chunks covering ``datetime_range`` (default: the config's filter)."""
        value = datetime_range if datetime_range is not None else self.config.filters.datetime
        return plan_chunks(
            self.entry,
            parse_datetime(value),
            self.config.filters.search_filters(),
            n or self.config.concurrency.workers,
            now=now or datetime.now(timezone.utc).replace(microsecond=0),
        )


async def temporal_split_search(
    client: Any,
    filters: IngestFilters | Mapping[str, Any],
    limit: int | None = None,
    *,
    concurrency: int = 10,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Split a search by time and fetch the chunks in parallel; yield pages of items.

    ``client`` is a catalog URL or a pystac-client ``Client``; ``filters.collections`` names
    the collections; ``limit`` is the target chunk size (the seed passes
    ``concurrency.chunk_size``).

    Example:
        >>> async def main():
        ...     async for items in temporal_split_search(
        ...         "https://example.org/stac", {"collections": ["c1"], "datetime": "2024"}
        ...     ):
        ...         print(len(items))
    """
    url = client if isinstance(client, str) else client.self_href or client.get_self_href()
    f = filters if isinstance(filters, IngestFilters) else IngestFilters.model_validate(filters)
    if not f.collections:
        raise ConfigurationError("filters.collections: name at least one collection")
    ingestor = Ingestor(
        url,
        collections=f.collections,
        config={
            "filters": f.model_dump(exclude_none=True),
            "concurrency": {"workers": concurrency, "chunk_size": limit},
        },
        headers=headers,
        progress=False,
    )
    batch: list[dict[str, Any]] = []
    async for item in ingestor.stream():
        batch.append(item)
        if len(batch) >= ingestor.config.limit:
            yield batch
            batch = []
    if batch:
        yield batch
