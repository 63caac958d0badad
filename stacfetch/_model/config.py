"""Configuration: the seed's pydantic schema, extended, with loose input normalised.

``IngestConfig.concurrency`` accepts both spellings the seed uses: an int (the number of
parallel workers) or an object ``{"workers": 16, "chunk_size": 5000}`` where ``chunk_size`` is
the target number of items per chunk (``None`` = chosen from the page limit and the counts).

Any invalid value raises :class:`~stacfetch.ConfigurationError` (not pydantic's
``ValidationError``) naming the field and what would be valid, before any request is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from .filters import IngestFilters
from .validation import StrictModel, strict_int, validate_url

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LIMIT",
    "ConcurrencyConfig",
    "IngestConfig",
    "RetryConfig",
    "WorkflowContext",
]

DEFAULT_CONCURRENCY = 10
"""Parallel requests per matrix entry (the seed's default)."""
DEFAULT_LIMIT = 1000
"""Items per page asked of the server (servers may cap it: pgstac at 10000)."""
MAX_CONCURRENCY = 256


class ConcurrencyConfig(StrictModel):
    """Internal parallelism: ``workers`` parallel requests, chunks of about ``chunk_size`` items.

    Example:
        >>> ConcurrencyConfig(workers=16, chunk_size=5000).workers
        16
    """

    workers: int = DEFAULT_CONCURRENCY
    chunk_size: int | None = None

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> int:
        number = strict_int(value, "workers")
        if not 1 <= number <= MAX_CONCURRENCY:
            raise ValueError(f"workers must be between 1 and {MAX_CONCURRENCY}, got {number}")
        return number

    @field_validator("chunk_size", mode="before")
    @classmethod
    def _chunk_size(cls, value: Any) -> int | None:
        if value is None:
            return None
        number = strict_int(value, "chunk_size")
        if number < 1:
            raise ValueError(f"chunk_size must be >= 1 item, got {number}")
        return number


class RetryConfig(StrictModel):
    """Retry and timeout policy.

    429 answers back off exponentially with jitter, honouring ``Retry-After`` up to
    ``backoff_max``; 5xx, dropped connections, timeouts and invalid JSON are retried
    ``max_retries`` times, then the chunk fails.

    Example:
        >>> RetryConfig(max_retries=3).backoff_delay(2, jitter=False)
        1.0
    """

    max_retries: int = Field(default=5, ge=0, le=100)
    backoff_base: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for a response (read timeout)."""
    connect_timeout: float = Field(default=15.0, gt=0)

    def backoff_delay(self, attempt: int, *, jitter: bool = True, rng: Any = None) -> float:
        """Delay before retry number ``attempt`` (1-based): base·2^(attempt-1), capped, jittered.

        With jitter the delay is drawn uniformly from [delay/2, delay] ("equal jitter").
        """
        import random

        delay: float = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempt - 1))
        if jitter:
            delay = (rng or random).uniform(delay / 2, delay)
        return delay


class IngestConfig(StrictModel):
    """The Ingest Module's configuration (catalog, collection, filters, paging), extended.

    ``collection_id`` and ``catalog_url`` override what the matrix context provides;
    ``source_file`` switches to file mode. ``limit`` is the page size asked of the server.

    Example:
        >>> cfg = IngestConfig(collection_id="sentinel-2-l2a", concurrency={"chunk_size": 2000})
        >>> cfg.concurrency.workers, cfg.concurrency.chunk_size
        (10, 2000)
        >>> IngestConfig(concurrency=16).concurrency.workers
        16
    """

    collection_id: str | None = None
    catalog_url: str | None = None
    source_file: str | None = None
    concurrency: ConcurrencyConfig = Field(default_factory=ConcurrencyConfig)
    limit: int = DEFAULT_LIMIT
    filters: IngestFilters = Field(default_factory=IngestFilters)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    max_items: int | None = None
    """Stop after this many items per entry (None: all). The result is then a sample."""

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> Any:
        if value is None:
            return ConcurrencyConfig()
        if isinstance(value, bool):
            raise ValueError("concurrency must be an integer >= 1 or {'workers', 'chunk_size'}")
        if isinstance(value, int):
            return {"workers": value}
        if isinstance(value, (ConcurrencyConfig, Mapping)):
            return value
        raise ValueError(
            f"concurrency must be an integer >= 1 or an object "
            f"{{'workers': int, 'chunk_size': int}}, got {type(value).__name__}"
        )

    @field_validator("filters", mode="before")
    @classmethod
    def _filters(cls, value: Any) -> Any:
        return IngestFilters() if value is None else value

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: Any) -> int:
        number = strict_int(value, "limit")
        if not 1 <= number <= 10000:
            raise ValueError(f"limit (page size) must be between 1 and 10000, got {number}")
        return number

    @field_validator("max_items", mode="before")
    @classmethod
    def _max_items(cls, value: Any) -> int | None:
        if value is None:
            return None
        number = strict_int(value, "max_items")
        if number < 1:
            raise ValueError(f"max_items must be >= 1, got {number}")
        return number

    @field_validator("collection_id", "source_file", mode="before")
    @classmethod
    def _nonempty(cls, value: Any) -> Any:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("catalog_url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        if value is None:
            return None
        return validate_url(value)


class WorkflowContext(StrictModel):
    """What a workflow's matrix strategy injects into a module: ``data`` holds the target.

    Example:
        >>> ctx = WorkflowContext(data={"collection_id": "landsat-c2-l2",
        ...                             "catalog_url": "https://example.com/stac"})
        >>> ctx.data["collection_id"]
        'landsat-c2-l2'
    """

    model_config = ConfigDict(extra="allow")
    data: dict[str, Any] = Field(default_factory=dict)
