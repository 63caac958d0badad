"""Validating a workflow's sections: the ingest config, ``strategy.matrix``, the run options.

:func:`build_spec` checks every section of a parsed workflow (unknown keys, types, the ingest
config through :class:`~stacfetch.IngestConfig`, that every entry has a target and a STAC
API) and returns the :class:`~stacfetch._workflow.spec.WorkflowSpec`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from .._model.config import ConcurrencyConfig, IngestConfig, RetryConfig
from .._model.entries import MATRIX_KEYS, config_entries, missing_fields, row_entry
from .._model.errors import ConfigurationError
from .._model.filters import IngestFilters
from .._model.validation import validate_url
from .reader import FILTER_FIELDS, INGEST_FIELDS, Loader, kind
from .spec import WorkflowSpec

__all__ = ["ENTRY_KEYS", "TOP_KEYS", "build_spec"]

TOP_KEYS = (
    "name",
    "description",
    "version",
    "catalog_url",
    "strategy",
    "ingest",
    "config",
    "steps",
    "output",
    "progress",
    "headers",
)
"""The keys a workflow may hold at its top level."""
ENTRY_KEYS = MATRIX_KEYS
"""The keys a ``strategy.matrix`` entry may hold."""
_INGEST_MODULES = ("IngestModule", "ingest", "stacfetch.IngestModule")


def build_spec(loader: Loader, top: dict[str, Any], origin: str | None) -> WorkflowSpec:
    """Validate the sections of a workflow (``${VAR}`` already substituted) into a spec.

    ``origin`` is the file it was read from (None for a dict). Raises
    :class:`~stacfetch.ConfigurationError` naming ``loader.where`` and the key.

    Example:
        >>> loader = Loader("flow.yaml", None, {})
        >>> spec = build_spec(loader, {"catalog_url": "https://x.org/stac",
        ...                            "strategy": {"matrix": ["a", "b"]}}, None)
        >>> spec.matrix
        [{'collection_id': 'a'}, {'collection_id': 'b'}]
        >>> build_spec(loader, {"strategy": {"matrix": ["a"]}}, None)
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: flow.yaml: strategy.matrix[0]: has no \
catalog_url and the workflow has no top-level catalog_url
    """
    for key in ("name", "description", "version"):
        if key in top and top[key] is not None and not isinstance(top[key], (str, int, float)):
            raise loader.error(key, f"expected a string, got {kind(top[key])}")

    section, config = _config_section(loader, top)
    catalog_url = _url(loader, top.get("catalog_url"), "catalog_url")
    matrix = _matrix(loader, top.get("strategy"))
    cfg = _validate_config(loader, section, config)
    _check_targets(loader, matrix, cfg, catalog_url, section)

    output = loader.string(top.get("output"), "output")
    return WorkflowSpec(
        matrix=matrix,
        config=config,
        catalog_url=catalog_url,
        output=loader.path(output) if output else None,
        progress=_progress(loader, top.get("progress", "auto")),
        headers=_headers(loader, top.get("headers")),
        name=None if top.get("name") is None else str(top["name"]),
        source=origin,
    )


def _config_section(loader: Loader, top: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The ingest config from ``ingest:``, ``config:`` or a ``steps:`` list."""
    given = [k for k in ("ingest", "config", "steps") if top.get(k) is not None]
    if len(given) > 1:
        raise loader.error(
            given[1], f"give the ingest config once: {' and '.join(given)} are both present"
        )
    if not given:
        return "ingest", {}
    key = given[0]
    if key != "steps":
        config = loader.mapping(top[key], key)
    else:
        steps = top["steps"]
        if not isinstance(steps, list) or not steps:
            raise loader.error("steps", f"expected a non-empty list of steps, got {kind(steps)}")
        found: list[tuple[str, dict[str, Any]]] = []
        for i, step in enumerate(steps):
            where = f"steps[{i}]"
            step = loader.mapping(step, where)
            loader.unknown(step, ("id", "module", "config", "depends_on"), where)
            module = step.get("module")
            if module not in _INGEST_MODULES:
                raise loader.error(
                    f"{where}.module",
                    f"stacfetch runs the Ingest step only; got module {module!r} (expected "
                    "IngestModule)",
                )
            found.append((f"{where}.config", loader.mapping(step.get("config") or {}, where)))
        if len(found) != 1:
            raise loader.error("steps", f"expected exactly one IngestModule step, got {len(found)}")
        key, config = found[0]
    loader.unknown(config, INGEST_FIELDS, key)
    if "filters" in config and config["filters"] is not None:
        filters = loader.mapping(config["filters"], f"{key}.filters")
        loader.unknown(filters, FILTER_FIELDS, f"{key}.filters")
    for name in ("source_file",):
        value = config.get(name)
        if isinstance(value, str) and value.strip():
            config[name] = loader.path(value.strip())
    return key, config


def _validate_config(loader: Loader, section: str, config: dict[str, Any]) -> IngestConfig:
    try:
        cfg: IngestConfig = IngestConfig.model_validate(config)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{loader.where}: {_config_message(str(exc), section)}") from None
    return cfg


_NESTED = {
    "filters": tuple(IngestFilters.model_fields),
    "concurrency": tuple(ConcurrencyConfig.model_fields),
    "retry": tuple(RetryConfig.model_fields),
}


def _config_message(message: str, section: str) -> str:
    """``invalid IngestConfig: filters: bbox: ...`` -> ``ingest.filters.bbox: ...``."""
    for prefix in ("invalid IngestConfig: ", "IngestConfig: "):
        message = message.removeprefix(prefix)
    match = re.match(r"([a-z_]+): ([a-z_]+): ", message)
    if match and match.group(2) in _NESTED.get(match.group(1), ()):
        message = f"{match.group(1)}.{match.group(2)}: {message[match.end() :]}"
    field, sep, rest = message.partition(": ")
    if sep and re.fullmatch(r"[a-z_.]+", field):
        return f"{section}.{field}: {rest}"
    return f"{section}: {message}"


def _url(loader: Loader, value: Any, key: str) -> str | None:
    if value is None:
        return None
    try:
        return validate_url(value, key)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{loader.where}: {exc}") from None


def _matrix(loader: Loader, strategy: Any) -> list[dict[str, Any]]:
    if strategy is None:
        return []
    strategy = loader.mapping(strategy, "strategy")
    loader.unknown(strategy, ("matrix",), "strategy")
    raw = strategy.get("matrix")
    key = "strategy.matrix"
    if raw is None:
        raise loader.error(key, "is missing; list the entries, e.g. [{collection_id: ...}]")
    if isinstance(raw, Mapping):
        rows = _product(loader, loader.mapping(raw, key))
    elif isinstance(raw, list):
        rows = list(raw)
    else:
        raise loader.error(key, f"expected a list of entries, got {kind(raw)}")
    if not rows:
        raise loader.error(
            key, "is empty; list at least one entry, e.g. [{collection_id: ..., catalog_url: ...}]"
        )
    entries: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for i, row in enumerate(rows):
        where = f"{key}[{i}]"
        if isinstance(row, str) and row.strip():
            row = {"collection_id": row.strip()}
        entry = loader.mapping(row, where)
        loader.unknown(entry, ENTRY_KEYS, where)
        out: dict[str, Any] = {}
        for name in ENTRY_KEYS:
            value = loader.string(entry.get(name), f"{where}.{name}")
            if value is None:
                continue
            if name == "catalog_url":
                value = _url(loader, value, f"{where}.catalog_url")
            elif name == "source_file":
                value = loader.path(value)
            out[name] = value
        if not out:
            raise loader.error(where, "needs a collection_id (or a source_file)")
        ident = tuple(out.get(n) for n in ENTRY_KEYS)
        if ident in seen:
            raise loader.error(where, f"duplicate entry {out}")
        seen.add(ident)
        entries.append(out)
    return entries


def _product(loader: Loader, axes: dict[str, Any]) -> list[dict[str, Any]]:
    """GitHub-Actions-style matrix: every combination of the listed values."""
    loader.unknown(axes, ENTRY_KEYS, "strategy.matrix")
    names, values = [], []
    for name, value in axes.items():
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise loader.error(
                f"strategy.matrix.{name}", f"expected a non-empty list, got {kind(value)}"
            )
        names.append(name)
        values.append(value)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def _check_targets(
    loader: Loader,
    matrix: list[dict[str, Any]],
    cfg: IngestConfig,
    catalog_url: str | None,
    section: str,
) -> None:
    """Every entry has a target and a STAC API, by the rules of :mod:`stacfetch._model.entries`."""
    default_url = cfg.catalog_url or catalog_url
    if not matrix:
        entries = config_entries(None, cfg, default_url)
        # a workflow names its target: the whole-catalog ids search needs a collection here
        if not any(e.source_file or e.collection_id for e in entries):
            raise ConfigurationError(
                f"{loader.where}: no target: give strategy.matrix (a list of {{collection_id, "
                f"catalog_url}}) or {section}.collection_id"
            )
        if any(missing_fields(e) for e in entries):
            raise loader.error("catalog_url", "is missing: which STAC API should be searched?")
        return
    for i, row in enumerate(matrix):
        missing = missing_fields(row_entry(row, cfg, default_url))
        if "collection_id" in missing:
            raise loader.error(f"strategy.matrix[{i}]", "needs a collection_id or a source_file")
        if missing:
            raise loader.error(
                f"strategy.matrix[{i}]",
                "has no catalog_url and the workflow has no top-level catalog_url",
            )


def _progress(loader: Loader, value: Any) -> bool | str:
    from .._display.auto import check_progress

    if value is None:
        return False
    if not isinstance(value, (bool, str)):
        raise loader.error(
            "progress", f"expected auto, bars, widgets, true or false, got {value!r}"
        )
    try:
        check_progress(value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{loader.where}: {exc}") from None
    return value


def _headers(loader: Loader, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    headers = loader.mapping(value, "headers")
    out: dict[str, str] = {}
    for name, text in headers.items():
        if not isinstance(text, (str, int, float)) or isinstance(text, bool):
            raise loader.error(f"headers.{name}", f"expected a string, got {kind(text)}")
        out[name] = str(text)
    return out
