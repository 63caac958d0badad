"""Which catalog, collection or file each matrix entry fetches: resolved once, checked before
any request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .config import IngestConfig
from .errors import ConfigurationError
from .types import Entry
from .validation import validate_url

__all__ = ["resolve_entries"]


def resolve_entries(
    url: str | None,
    collections: Sequence[str] | str | None,
    matrix: Sequence[Mapping[str, Any]] | None,
    config: IngestConfig,
) -> list[Entry]:
    base = config.catalog_url or (validate_url(url, "url") if url is not None else None)
    entries: list[Entry] = []
    if matrix is not None:
        if isinstance(matrix, (str, Mapping)) or not isinstance(matrix, Iterable):
            raise ConfigurationError("matrix: expected a list of {'collection_id', 'catalog_url'}")
        for i, row in enumerate(matrix):
            if not isinstance(row, Mapping):
                raise ConfigurationError(f"matrix[{i}]: expected a mapping, got {row!r}")
            unknown = set(row) - {"collection_id", "catalog_url", "source_file"}
            if unknown:
                raise ConfigurationError(
                    f"matrix[{i}]: unknown keys {sorted(unknown)}; use collection_id, "
                    "catalog_url or source_file"
                )
            source = row.get("source_file") or None
            cid = config.collection_id or row.get("collection_id")
            cat = row.get("catalog_url")
            cat = validate_url(cat, f"matrix[{i}].catalog_url") if cat else base
            if source is None and not cid:
                raise ConfigurationError(f"matrix[{i}]: needs a collection_id or a source_file")
            entries.append(Entry(cat, cid, source))
    elif config.source_file:
        entries.append(Entry(None, config.collection_id, config.source_file))
    else:
        if isinstance(collections, str):
            collections = [c.strip() for c in collections.split(",") if c.strip()]
        ids = list(collections or [])
        if not ids and config.collection_id:
            ids = [config.collection_id]
        if not ids and config.filters.collections:
            ids = list(config.filters.collections)
        if not all(isinstance(c, str) and c for c in ids):
            raise ConfigurationError(f"collections: expected non-empty strings, got {ids!r}")
        entries = [Entry(base, c) for c in dict.fromkeys(ids)]
        if not entries and config.filters.ids:
            # ids without collections: one entry searching the whole catalog (no collection id)
            entries = [Entry(base, None)]
    if not entries:
        raise ConfigurationError(
            "Ingest target (collection_id or source_file) not defined: pass collections=[...], "
            "ids=[...] (searched across the catalog), "
            "matrix=[{'collection_id': ..., 'catalog_url': ...}], or source_file=..."
        )
    for e in entries:
        if e.source_file is None and e.catalog_url is None:
            what = f"collection {e.collection_id!r}" if e.collection_id else "an ids search"
            raise ConfigurationError(
                f"url: {what} needs a STAC API URL (url=... or catalog_url in the matrix entry)"
            )
    return entries
