"""stacfetch: fetch every STAC Item of a search, fast, exactly once, and pleasant to watch."""

from __future__ import annotations

from ._config import ConcurrencyConfig, IngestConfig, IngestFilters, RetryConfig, WorkflowContext
from ._dask import read_dask_geodataframe
from ._datetimes import parse_datetime
from ._errors import (
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
from ._events import FailureRecord
from ._failures import FailureCollector
from ._geoparquet import read_geoparquet, read_items
from ._ingestor import Ingestor, aingest, ingest
from ._module import IngestModule, RequestSplitter, temporal_split_search
from ._results import geodataframe_to_dicts, geodataframe_to_items
from ._summary import RunSummary
from ._types import Chunk, Entry, Interval

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
