"""File mode: read STAC items from local files instead of a STAC API.

A ``source_file`` is a path, a directory or a glob. Each file may be stac-geoparquet Parquet
(ours or anyone's), a JSON FeatureCollection, a single item, a JSON array of items, or
newline-delimited JSON (``.ndjson``, ``.jsonl``, ``.geojsonl``, or detected). Items come back
as the raw dicts an API would have sent, in pages.

Parquet rows are turned back into items exactly (see :mod:`stacfetch._formats.arrow` for the marks
that make it exact), with two conventions of the layout: a null value and a missing key are
the same (so a ``null`` property comes back absent), except ``geometry`` and
``properties.datetime``, which STAC requires and which are always present (possibly null), and
``assets``, ``{}`` when the file has no assets column (stac-geoparquet drops an all-empty one);
timestamps come back as RFC 3339 UTC strings (``...Z``), whatever form they were sent in.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from stacfetch._formats.arrow import CORE_COLUMNS, INVALID_GEOMETRY, ITEM, KEY, LEVEL
from stacfetch._formats.python import to_python
from stacfetch._model.errors import ConfigurationError, SourceError

__all__ = ["aiter_source_pages", "iter_source_pages", "resolve_source", "table_to_items"]

PARQUET_SUFFIXES = frozenset({".parquet", ".geoparquet", ".pq"})
"""Suffixes read as (stac-geo)Parquet; other files starting with ``PAR1`` are too."""
NDJSON_SUFFIXES = frozenset({".ndjson", ".jsonl", ".geojsonl", ".geojsons", ".ldjson"})
"""Suffixes read as newline-delimited JSON; a ``.json`` file with one item per line is too."""
JSON_SUFFIXES = frozenset({".json", ".geojson"})
"""Suffixes read as one JSON document (FeatureCollection, item, or array of items)."""

_ORDER: dict[str, float] = {name: rank for rank, name in enumerate(CORE_COLUMNS)}
_ORDER["properties"] = _ORDER["bbox"] + 0.5


def resolve_source(pattern: str) -> list[Path]:
    """The files a ``source_file`` names: a file, a directory's item files, or a glob.

    Raises :class:`~stacfetch.ConfigurationError` (naming ``source_file``) when nothing
    matches, before any work starts.

    Example:
        >>> resolve_source("no/such/*.json")
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: source_file: no file matches 'no/such/*.json'
    """
    if not isinstance(pattern, (str, os.PathLike)) or not str(pattern).strip():
        raise ConfigurationError(f"source_file: expected a path or a glob, got {pattern!r}")
    text = os.path.expanduser(str(pattern))
    if any(char in text for char in "*?["):
        files = [Path(p) for p in sorted(glob.glob(text, recursive=True)) if os.path.isfile(p)]
        if not files:
            raise ConfigurationError(f"source_file: no file matches {pattern!r}")
        return files
    path = Path(text)
    if path.is_dir():
        suffixes = PARQUET_SUFFIXES | NDJSON_SUFFIXES | JSON_SUFFIXES
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith((".", "_"))
        )
        if not files:
            raise ConfigurationError(f"source_file: directory {pattern!r} holds no item files")
        return files
    if not path.exists():
        raise ConfigurationError(f"source_file: {pattern!r} does not exist")
    return [path]


def iter_source_pages(pattern: str, page_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
    """Yield the items of every file of a ``source_file``, in pages of ``page_size``.

    The pattern is resolved at once (so a bad one raises here, not at the first page);
    files are read lazily, one page of Parquet rows or one file of JSON at a time.

    Example:
        >>> import json, tempfile
        >>> path = Path(tempfile.mkdtemp()) / "items.ndjson"
        >>> _ = path.write_text(json.dumps({"type": "Feature", "id": "a"}) + "\\n")
        >>> [[item["id"] for item in page] for page in iter_source_pages(str(path))]
        [['a']]
    """
    if page_size < 1:
        raise ConfigurationError(f"page_size: must be >= 1, got {page_size}")
    files = resolve_source(pattern)
    return _pages(files, page_size)


def _pages(files: list[Path], page_size: int) -> Iterator[list[dict[str, Any]]]:
    page: list[dict[str, Any]] = []
    for path in files:
        for chunk in _read_file(path, page_size):
            page.extend(chunk)
            while len(page) >= page_size:
                yield page[:page_size]
                page = page[page_size:]
    if page:
        yield page


async def aiter_source_pages(
    pattern: str, page_size: int = 1000
) -> AsyncIterator[list[dict[str, Any]]]:
    """:func:`iter_source_pages`, reading in a worker thread so the event loop runs on.

    Example:
        >>> async def count(pattern):
        ...     return sum([len(page) async for page in aiter_source_pages(pattern)])
    """
    pages = await asyncio.to_thread(iter_source_pages, pattern, page_size)
    try:
        while True:
            page = await asyncio.to_thread(next, pages, None)
            if page is None:
                return
            yield page
    finally:
        # ValueError: still running in its worker thread (we were cancelled); it ends alone
        with contextlib.suppress(ValueError):
            pages.close()  # type: ignore[attr-defined]


# --- one file ------------------------------------------------------------------------------


def _read_file(path: Path, page_size: int) -> Iterator[list[dict[str, Any]]]:
    suffix = path.suffix.lower()
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise SourceError(f"source_file: cannot read {path}: {exc.strerror or exc}") from exc
    if suffix in PARQUET_SUFFIXES or magic == b"PAR1":
        yield from _read_parquet(path, page_size)
    elif suffix in NDJSON_SUFFIXES or _is_ndjson(path):
        yield from _read_ndjson(path, page_size)
    else:
        yield _read_json(path)


def _is_ndjson(path: Path) -> bool:
    """Whether the first non-blank line is a JSON document of its own and more lines follow."""
    with open(path, "rb") as handle:
        lines = (line for line in handle if line.strip())
        first = next(lines, None)
        if first is None or next(lines, None) is None:
            return False
    try:
        orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return True


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"source_file: cannot read {path}: {exc.strerror or exc}") from exc
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SourceError(
            f"source_file: {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg})"
        ) from exc
    return _items_of(document, str(path))


def _read_ndjson(path: Path, page_size: int) -> Iterator[list[dict[str, Any]]]:
    page: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    document = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise SourceError(
                        f"source_file: {path}, line {number}: invalid JSON ({exc.msg})"
                    ) from exc
                page.extend(_items_of(document, f"{path}, line {number}"))
                if len(page) >= page_size:
                    yield page
                    page = []
    except OSError as exc:
        raise SourceError(f"source_file: cannot read {path}: {exc.strerror or exc}") from exc
    if page:
        yield page


def _items_of(document: Any, where: str) -> list[dict[str, Any]]:
    """The items of a JSON document: a FeatureCollection, an item, or a list of items."""
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise SourceError(f"source_file: {where}: FeatureCollection without a features list")
        items = features
    elif isinstance(document, list):
        items = document
    else:
        items = [document]
    for index, item in enumerate(items):
        if not (isinstance(item, dict) and item.get("type") == "Feature" and "id" in item):
            position = f" (item {index})" if len(items) > 1 or item is not document else ""
            raise SourceError(
                f"source_file: {where}{position} is not a STAC item: expected an object with "
                f'"type": "Feature" and an "id", got {_describe(item)}'
            )
    return items


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with type {value.get('type')!r} and keys {sorted(value)[:6]}"
    return type(value).__name__


def _read_parquet(path: Path, page_size: int) -> Iterator[list[dict[str, Any]]]:
    try:
        source = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(f"source_file: {path} is not a readable Parquet file: {exc}") from exc
    if "id" not in source.schema_arrow.names:
        raise SourceError(f"source_file: {path} is not stac-geoparquet: it has no 'id' column")
    with source:
        for batch in source.iter_batches(batch_size=page_size):
            yield table_to_items(batch)


# --- Arrow rows -> items -------------------------------------------------------------------


def table_to_items(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """The STAC item dicts of a stac-geoparquet table (ours or another writer's).

    Example:
        >>> from stacfetch._formats.arrow import items_to_arrow
        >>> item = {"type": "Feature", "stac_version": "1.0.0", "id": "a", "geometry": None,
        ...         "properties": {"datetime": "2024-01-01 00:00:00+00:00", "gsd": 10},
        ...         "assets": {}}
        >>> table_to_items(items_to_arrow([item]))[0]["properties"]
        {'datetime': '2024-01-01T00:00:00Z', 'gsd': 10}
    """
    top: list[tuple[float, str, list[Any]]] = []
    props: list[tuple[str, list[Any]]] = []
    for index, field in enumerate(table.schema):
        meta = field.metadata or {}
        key = meta.get(KEY, field.name.encode()).decode()
        values = to_python(table.column(index), field)
        if field.name == "bbox":
            values = [_bbox_list(box) for box in values]
        if field.name in CORE_COLUMNS or meta.get(LEVEL) == ITEM:
            rank = _ORDER.get(field.name, _ORDER.get(key, len(_ORDER)))
            top.append((rank if field.name != INVALID_GEOMETRY else len(_ORDER), key, values))
        else:
            props.append((key, values))
    top.sort(key=lambda column: column[0])
    has_assets = any(key == "assets" for _, key, _ in top)
    has_datetime = any(key == "datetime" for key, _ in props)
    items = []
    for row in range(table.num_rows):
        item: dict[str, Any] = {}
        properties = {key: values[row] for key, values in props if values[row] is not None}
        if has_datetime:
            properties.setdefault("datetime", None)
        placed = False
        for rank, key, values in top:
            if not placed and rank > _ORDER["properties"]:
                item["properties"] = properties
                placed = True
            value = values[row]
            if value is not None:
                item[key] = value
            elif key == "geometry":
                item.setdefault(key, None)
        item.setdefault("geometry", None)
        item.setdefault("properties", properties)
        if not has_assets:
            item["assets"] = {}
        items.append(item)
    return items


_BBOX_2D = ("xmin", "ymin", "xmax", "ymax")
_BBOX_3D = ("xmin", "ymin", "zmin", "xmax", "ymax", "zmax")


def _bbox_list(box: Any) -> Any:
    if not isinstance(box, dict):
        return box
    z = [box.get("zmin"), box.get("zmax")]
    three_d = any(v is not None and v == v for v in z)  # NaN z: a 2D box among 3D ones
    names = _BBOX_3D if three_d else _BBOX_2D
    return [box[name] for name in names if name in box]
