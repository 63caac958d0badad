"""What the engine works with and hands out: the outputs of a run (:class:`PlanReady`,
:class:`Page`, :class:`ChunkEnd`), what it is asked to fetch (:class:`EntryTask`), and its
per-entry bookkeeping (:class:`EntryState`, :class:`SplitNode`), plus the exactly-once set.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

from .._model.filters import IngestFilters
from .._model.types import Chunk, Entry, Interval
from .discovery import CollectionInfo
from .ramp import Ramp
from .search import ApiInfo
from .split import outside

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "PROBE_LIMIT",
    "ChunkEnd",
    "EntryState",
    "EntryTask",
    "Output",
    "Page",
    "PlanReady",
    "SplitNode",
    "new_items",
]

PROBE_LIMIT = 100
"""Page size of an entry's first request: enough items to choose how to split, cheap to
fetch again (the children re-fetch them), and a whole small search in one request."""


@dataclasses.dataclass(frozen=True)
class Page:
    """New (deduplicated) items of one page of one chunk.

    With a decoder pool, ``table`` holds the items as Arrow and ``items`` only their stubs
    (``id``, ``collection``, datetimes), row for row.
    """

    entry: Entry
    chunk_id: str
    items: list[dict[str, Any]]
    table: pa.Table | None = None


@dataclasses.dataclass(frozen=True)
class ChunkEnd:
    """A chunk finished: ``ok``, failed, or was split into ``children`` (which run on)."""

    entry: Entry
    chunk: Chunk
    ok: bool
    children: tuple[Chunk, ...] = ()


@dataclasses.dataclass(frozen=True)
class PlanReady:
    """An entry's initial chunks, emitted before any of its pages (resume records them)."""

    entry: Entry
    chunks: tuple[Chunk, ...]


@dataclasses.dataclass
class EntryTask:
    """What to fetch for one entry: its filters, and optionally the exact chunks to run
    (retry and resume pass them; otherwise the engine plans)."""

    entry: Entry
    filters: IngestFilters
    chunks: list[Chunk] | None = None
    seen: set[tuple[str, str]] | None = None


@dataclasses.dataclass(eq=False)
class SplitNode:
    """One split, kept until its children are done, to check it against the server."""

    chunk: Chunk
    axis: str
    parent: SplitNode | None
    pending: int
    sample: set[tuple[str, str]]
    """Items of the page that led to the split, not yet seen again from its children."""
    matched: int | None
    paged: bool
    """The chunk's page had a ``next`` link (so paging it unsplit can reach its end)."""
    size: int = 0
    features: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Up to ``PROBE_LIMIT`` items of that page, to choose how to split a child further."""
    depth: int = 1
    broken: bool = False
    """A child got items outside the filter stacfetch added: the server ignores it."""
    child_matched: int = 0
    child_counts: int = 0
    failed: bool = False

    def within(self, chunk: Chunk) -> list[dict[str, Any]]:
        """The kept items of the page that fall inside ``chunk`` (one of the children)."""
        return [f for f in self.features if not outside(chunk, self.axis, f)]


@dataclasses.dataclass
class EntryState:
    """One entry's run in the engine: its plan, its exactly-once set, the chunks in its queue
    and what the splits taught (which axes the server filters faithfully)."""

    task: EntryTask
    api: ApiInfo | None = None
    info: CollectionInfo | None = None
    chunks: list[Chunk] = dataclasses.field(default_factory=list)
    total: int | None = None
    target: int = 0
    seen: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    items: int = 0
    failed: int = 0
    busy: int = 0
    queue: asyncio.Queue[Chunk] | None = None
    stop: bool = False
    truncation_children: set[str] = dataclasses.field(default_factory=set)
    """Children of chunks whose page was full without a ``next`` link."""
    counting: asyncio.Future[None] | None = None
    """Done once the entry's probe answered (the total is then known, if reported)."""
    probes: set[str] = dataclasses.field(default_factory=set)
    count_probes: set[str] = dataclasses.field(default_factory=set)
    """Chunks whose first page asks for one item: their count decides before a full page."""
    narrowed: set[str] = dataclasses.field(default_factory=set)
    """Children of a chunk split because it failed: they fail for good."""
    nodes: dict[str, SplitNode | None] = dataclasses.field(default_factory=dict)
    """The split each chunk is a child of (None: a planned chunk)."""
    fallbacks: set[str] = dataclasses.field(default_factory=set)
    unpaged_fallbacks: set[str] = dataclasses.field(default_factory=set)
    """Fallbacks of splits made from a full page without ``next``: paging cannot go beyond."""
    slice_search: Chunk | None = None
    """A slice of the span, searched alongside the probe to learn whether splits pay."""
    ramp: Ramp = dataclasses.field(default_factory=Ramp)
    """The gate on the entry's first split (splits stop where they cost more than they gain)."""
    refetched: int = 0
    """Items fetched by chunks split without counts: their children fetch them again."""
    bad_axes: set[str] = dataclasses.field(default_factory=set)
    """Axes whose filter the server was seen not to apply: never split on them again."""
    notes: list[str] = dataclasses.field(default_factory=list)

    def axis_range(self) -> str | None:
        """The time range the entry's timeline spans: the search's, else the collection's."""
        ends = [c.interval for c in self.chunks]
        start = min((iv.start for iv in ends if iv.start), default=None)
        end = max((iv.end for iv in ends if iv.end), default=None)
        if self.info is not None:
            start = start or self.info.extent_start
            end = end or self.info.extent_end
        if (start is None and end is None) or (start and end and start > end):
            return None
        return Interval(start, end).to_param()


Output = Page | ChunkEnd | PlanReady


def new_items(
    seen: set[tuple[str, str]], features: list[Any], collection: str | None
) -> tuple[list[int], set[tuple[str, str]]]:
    """The exactly-once set at work: positions of the features not seen before (marking them
    seen), and the (collection, id) key of every feature. An item without a ``collection``
    takes the entry's; an item without an ``id`` cannot be matched and is always kept.

    Example:
        >>> seen = {("c1", "a")}
        >>> new_items(seen, [{"id": "a"}, {"id": "b"}, {"id": "b"}], "c1")[0]
        [1]
        >>> sorted(seen)
        [('c1', 'a'), ('c1', 'b')]
    """
    new: list[int] = []
    keys: set[tuple[str, str]] = set()
    default = collection or ""
    for i, item in enumerate(features):
        if not isinstance(item, dict):
            continue
        item_id = item.get("id")
        if item_id is None:
            new.append(i)
            continue
        key = (item.get("collection") or default, str(item_id))
        keys.add(key)
        if key not in seen:
            seen.add(key)
            new.append(i)
    return new, keys
