"""Workflow files: a ``strategy.matrix`` plus the Ingest Module's config, in YAML or JSON.

A workflow file describes one run: which matrix entries (collection / catalog pairs) to fetch,
with which :class:`~stacfetch.IngestConfig`, and where the result goes. ``stacfetch run FILE``
runs it; :func:`load_workflow` reads it for ``Ingestor.from_config``.

Layout (JSON has the same structure)::

    name: alps-june-2024                  # optional, for people (also: description, version)
    catalog_url: https://earth-search.aws.element84.com/v1   # default API for every entry

    strategy:
      matrix:                             # one pipeline per entry, all run in parallel
        - collection_id: sentinel-2-l2a
        - collection_id: landsat-c2-l2
          catalog_url: https://...        # an entry may name its own API

    ingest:                               # the seed's IngestConfig (this section may be
      concurrency:                        #   spelled ``config:`` too, see below)
        workers: 16                       # or simply ``concurrency: 16``
        chunk_size: 2000
      limit: 1000                         # page size asked of the server
      max_items: null
      retry: {max_retries: 5, timeout: 120}
      filters:
        bbox: [5.9, 45.8, 10.5, 47.8]
        datetime: 2024-06                 # anything stacfetch.parse_datetime accepts

    output: alps-june-2024.parquet        # optional: write GeoParquet there
    progress: auto                        # auto | bars | widgets | true | false
    headers:                              # optional HTTP headers for every request
      Authorization: Bearer ${STAC_TOKEN}

Spellings accepted, because the seed leaves them open:

* the config section is ``ingest:`` or ``config:`` (the seed speaks of the module's
  "config"); giving both is an error;
* STAC Manager's step list works too: ``steps: [{id: ingest, module: IngestModule,
  config: {...}}]`` with exactly one ``IngestModule`` step (stacfetch runs the Ingest step only;
  other modules are rejected rather than silently skipped);
* ``strategy.matrix`` is a list of entries (mappings with ``collection_id``, ``catalog_url``
  and/or ``source_file``; a bare string is a ``collection_id``), or a GitHub-Actions-style
  mapping of lists, expanded to every combination:
  ``matrix: {collection_id: [a, b], catalog_url: [https://x]}``;
* without a matrix, ``ingest.collection_id``, ``ingest.filters.collections`` or
  ``ingest.source_file`` names the target (the seed's "Config > Context" priority:
  ``ingest.collection_id`` also overrides the matrix entries' collection).

``${VAR}`` and ``${VAR:-default}`` in string values are replaced from the environment (a
missing variable without a default is an error naming it). Relative paths (``output``,
``source_file``) are relative to the workflow file's folder, so a file runs the same from
anywhere; for a dict they stay as given (relative to the current directory).

Everything is validated on load: unknown keys, wrong types, bad filters and a missing target
raise :class:`~stacfetch.ConfigurationError` naming the file and the key; no request is sent.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._model.config import ConcurrencyConfig, IngestConfig, RetryConfig
from ._model.errors import ConfigurationError
from ._model.filters import IngestFilters
from ._model.validation import validate_url

__all__ = ["WorkflowSpec", "load_workflow"]

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
ENTRY_KEYS = ("collection_id", "catalog_url", "source_file")
_INGEST_FIELDS = tuple(IngestConfig.model_fields)
_FILTER_FIELDS: tuple[str, ...] = tuple(IngestFilters.model_fields)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INGEST_MODULES = ("IngestModule", "ingest", "stacfetch.IngestModule")


@dataclasses.dataclass(frozen=True)
class WorkflowSpec:
    """A validated workflow: matrix entries, the ingest config and the run options.

    ``Ingestor(**spec.ingestor_kwargs())`` builds the run; ``output`` and the entries'
    ``source_file`` are already resolved against the workflow file's folder.

    Example:
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


class _Loader:
    """Validation state: where the workflow came from, for error messages and paths."""

    def __init__(self, where: str, base: Path | None, env: Mapping[str, str]) -> None:
        self.where = where
        self.base = base
        self.env = env

    def error(self, key: str, message: str) -> ConfigurationError:
        return ConfigurationError(f"{self.where}: {key}: {message}" if key else message)

    def expand(self, value: Any, key: str) -> Any:
        """Substitute ``${VAR}`` in every string of ``value`` (recursively)."""
        if isinstance(value, str):

            def sub(match: re.Match[str]) -> str:
                name, default = match.group(1), match.group(2)
                if name in self.env:
                    return self.env[name]
                if default is not None:
                    return default
                raise self.error(key, f"environment variable {name} is not set (${{{name}}})")

            return _ENV.sub(sub, value)
        if isinstance(value, Mapping):
            return {k: self.expand(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, f"{key}[{i}]") for i, v in enumerate(value)]
        return value

    def path(self, value: str) -> str:
        """A relative local path resolved against the workflow file's folder."""
        if self.base is None or "://" in value:
            return value
        expanded = os.path.expanduser(value)
        if os.path.isabs(expanded):
            return expanded
        return str(self.base / expanded)

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {_kind(value)}")
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise self.error(key, f"keys must be strings, got {bad[0]!r}")
        return dict(value)

    def string(self, value: Any, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {_kind(value)}")
        return value.strip()

    def unknown(self, found: Mapping[str, Any], allowed: tuple[str, ...], key: str) -> None:
        extra = [k for k in found if k not in allowed]
        if not extra:
            return
        where = f"{key}: " if key else ""
        hint = _hint(extra[0], key)
        raise ConfigurationError(
            f"{self.where}: {where}unknown key {extra[0]!r}{hint}; "
            f"expected one of: {', '.join(allowed)}"
        )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return f"a list ({value!r})" if len(repr(value)) < 60 else "a list"
    return f"{type(value).__name__} {value!r}" if len(repr(value)) < 60 else type(value).__name__


def _hint(key: str, section: str) -> str:
    if section == "" and key in _INGEST_FIELDS:
        return f" (it belongs in the ingest section: ingest.{key})"
    if section == "" and key == "matrix":
        return " (write it as strategy.matrix)"
    if section == "" and key in _FILTER_FIELDS:
        return f" (it belongs in ingest.filters.{key})"
    if section.endswith(("ingest", "config")) and key in _FILTER_FIELDS:
        return f" (it belongs in {section}.filters.{key})"
    return ""


def _read(source: str | os.PathLike[str]) -> tuple[Any, Path]:
    path = Path(source).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"workflow file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigurationError(f"workflow file {path} is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read workflow file {path}: {exc}") from None
    if not text.strip():
        raise ConfigurationError(f"workflow file {path} is empty")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text), path
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    import yaml

    try:
        return yaml.safe_load(text), path
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{path}: invalid YAML{where}: {problem}") from None


def load_workflow(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
) -> WorkflowSpec:
    """Read and validate a workflow (a YAML or JSON file, or a dict) into a :class:`WorkflowSpec`.

    ``.json`` files are read as JSON, anything else as YAML (JSON is valid YAML). ``env``
    replaces ``os.environ`` for ``${VAR}`` substitution. See the module documentation for
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
        loader = _Loader("workflow", None, os.environ if env is None else env)
        origin = None
    elif isinstance(source, (str, os.PathLike)):
        raw, path = _read(source)
        loader = _Loader(str(path), path.parent, os.environ if env is None else env)
        origin = str(path)
    else:
        raise ConfigurationError(
            f"workflow: expected a file path or a mapping, got {type(source).__name__}"
        )
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            f"{loader.where}: the workflow must be a mapping with strategy.matrix and an "
            f"ingest section, got {_kind(raw)}"
        )
    top = loader.mapping(raw, "")
    loader.unknown(top, TOP_KEYS, "")
    top = loader.expand(top, "")
    for key in ("name", "description", "version"):
        if key in top and top[key] is not None and not isinstance(top[key], (str, int, float)):
            raise loader.error(key, f"expected a string, got {_kind(top[key])}")

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


def _config_section(loader: _Loader, top: dict[str, Any]) -> tuple[str, dict[str, Any]]:
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
            raise loader.error("steps", f"expected a non-empty list of steps, got {_kind(steps)}")
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
    loader.unknown(config, _INGEST_FIELDS, key)
    if "filters" in config and config["filters"] is not None:
        filters = loader.mapping(config["filters"], f"{key}.filters")
        loader.unknown(filters, _FILTER_FIELDS, f"{key}.filters")
    for name in ("source_file",):
        value = config.get(name)
        if isinstance(value, str) and value.strip():
            config[name] = loader.path(value.strip())
    return key, config


def _validate_config(loader: _Loader, section: str, config: dict[str, Any]) -> IngestConfig:
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


def _url(loader: _Loader, value: Any, key: str) -> str | None:
    if value is None:
        return None
    try:
        return validate_url(value, key)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{loader.where}: {exc}") from None


def _matrix(loader: _Loader, strategy: Any) -> list[dict[str, Any]]:
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
        raise loader.error(key, f"expected a list of entries, got {_kind(raw)}")
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


def _product(loader: _Loader, axes: dict[str, Any]) -> list[dict[str, Any]]:
    """GitHub-Actions-style matrix: every combination of the listed values."""
    loader.unknown(axes, ENTRY_KEYS, "strategy.matrix")
    names, values = [], []
    for name, value in axes.items():
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise loader.error(
                f"strategy.matrix.{name}", f"expected a non-empty list, got {_kind(value)}"
            )
        names.append(name)
        values.append(value)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def _check_targets(
    loader: _Loader,
    matrix: list[dict[str, Any]],
    cfg: IngestConfig,
    catalog_url: str | None,
    section: str,
) -> None:
    default_url = cfg.catalog_url or catalog_url
    if not matrix:
        if cfg.source_file:
            return
        if not (cfg.collection_id or cfg.filters.collections):
            raise ConfigurationError(
                f"{loader.where}: no target: give strategy.matrix (a list of {{collection_id, "
                f"catalog_url}}) or {section}.collection_id"
            )
        if default_url is None:
            raise loader.error("catalog_url", "is missing: which STAC API should be searched?")
        return
    for i, entry in enumerate(matrix):
        if "source_file" in entry:
            continue
        if not (entry.get("collection_id") or cfg.collection_id):
            raise loader.error(f"strategy.matrix[{i}]", "needs a collection_id or a source_file")
        if entry.get("catalog_url") is None and default_url is None:
            raise loader.error(
                f"strategy.matrix[{i}]",
                "has no catalog_url and the workflow has no top-level catalog_url",
            )


def _progress(loader: _Loader, value: Any) -> bool | str:
    from ._display.auto import check_progress

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


def _headers(loader: _Loader, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    headers = loader.mapping(value, "headers")
    out: dict[str, str] = {}
    for name, text in headers.items():
        if not isinstance(text, (str, int, float)) or isinstance(text, bool):
            raise loader.error(f"headers.{name}", f"expected a string, got {_kind(text)}")
        out[name] = str(text)
    return out
