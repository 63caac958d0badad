"""``load_workflow``: a workflow file (or dict) in, a validated :class:`WorkflowSpec` out."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .._model.errors import ConfigurationError
from .reader import Loader, kind, read_source
from .sections import TOP_KEYS, build_spec
from .spec import WorkflowSpec

__all__ = ["load_workflow"]


def load_workflow(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
) -> WorkflowSpec:
    """Read and validate a workflow (a YAML or JSON file, or a dict) into a :class:`WorkflowSpec`.

    ``.json`` files are read as JSON, anything else as YAML (JSON is valid YAML). ``env``
    replaces ``os.environ`` for ``${VAR}`` substitution. See :mod:`stacfetch._workflow` for
    the layout and the spellings accepted.

    Raises :class:`~stacfetch.ConfigurationError` naming the file and the key for anything
    invalid.

    Example:
        >>> spec = load_workflow({
        ...     "catalog_url": "https://earth-search.aws.element84.com/v1",
        ...     "strategy": {"matrix": {"collection_id": ["sentinel-2-l2a", "landsat-c2-l2"]}},
        ...     "config": {"concurrency": {"workers": 16, "chunk_size": 2000},
        ...                "filters": {"bbox": [5.9, 45.8, 10.5, 47.8], "datetime": "2024-06"}},
        ...     "output": "alps.parquet",
        ... })
        >>> len(spec.matrix), spec.config["concurrency"]["workers"], spec.output
        (2, 16, 'alps.parquet')
        >>> load_workflow({"strategy": {"matrix": []}})
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: workflow: strategy.matrix: is empty; list at \
least one entry, e.g. [{collection_id: ..., catalog_url: ...}]
    """
    if isinstance(source, Mapping):
        raw: Any = source
        loader = Loader("workflow", None, os.environ if env is None else env)
        origin = None
    elif isinstance(source, (str, os.PathLike)):
        raw, path = read_source(source)
        loader = Loader(str(path), path.parent, os.environ if env is None else env)
        origin = str(path)
    else:
        raise ConfigurationError(
            f"workflow: expected a file path or a mapping, got {type(source).__name__}"
        )
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            f"{loader.where}: the workflow must be a mapping with strategy.matrix and an "
            f"ingest section, got {kind(raw)}"
        )
    top = loader.mapping(raw, "")
    loader.unknown(top, TOP_KEYS, "")
    top = loader.expand(top, "")
    return build_spec(loader, top, origin)
