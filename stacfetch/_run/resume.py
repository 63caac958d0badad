"""Resume bookkeeping for streamed GeoParquet output: a manifest next to the part files.

Layout of an output directory written by :meth:`stacfetch.Ingestor.to_parquet`::

    out.parquet/
        _stacfetch_manifest.json      what was asked, the plan, which chunks are on disk
        _common_metadata              the one schema of every part (written at the end of a run)
        e00-<run>-00000.parquet       parts of entry 0, each written atomically (temp + rename)
        e01-<run>-00000.parquet       ...

Parts (and the manifest) are written every ``FLUSH_SECONDS`` as well as every ``rows_per_part``
rows, and chunks are a few pages long, so a killed run loses seconds of work
(docs/decisions/0005-parquet-output.md).

Protocol, so that a run killed at any moment resumes to exactly the same set:

1. A chunk is recorded as done only after every item it delivered is in a part on disk (a part is
   written, then the manifest is replaced atomically).
2. On resume, chunks not recorded as done are fetched again, and the (collection, id) of every
   item already in a part (listed in the manifest or not) seeds the exactly-once set, so nothing
   is written twice.
3. A chunk split while fetching is done once its first pages are on disk, and its children are
   recorded with it; the children are then pending like any other chunk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._model.errors import ConfigurationError
from .._model.types import Chunk

__all__ = ["MANIFEST_NAME", "Manifest"]

MANIFEST_NAME = "_stacfetch_manifest.json"
"""File name of the manifest inside an output directory."""
FORMAT_VERSION = 1
_PART = re.compile(r"^e(\d+)-[0-9a-f]+-\d+\.parquet$")


class Manifest:
    """The resume state of one output directory.

    Example:
        >>> import tempfile
        >>> m = Manifest.open(Path(tempfile.mkdtemp()) / "out.parquet", {"entries": ["u#c"]})
        >>> m.pending(0) is None          # nothing planned yet: plan afresh
        True
    """

    def __init__(self, path: Path, signature: Mapping[str, Any], state: dict[str, Any]) -> None:
        self.path = path
        self.signature = dict(signature)
        self.state = state
        self.run_id = uuid.uuid4().hex[:8]
        self._part_no = 0

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | os.PathLike[str], signature: Mapping[str, Any], *, overwrite: bool = False
    ) -> Manifest:
        """Open (resume) or create the output directory ``path`` for a run with ``signature``.

        Raises :class:`~stacfetch.ConfigurationError` when ``path`` holds something else: a
        file, a directory that is not a stacfetch output, or the output of a different search
        (unless ``overwrite=True``, which replaces a previous stacfetch output).
        """
        out = Path(path)
        manifest = out / MANIFEST_NAME
        signature = json.loads(json.dumps(signature, sort_keys=True, default=str))
        if out.exists() and not out.is_dir():
            raise ConfigurationError(
                f"path: {str(out)!r} is a file; to_parquet writes a directory of part files "
                "(give a new path, or remove the file)"
            )
        if out.is_dir() and any(out.iterdir()):
            if not manifest.exists():
                raise ConfigurationError(
                    f"path: {str(out)!r} is a non-empty directory without a stacfetch manifest; "
                    "refusing to write into it (give a new or empty directory)"
                )
            state = json.loads(manifest.read_text())
            if overwrite:
                shutil.rmtree(out)
            elif state.get("signature") != signature:
                raise ConfigurationError(
                    f"path: {str(out)!r} holds the output of a different search; pass "
                    "overwrite=True to replace it, or choose another path"
                )
            else:
                for temp in out.glob(".*.tmp"):
                    temp.unlink(missing_ok=True)
                return cls(out, signature, state)
        out.mkdir(parents=True, exist_ok=True)
        state = {"version": FORMAT_VERSION, "signature": signature, "entries": {}}
        m = cls(out, signature, state)
        m.save()
        return m

    # -- state -------------------------------------------------------------------------------
    def _entry(self, index: int) -> dict[str, Any]:
        entries: dict[str, dict[str, Any]] = self.state["entries"]
        return entries.setdefault(str(index), {"plan": None, "children": {}, "done": []})

    def pending(self, index: int) -> list[Chunk] | None:
        """Chunks of entry ``index`` still to fetch; None when it was never planned."""
        entry = self._entry(index)
        if entry["plan"] is None:
            return None
        done = set(entry["done"])
        children: dict[str, list[dict[str, Any]]] = entry["children"]
        out: list[Chunk] = []
        stack = [Chunk.from_dict(c) for c in reversed(entry["plan"])]
        while stack:
            chunk = stack.pop()
            cid = chunk.chunk_id
            if cid not in done:
                out.append(chunk)
            elif cid in children:
                stack.extend(Chunk.from_dict(c) for c in reversed(children[cid]))
        return out

    @property
    def complete(self) -> bool:
        """Whether the last run finished with nothing pending and no failure."""
        return bool(self.state.get("complete"))

    def record_plan(self, index: int, chunks: Sequence[Chunk]) -> None:
        """Record an entry's initial plan (only the first time it is planned)."""
        entry = self._entry(index)
        if entry["plan"] is None:
            entry["plan"] = [c.to_dict() for c in chunks]
            self.save()

    def record_done(self, index: int, ends: Iterable[tuple[Chunk, tuple[Chunk, ...]]]) -> None:
        """Mark chunks done (their items are on disk), with the children of split chunks."""
        entry = self._entry(index)
        done = set(entry["done"])
        for chunk, kids in ends:
            done.add(chunk.chunk_id)
            if kids:
                entry["children"][chunk.chunk_id] = [k.to_dict() for k in kids]
        entry["done"] = sorted(done)

    def set_complete(self, value: bool) -> None:
        """Record whether the run finished with everything on disk."""
        self.state["complete"] = value
        self.save()

    def save(self) -> None:
        """Replace the manifest file atomically."""
        target = self.path / MANIFEST_NAME
        temp = self.path / f".{MANIFEST_NAME}.tmp"
        temp.write_text(json.dumps(self.state, sort_keys=True))
        os.replace(temp, target)

    # -- parts ---------------------------------------------------------------------------------
    def next_part_name(self, index: int) -> str:
        """A fresh part name for entry ``index`` (without ``.parquet``)."""
        name = f"e{index:02d}-{self.run_id}-{self._part_no:05d}"
        self._part_no += 1
        return name

    def parts(self) -> dict[int, list[Path]]:
        """Part files on disk, by entry index (also parts the manifest had no time to list)."""
        out: dict[int, list[Path]] = {}
        for file in sorted(self.path.iterdir()):
            match = _PART.match(file.name)
            if match:
                out.setdefault(int(match.group(1)), []).append(file)
        return out
