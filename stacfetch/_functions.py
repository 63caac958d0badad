"""``stacfetch.ingest(...)`` and ``await stacfetch.aingest(...)``: an Ingestor in one call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._ingestor import Ingestor, with_args
from ._model.config import IngestConfig, RetryConfig
from ._model.events import EventSink

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["aingest", "ingest"]


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
        {ARGS}

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
        {ARGS}

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


ingest.__doc__ = with_args(ingest.__doc__)
aingest.__doc__ = with_args(aingest.__doc__)
