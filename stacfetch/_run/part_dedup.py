"""The exactly-once pass over a ``to_parquet`` directory: one copy per (collection, id).

A local run never writes an item twice (its exactly-once set is seeded from the parts on disk);
Dask tasks each write their own chunk, so boundary and range items fetched by two tasks can
land in two parts. This pass finds repeated keys by 64-bit hash, confirms them on the exact keys,
keeps the copy in the part whose name sorts first, and rewrites (atomically) only the parts that
hold another copy. It is idempotent; see docs/decisions/0004-dask.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .resume import Manifest

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["deduplicate_parts"]

logger = logging.getLogger("stacfetch")


def _key_hashes(keys: pa.Table) -> Any:
    import numpy as np

    pairs = zip(keys.column("collection").to_pylist(), keys.column("id").to_pylist(), strict=True)
    return np.fromiter((hash(k) for k in pairs), dtype=np.int64, count=keys.num_rows)


def _drop_rows(file: Path, rows: Sequence[int]) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(file)
    keep = np.ones(table.num_rows, dtype=bool)
    keep[list(rows)] = False
    kept = table.filter(pa.array(keep))
    if kept.num_rows == 0:
        file.unlink()
        return
    temp = file.with_name(f".{file.name}.tmp")
    try:
        pq.write_table(kept, temp, compression="zstd")
        os.replace(temp, file)
    finally:
        temp.unlink(missing_ok=True)


def _deduplicate_entry(files: Sequence[Path]) -> int:
    import numpy as np
    import pyarrow.parquet as pq

    columns = ["collection", "id"]
    hashes = [_key_hashes(pq.read_table(f, columns=columns)) for f in files]
    if sum(len(h) for h in hashes) < 2:
        return 0
    ordered = np.sort(np.concatenate(hashes))
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if not repeated.size:
        return 0
    kept: set[tuple[Any, Any]] = set()
    drops: dict[int, list[int]] = {}
    for number, (file, own) in enumerate(zip(files, hashes, strict=True)):
        rows = np.nonzero(np.isin(own, repeated))[0]
        if not rows.size:
            continue
        keys = pq.read_table(file, columns=columns).take(rows)
        pairs = zip(
            keys.column("collection").to_pylist(), keys.column("id").to_pylist(), strict=True
        )
        for row, key in zip(rows.tolist(), pairs, strict=True):
            if key in kept:
                drops.setdefault(number, []).append(row)
            else:
                kept.add(key)
    for number, dropped in drops.items():
        _drop_rows(files[number], dropped)
    return sum(len(dropped) for dropped in drops.values())


def deduplicate_parts(path: str | os.PathLike[str]) -> dict[int, int]:
    """The exactly-once pass over a ``to_parquet`` directory: one copy per (collection, id).

    Per entry, every (collection, id) held by more than one part keeps the copy in the part
    whose name sorts first; the other parts are rewritten without it (atomically), or removed
    when nothing is left. Idempotent. Returns the copies removed, by entry index.
    :func:`dask_to_parquet` runs it at the end of every run.

    Example:
        >>> import tempfile
        >>> deduplicate_parts(tempfile.mkdtemp())
        {}
    """
    directory = Path(path)
    parts = Manifest(directory, {}, {"entries": {}}).parts()
    removed: dict[int, int] = {}
    for index, files in sorted(parts.items()):
        count = _deduplicate_entry(files)
        if count:
            removed[index] = count
            logger.info("stacfetch: entry %d: removed %d copies fetched twice", index, count)
    return removed
