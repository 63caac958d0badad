"""stacfetch: fetch every STAC Item of a search, fast, exactly once, and pleasant to watch."""

from __future__ import annotations

from ._dask.read import read_dask_geodataframe
from ._display.summary import RunSummary
from ._formats.geoparquet import read_geoparquet, read_items
from ._formats.results import geodataframe_to_dicts, geodataframe_to_items
from ._functions import aingest, ingest
from ._ingest_module import IngestModule, RequestSplitter, temporal_split_search
from ._ingestor import Ingestor
from ._model.config import ConcurrencyConfig, IngestConfig, RetryConfig, WorkflowContext
from ._model.datetimes import parse_datetime
from ._model.errors import (
    CollectionNotFoundError,
    ConfigurationError,
    FetchError,
    IncompleteIngestError,
    NotAStacApiError,
    SearchRejectedError,
    SourceError,
    StacApiError,
    StacfetchError,
)
from ._model.events import FailureRecord
from ._model.failures import FailureCollector
from ._model.filters import IngestFilters
from ._model.types import Chunk, Entry, Interval

__version__ = "0.1.0"


__all__ = [
    "Chunk",
    "CollectionNotFoundError",
    "ConcurrencyConfig",
    "ConfigurationError",
    "Entry",
    "FailureCollector",
    "FailureRecord",
    "FetchError",
    "IncompleteIngestError",
    "IngestConfig",
    "IngestFilters",
    "IngestModule",
    "Ingestor",
    "Interval",
    "NotAStacApiError",
    "RequestSplitter",
    "RetryConfig",
    "RunSummary",
    "SearchRejectedError",
    "SourceError",
    "StacApiError",
    "StacfetchError",
    "WorkflowContext",
    "__version__",
    "aingest",
    "geodataframe_to_dicts",
    "geodataframe_to_items",
    "ingest",
    "parse_datetime",
    "read_dask_geodataframe",
    "read_geoparquet",
    "read_items",
    "temporal_split_search",
]
