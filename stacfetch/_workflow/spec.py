"""The result of loading a workflow: :class:`WorkflowSpec`, ready for ``Ingestor(**...)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["WorkflowSpec"]


@dataclasses.dataclass(frozen=True)
class WorkflowSpec:
    """A validated workflow: matrix entries, the ingest config and the run options.

    ``Ingestor(**spec.ingestor_kwargs())`` builds the run; ``output`` and the entries'
    ``source_file`` are already resolved against the workflow file's folder.

    Example:
        >>> from stacfetch._workflow import load_workflow
        >>> spec = load_workflow({
        ...     "catalog_url": "https://earth-search.aws.element84.com/v1",
        ...     "strategy": {"matrix": [{"collection_id": "sentinel-2-l2a"},
        ...                             {"collection_id": "landsat-c2-l2"}]},
        ...     "ingest": {"concurrency": 8, "filters": {"datetime": "2024-06"}},
        ... })
        >>> [e["collection_id"] for e in spec.matrix]
        ['sentinel-2-l2a', 'landsat-c2-l2']
        >>> sorted(spec.ingestor_kwargs())
        ['config', 'headers', 'matrix', 'progress', 'url']
    """

    matrix: list[dict[str, Any]]
    """Matrix entries (``collection_id`` / ``catalog_url`` / ``source_file``); may be empty."""
    config: dict[str, Any]
    """The ingest section, validated: ready for :class:`~stacfetch.IngestConfig`."""
    catalog_url: str | None = None
    """Default STAC API for entries that name none."""
    output: str | None = None
    """Where to write GeoParquet (None: keep the GeoDataFrame)."""
    progress: bool | str = "auto"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str | None = None
    source: str | None = None
    """The file the workflow was read from (None for a dict)."""

    def ingestor_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~stacfetch.Ingestor` (fresh copies, safe to edit).

        Example:
            >>> from stacfetch._workflow import load_workflow
            >>> spec = load_workflow({"catalog_url": "https://stac.example.com",
            ...                       "ingest": {"collection_id": "c1"}})
            >>> kwargs = spec.ingestor_kwargs()
            >>> kwargs["url"], kwargs["matrix"], kwargs["config"]
            ('https://stac.example.com', None, {'collection_id': 'c1'})
        """
        return {
            "url": self.catalog_url,
            "matrix": [dict(e) for e in self.matrix] or None,
            "config": _copy(self.config),
            "progress": self.progress,
            "headers": dict(self.headers) or None,
        }


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
