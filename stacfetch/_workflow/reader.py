"""Reading a workflow: parse the file, substitute ``${VAR}``, resolve paths, name errors.

:class:`Loader` carries where the workflow came from (for error messages and relative paths)
and the small checks every section uses; :func:`read_source` parses a YAML or JSON file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._model.config import IngestConfig
from .._model.errors import ConfigurationError
from .._model.filters import IngestFilters

__all__ = ["FILTER_FIELDS", "INGEST_FIELDS", "Loader", "kind", "read_source"]

INGEST_FIELDS: tuple[str, ...] = tuple(IngestConfig.model_fields)
"""The keys of the ingest section (``IngestConfig``'s fields)."""
FILTER_FIELDS: tuple[str, ...] = tuple(IngestFilters.model_fields)
"""The keys of ``ingest.filters`` (``IngestFilters``' fields)."""
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Loader:
    """Validation state: where the workflow came from, for error messages and paths.

    ``where`` prefixes every error message; ``base`` is the folder relative paths are
    resolved against (None: leave them as given); ``env`` replaces ``${VAR}``.

    Example:
        >>> from pathlib import Path
        >>> loader = Loader("flow.yaml", Path("/data"), {"TOKEN": "t0k"})
        >>> loader.expand({"headers": {"Authorization": "Bearer ${TOKEN}"}}, "")
        {'headers': {'Authorization': 'Bearer t0k'}}
        >>> loader.path("items.ndjson")
        '/data/items.ndjson'
        >>> str(loader.error("output", "expected a string"))
        'flow.yaml: output: expected a string'
    """

    def __init__(self, where: str, base: Path | None, env: Mapping[str, str]) -> None:
        self.where = where
        self.base = base
        self.env = env

    def error(self, key: str, message: str) -> ConfigurationError:
        """The error to raise for ``key``, naming the workflow (``key=''``: the bare message)."""
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
        """``value`` as a dict with string keys, or an error naming ``key``."""
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping, got {kind(value)}")
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise self.error(key, f"keys must be strings, got {bad[0]!r}")
        return dict(value)

    def string(self, value: Any, key: str) -> str | None:
        """``value`` stripped (None stays None), or an error if it is not a non-empty string."""
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {kind(value)}")
        return value.strip()

    def unknown(self, found: Mapping[str, Any], allowed: tuple[str, ...], key: str) -> None:
        """Refuse the first key of ``found`` not in ``allowed``, hinting where it belongs."""
        extra = [k for k in found if k not in allowed]
        if not extra:
            return
        where = f"{key}: " if key else ""
        hint = _hint(extra[0], key)
        raise ConfigurationError(
            f"{self.where}: {where}unknown key {extra[0]!r}{hint}; "
            f"expected one of: {', '.join(allowed)}"
        )


def kind(value: Any) -> str:
    """How error messages name a value that has the wrong type.

    Example:
        >>> kind(None), kind([1, 2]), kind(3)
        ('null', 'a list ([1, 2])', 'int 3')
    """
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return f"a list ({value!r})" if len(repr(value)) < 60 else "a list"
    return f"{type(value).__name__} {value!r}" if len(repr(value)) < 60 else type(value).__name__


def _hint(key: str, section: str) -> str:
    if section == "" and key in INGEST_FIELDS:
        return f" (it belongs in the ingest section: ingest.{key})"
    if section == "" and key == "matrix":
        return " (write it as strategy.matrix)"
    if section == "" and key in FILTER_FIELDS:
        return f" (it belongs in ingest.filters.{key})"
    if section.endswith(("ingest", "config")) and key in FILTER_FIELDS:
        return f" (it belongs in {section}.filters.{key})"
    return ""


def read_source(source: str | os.PathLike[str]) -> tuple[Any, Path]:
    """Parse a workflow file: JSON for ``.json``, YAML otherwise; returns ``(data, path)``.

    Raises :class:`~stacfetch.ConfigurationError` for a missing, empty or unparsable file.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "flow.yaml"
        >>> _ = path.write_text("strategy: {matrix: [sentinel-2-l2a]}")
        >>> read_source(path)[0]
        {'strategy': {'matrix': ['sentinel-2-l2a']}}
    """
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
