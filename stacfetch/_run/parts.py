"""Pages in, GeoParquet parts out: the one part writer of the local run and of Dask tasks.

:class:`Rows` gathers a part's rows as pages bring them (item dicts decoded in this process,
Arrow tables from decoder processes). :class:`PartWriter` writes parts in a worker thread, in
order, each atomically (temporary name, then rename) and conformed to the schema of the part
before it, so that the directory mostly shares one schema before the final unification.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._engine.records import Page
from .._formats.arrow import items_to_arrow
from .._formats.geoparquet import write_part
from .._formats.tables import concat_tables

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["PartWriter", "Rows"]


class Rows:
    """A part's (or a conversion batch's) rows, as pages bring them.

    Items decoded in this process get the entry's ``collection`` when they have none (the
    decoder processes do the same in Arrow), so that every row has its exactly-once key.

    Example:
        >>> from stacfetch import Entry
        >>> rows = Rows()
        >>> rows.add(Page(Entry("https://x/stac", "c1"), "k", [{"id": "a"}]))
        >>> len(rows), rows.items[0]["collection"]
        (1, 'c1')
    """

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.tables: list[pa.Table] = []

    def add(self, page: Page) -> None:
        """Add the new items of one page."""
        if page.table is not None:
            self.tables.append(page.table)
            return
        cid = page.entry.collection_id
        if cid:
            for item in page.items:
                if not item.get("collection"):
                    item["collection"] = cid
        self.items.extend(page.items)

    def __len__(self) -> int:
        return len(self.items) + sum(int(t.num_rows) for t in self.tables)

    def to_arrow(self) -> pa.Table:
        """All the rows as one Arrow table (item dicts converted here)."""
        converted = [items_to_arrow(self.items)] if self.items else []
        return concat_tables([*self.tables, *converted])


Job = tuple[Rows, str, Callable[[], None] | None]


class PartWriter:
    """Write GeoParquet parts into ``directory`` in the background, one at a time, in order.

    :meth:`put` queues a part (at most ``backlog`` wait: the fetch slows down rather than
    holding more in memory) and an optional ``then`` callback run after it is written (the
    resume manifest records the chunks whose rows it holds). A write error surfaces at the
    next :meth:`put` or at :meth:`close`.

    Example::

        async with PartWriter(Path("out.parquet")) as parts:
            await parts.put(rows, "e00-run-00000.parquet", then=manifest.save)
    """

    def __init__(self, directory: Path, *, backlog: int = 2) -> None:
        self.directory = directory
        self.parts: list[str] = []
        """Names of the parts written so far."""
        self._schema: pa.Schema | None = None
        self._jobs: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=backlog)
        self._task: asyncio.Future[None] | None = None

    async def __aenter__(self) -> PartWriter:
        self._task = asyncio.ensure_future(self._work())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.close()
        elif self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def check(self) -> None:
        """Raise the error of a failed write now."""
        if self._task is not None and self._task.done():
            self._task.result()

    async def put(self, rows: Rows, name: str, then: Callable[[], None] | None = None) -> None:
        """Queue ``rows`` as part ``name`` (no file when empty; ``then`` runs in any case)."""
        self.check()
        await self._jobs.put((rows, name, then))

    async def close(self) -> None:
        """Write what is queued and stop (raises a write error)."""
        await self._jobs.put(None)
        if self._task is not None:
            await self._task

    async def _work(self) -> None:
        while (job := await self._jobs.get()) is not None:
            rows, name, then = job
            if len(rows):
                self._schema = await asyncio.to_thread(self._write, rows, name)
                self.parts.append(name)
            if then is not None:
                await asyncio.to_thread(then)

    def _write(self, rows: Rows, name: str) -> pa.Schema:
        return write_part(rows.to_arrow(), self.directory / name, self._schema)
