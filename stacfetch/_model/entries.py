"""Which catalog / collection / file a run fetches: matrix rows and config into :class:`Entry`.

The rules, in one place (``Ingestor``, ``IngestModule.target`` and workflow validation use them):

* the config's ``collection_id`` overrides a row's (the seed's "Config > Context");
* a row's ``catalog_url`` wins over the default URL (``config.catalog_url``, else ``url``);
* a ``source_file`` entry needs neither a collection nor a URL; any other entry needs a URL,
  and a collection unless it is the whole-catalog ``ids`` search;
* without a matrix: the config's ``source_file``, else the collections given, else the
  config's ``collection_id``, else ``filters.collections`` (deduplicated, in order), else one
  whole-catalog entry when ``filters.ids`` is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .config import IngestConfig
from .errors import ConfigurationError
from .types import Entry
from .validation import validate_url

__all__ = ["config_entries", "missing_fields", "resolve_entries", "row_entry"]

MATRIX_KEYS = ("collection_id", "catalog_url", "source_file")
"""The keys a matrix row may hold."""


def row_entry(
    row: Mapping[str, Any], config: IngestConfig, default_url: str | None = None
) -> Entry:
    """One matrix row (or a pipeline context's ``data``) as an :class:`Entry`; nothing checked.

    The config's ``collection_id`` wins over the row's; the row's ``catalog_url`` over
    ``default_url``. :func:`missing_fields` tells what the entry still lacks.

    Example:
        >>> row_entry({"collection_id": "a"}, IngestConfig(), "https://x.org/stac")
        Entry(catalog_url='https://x.org/stac', collection_id='a', source_file=None)
        >>> row_entry({"collection_id": "a"}, IngestConfig(collection_id="b")).collection_id
        'b'
    """
    return Entry(
        row.get("catalog_url") or default_url or None,
        config.collection_id or row.get("collection_id"),
        row.get("source_file") or None,
    )


def missing_fields(entry: Entry) -> tuple[str, ...]:
    """What ``entry`` lacks to be fetched: some of ``"collection_id"``, ``"catalog_url"``.

    A ``source_file`` entry lacks nothing. An entry without a collection is still fetchable as
    the whole-catalog ``ids`` search of :func:`config_entries`; callers decide.

    Example:
        >>> missing_fields(Entry(None, "a"))
        ('catalog_url',)
        >>> missing_fields(Entry(None, None, "items.ndjson"))
        ()
    """
    if entry.source_file:
        return ()
    gaps = []
    if not entry.collection_id:
        gaps.append("collection_id")
    if not entry.catalog_url:
        gaps.append("catalog_url")
    return tuple(gaps)


def config_entries(
    collections: Sequence[str] | str | None, config: IngestConfig, default_url: str | None
) -> list[Entry]:
    """The entries of a run without a matrix (maybe ``[]``); URLs are not checked here.

    The config's ``source_file``; else ``collections`` (a list or ``"a,b"``), the config's
    ``collection_id`` or ``filters.collections``, deduplicated; else one entry without a
    collection (searching the whole catalog) when ``filters.ids`` is set.

    Example:
        >>> [e.collection_id for e in config_entries("a, b,a", IngestConfig(), None)]
        ['a', 'b']
        >>> config_entries(None, IngestConfig(filters={"ids": ["x"]}), "https://x.org")
        [Entry(catalog_url='https://x.org', collection_id=None, source_file=None)]
    """
    if config.source_file:
        return [Entry(None, config.collection_id, config.source_file)]
    if isinstance(collections, str):
        collections = [c.strip() for c in collections.split(",") if c.strip()]
    ids = list(collections or [])
    if not ids and config.collection_id:
        ids = [config.collection_id]
    if not ids and config.filters.collections:
        ids = list(config.filters.collections)
    if not all(isinstance(c, str) and c for c in ids):
        raise ConfigurationError(f"collections: expected non-empty strings, got {ids!r}")
    entries = [Entry(default_url, c) for c in dict.fromkeys(ids)]
    if not entries and config.filters.ids:
        # ids without collections: one entry searching the whole catalog (no collection id)
        entries = [Entry(default_url, None)]
    return entries


def _matrix_entries(
    matrix: Sequence[Mapping[str, Any]], config: IngestConfig, base: str | None
) -> list[Entry]:
    if isinstance(matrix, (str, Mapping)) or not isinstance(matrix, Iterable):
        raise ConfigurationError("matrix: expected a list of {'collection_id', 'catalog_url'}")
    entries: list[Entry] = []
    for i, row in enumerate(matrix):
        if not isinstance(row, Mapping):
            raise ConfigurationError(f"matrix[{i}]: expected a mapping, got {row!r}")
        unknown = set(row) - set(MATRIX_KEYS)
        if unknown:
            raise ConfigurationError(
                f"matrix[{i}]: unknown keys {sorted(unknown)}; use collection_id, "
                "catalog_url or source_file"
            )
        cat = row.get("catalog_url")
        if cat:
            row = {**row, "catalog_url": validate_url(cat, f"matrix[{i}].catalog_url")}
        entry = row_entry(row, config, base)
        if "collection_id" in missing_fields(entry):
            raise ConfigurationError(f"matrix[{i}]: needs a collection_id or a source_file")
        entries.append(entry)
    return entries


def resolve_entries(
    url: str | None,
    collections: Sequence[str] | str | None,
    matrix: Sequence[Mapping[str, Any]] | None,
    config: IngestConfig,
) -> list[Entry]:
    """The entries of a run: from ``matrix`` rows, else from ``collections`` and the config.

    ``url`` is the default STAC API (``config.catalog_url`` wins over it). Raises
    :class:`~stacfetch.ConfigurationError` for a malformed matrix, no target at all, or an
    entry without a STAC API URL.

    Example:
        >>> resolve_entries("https://x.org/stac/", "a,b", None, IngestConfig())
        ... # doctest: +NORMALIZE_WHITESPACE
        [Entry(catalog_url='https://x.org/stac', collection_id='a', source_file=None),
         Entry(catalog_url='https://x.org/stac', collection_id='b', source_file=None)]
        >>> resolve_entries(None, ["a"], None, IngestConfig())
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: url: collection 'a' needs a STAC API URL \
(url=... or catalog_url in the matrix entry)
    """
    base = config.catalog_url or (validate_url(url, "url") if url is not None else None)
    if matrix is not None:
        entries = _matrix_entries(matrix, config, base)
    else:
        entries = config_entries(collections, config, base)
    if not entries:
        raise ConfigurationError(
            "Ingest target (collection_id or source_file) not defined: pass collections=[...], "
            "ids=[...] (searched across the catalog), "
            "matrix=[{'collection_id': ..., 'catalog_url': ...}], or source_file=..."
        )
    for e in entries:
        if "catalog_url" in missing_fields(e):
            what = f"collection {e.collection_id!r}" if e.collection_id else "an ids search"
            raise ConfigurationError(
                f"url: {what} needs a STAC API URL (url=... or catalog_url in the matrix entry)"
            )
    return entries
