"""The keyword arguments of ``Ingestor(...)`` / ``ingest(...)``, checked and merged into one
:class:`~stacfetch.IngestConfig` before anything else happens (bad input never sends a request).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .config import IngestConfig
from .errors import ConfigurationError

__all__ = ["check_hooks", "merge_config"]


def merge_config(
    config: IngestConfig | Mapping[str, Any] | None,
    settings: Mapping[str, Any],
    filters: Mapping[str, Any],
) -> IngestConfig:
    """``config`` (a config or its dict) with the given ``settings`` and search ``filters``
    laid over it (``None`` values leave the config's own), validated as a whole.

    Example:
        >>> cfg = merge_config({"limit": 50, "filters": {"bbox": [0, 0, 1, 1]}},
        ...                    {"limit": None, "concurrency": 4}, {"datetime": "2024"})
        >>> cfg.limit, cfg.concurrency.workers, cfg.filters.bbox, cfg.filters.datetime
        (50, 4, [0.0, 0.0, 1.0, 1.0], '2024-01-01T00:00:00Z/2024-12-31T23:59:59.999999Z')
    """
    cfg = IngestConfig.model_validate(config) if config is not None else IngestConfig()
    updates: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
    merged = cfg.filters.model_dump(exclude_none=True)
    merged.update({k: v for k, v in filters.items() if v is not None})
    updates["filters"] = merged
    result: IngestConfig = IngestConfig.model_validate(
        {**cfg.model_dump(exclude_none=True), **updates}
    )
    return result


def check_hooks(
    headers: Any,
    modifier: Callable[[Any], Any] | None,
    request_modifier: Callable[[Any], Any] | None,
    decoders: Any,
) -> None:
    """Check the run's hooks: ``headers`` a str -> str mapping, the modifiers callables,
    ``decoders`` an int >= 0 (each may be None). Raises :class:`~stacfetch.ConfigurationError`.

    Example:
        >>> check_hooks({"Authorization": 1}, None, None, None)
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: headers: expected a mapping of str to str
    """
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
