"""When and how the engine splits a chunk, and how every split is checked against the server.

A chunk that turns out large is replaced by children covering its *whole* search (in time or
in space, :mod:`stacfetch._engine.split` chooses the axis). Each split is remembered as a
:class:`~stacfetch._engine.records.SplitNode` until its children are done; then it is
verified: the items of the page that led to it must have come back from the children, the
children's counts must add up to at least the chunk's, and no child may return items outside
the filter it added. A split that fails the check marks its axis as one the server does not
filter faithfully, and the chunk runs again on the other axis, or unsplit.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from .._model.events import ChunkDone, ChunkSpan, ChunkSplit, EventSink, Notice
from .._model.types import Chunk
from .records import PROBE_LIMIT, EntryState, SplitNode
from .split import Split, outside, plan_split

__all__ = [
    "MAX_DEPTH",
    "MAX_SPLIT_PIECES",
    "REFETCH_SHARE",
    "Splitter",
    "any_outside",
]

logger = logging.getLogger("stacfetch")

MAX_DEPTH = 12
"""Splits of splits beyond this depth page on instead (each level divides by two or more)."""
REFETCH_SHARE = 0.25
"""Without counts, a chunk is split only to keep idle workers busy, and only while the items
its children fetch again stay under this share of the items kept so far (or one probe's
worth, for the first split of a run given its chunks)."""
MAX_SPLIT_PIECES = 16
"""Children of one split in a Dask task (locally: two per worker)."""


class Splitter:
    """The engine's split policy and the verification of its splits.

    ``local``: the engine's own workers run the children (False: they are only reported, for
    a scheduler elsewhere, Dask, to run). Subclasses change :meth:`pieces` (when to split).

    Example:
        >>> from stacfetch._model.events import fanout
        >>> Splitter(workers=8, sink=fanout()).workers
        8
    """

    def __init__(self, *, workers: int, sink: EventSink, local: bool = True) -> None:
        self.workers = workers
        self.sink = sink
        self.local = local

    def pieces(
        self,
        state: EntryState,
        matched: int | None,
        returned: int,
        *,
        has_next: bool,
        full: bool,
        probe: bool,
    ) -> int:
        """Into how many children to split a chunk after a page (0: keep paging it).

        With counts: when more than a target's worth is left (or a page ended early without a
        ``next`` link), into ``matched / target`` children. Without: a probe that has more
        splits across every worker, a full page without ``next`` splits (it may be a truncated
        window), and a full page with ``next`` splits when workers would idle and the items
        fetched again stay within :data:`REFETCH_SHARE`.
        """
        assert state.queue is not None
        most = max(2, 2 * self.workers)
        target = max(1, state.target)
        if matched is not None:
            remaining = matched - returned
            if remaining <= 0 or (probe and matched <= target):
                return 0  # a probe of a light chunk: fetch it with full pages instead
            if state.ramp.expensive:  # splits cost more than they gain: only to reach what
                return 0 if has_next else 2  # the server cut off
            if probe or remaining > target or not has_next:
                return max(2, min(most, -(-matched // target)))
            return 0
        idle = self.workers - state.busy
        if state.ramp.expensive and has_next:
            return 0  # splits cost more than they gain on this server: page on
        if not has_next:
            pieces = max(2, idle + 1) if full else 0
        elif probe:
            pieces = most
        elif (
            full
            and state.queue.qsize() == 0
            and idle > 0
            and state.refetched + returned <= max(PROBE_LIMIT, REFETCH_SHARE * state.items)
        ):
            pieces = min(most, max(2, idle + 1))
        else:
            pieces = 0
        if pieces:
            state.refetched += returned
        return pieces

    def pages_on(
        self,
        state: EntryState,
        chunk: Chunk,
        node: SplitNode | None,
        *,
        matched: int | None,
        returned: int,
    ) -> bool:
        """Whether a chunk past its first page, with a ``next`` link, pages on whatever its
        page's items turn out to be: it is never split, or the counts say no split is due (so
        the next page may be asked for before this one's items are read). False without
        counts: there a split depends on what the run has delivered so far."""
        if chunk.sequential or (node is not None and (node.depth >= MAX_DEPTH or node.broken)):
            return True
        if matched is None:
            return False
        return not self.pieces(state, matched, returned, has_next=True, full=True, probe=False)

    def after_page(
        self,
        state: EntryState,
        chunk: Chunk,
        node: SplitNode | None,
        features: list[Any],
        *,
        matched: int | None,
        returned: int,
        has_next: bool,
        full: bool,
        probe: bool,
    ) -> tuple[Split | None, bool]:
        """Whether to split ``chunk`` after a page: ``(the split or None, whether a split was
        due but no axis separates its items)``. ``probe``: the page was a small first one
        (the entry's probe, a count probe, or the first wave child's sample)."""
        if chunk.sequential or (node is not None and (node.depth >= MAX_DEPTH or node.broken)):
            return None, False
        pieces = self.pieces(state, matched, returned, has_next=has_next, full=full, probe=probe)
        if not pieces:
            return None, False
        sample = features
        if node is not None and len(features) < PROBE_LIMIT:  # a count probe
            sample = [*features, *node.within(chunk)]
        split = self.plan(state, chunk, sample, pieces, node.axis if node else None)
        return split, split is None

    def plan(
        self,
        state: EntryState,
        chunk: Chunk,
        features: list[Any],
        pieces: int,
        prefer: str | None = None,
    ) -> Split | None:
        """The split of ``chunk`` into ``pieces`` children (None: it cannot be split);
        ``prefer``: the axis of the split above (kept when the sample is too small to tell)."""
        extent: tuple[datetime | None, datetime | None] = (None, None)
        if state.info is not None:
            extent = (state.info.extent_start, state.info.extent_end)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        sample = [f for f in features if isinstance(f, dict)]
        axes = [a for a in ("time", "space") if a not in state.bad_axes]
        return plan_split(chunk, sample, pieces, extent=extent, now=now, axes=axes, prefer=prefer)

    def enqueue(
        self,
        state: EntryState,
        chunk: Chunk,
        split: Split,
        features: list[Any],
        sample: set[tuple[str, str]],
        matched: int | None,
        node: SplitNode | None,
        *,
        paged: bool,
    ) -> tuple[Chunk, ...]:
        """Replace ``chunk`` by the split's children: remember the split for its check, queue
        the children (locally), tell the front ends. Returns the children."""
        assert state.queue is not None
        children = tuple(split.children)
        queued = list(children)
        if self.local:
            child_node = SplitNode(
                chunk, split.axis, node, len(children), set(sample), matched, paged, len(children)
            )
            child_node.depth = node.depth + 1 if node is not None else 1
            child_node.features = [f for f in features if isinstance(f, dict)][:PROBE_LIMIT]
            # Children of a split that already showed an uneven spread (in space, or below
            # the first level) may be heavy: learn their size first from a one-item page, so
            # that a heavy one is split before a full page of it is fetched (and fetched again).
            probe_first = matched is not None and (split.axis == "space" or node is not None)
            for child in children:
                state.nodes[child.chunk_id] = child_node
                if probe_first:
                    state.count_probes.add(child.chunk_id)
            # an entry's first split runs one child first (the one with fewest sampled items:
            # a quick page) to learn whether splits pay on this server
            if (
                node is None
                and paged
                and features
                and state.ramp.start({c.chunk_id for c in children})
            ):
                queued.sort(key=lambda c: len(child_node.within(c)))
        for child in queued:
            if not paged:
                state.truncation_children.add(child.chunk_id)
            if self.local:
                state.queue.put_nowait(child)
        key = state.task.entry.key
        spans = tuple(ChunkSpan.of(c) for c in children)
        self.sink.emit(ChunkSplit(key, chunk.chunk_id, len(children), split.axis, spans))
        self.sink.emit(ChunkDone(key, chunk.chunk_id, 0))
        return children

    def narrow(
        self,
        state: EntryState,
        chunk: Chunk,
        node: SplitNode | None,
        status: int | None,
        *,
        max_items: int | None,
    ) -> tuple[Chunk, ...] | None:
        """A planned chunk failed for good on a server error: split it in time once, so that
        a failing window of the server fails only the children that cover it (the rest of the
        search is still fetched). Errors that say the request itself is wrong (4xx other than
        429) are not narrowed: every child would fail the same way. Returns the children, or
        None when the chunk fails as it is."""
        if (
            node is not None
            or chunk.parent_id is not None  # only planned chunks (also across Dask tasks)
            or chunk.chunk_id in state.narrowed
            or chunk.sequential
            or chunk.attempt
            or max_items is not None
        ):
            return None
        if status is not None and 400 <= status < 500 and status != 429:
            return None
        split = self.plan(state, chunk, [], max(2, 2 * self.workers))
        if split is None or split.axis != "time":
            return None
        children = self.enqueue(state, chunk, split, [], set(), None, None, paged=True)
        state.narrowed.update(c.chunk_id for c in children)
        return children

    def timed(
        self, state: EntryState, node: SplitNode | None, cid: str, seconds: float | None, items: int
    ) -> tuple[Chunk, Chunk] | None:
        """A chunk's first page took ``seconds``: the probe's sets the scale, a wave child's
        may show that this server's split searches cost more than they gain (then the split
        is replaced: see :meth:`collapse`). ``None``: the page was retried, and its time says
        nothing of the search (a wave child then opens the gate without a verdict)."""
        if seconds is None:
            state.ramp.finished(cid)
            return None
        if cid in state.probes:
            if state.ramp.probed(seconds, items):
                self._unsplit(state, "the search of a slice of its span")
            return None
        if state.ramp.observe(cid, seconds, items):
            return self.collapse(state, node)
        return None

    def filtered(self, state: EntryState, seconds: float, items: int, *, shared: bool) -> None:
        """The search of a slice of the entry's span, sent alongside its probe, answered after
        ``seconds``: it may tell whether splits pay before the first split is made."""
        if state.ramp.filtered(seconds, items, shared=shared):
            self._unsplit(state, "the search of a slice of its span")

    def _unsplit(self, state: EntryState, what: str) -> None:
        probe_seconds, _ = state.ramp.probe or (0.0, 0)
        self._say(
            state,
            f"{state.task.entry.label}: searches split by stacfetch are much slower than the "
            f"search itself on this server ({what} took longer than {state.ramp.slower():g}x "
            f"the first page's {probe_seconds:.2f} s for its size); paging the search unsplit",
        )

    def overdue(
        self, state: EntryState, node: SplitNode | None, cid: str
    ) -> tuple[Chunk, Chunk] | None:
        """A wave child's first page is overdue (:meth:`Ramp.deadline`): the verdict is that
        splits cost more than they gain; the split is replaced (see :meth:`collapse`)."""
        return self.collapse(state, node) if state.ramp.overdue(cid) else None

    def collapse(self, state: EntryState, node: SplitNode | None) -> tuple[Chunk, Chunk] | None:
        """The first wave showed that this server's searches cost more split than whole: page
        the split chunk unsplit instead (its children not yet sent were dropped; what the
        wave returns is kept and the exactly-once set drops it from the fallback). Returns
        ``(split chunk, fallback)``, or None when there is no split to replace."""
        assert state.queue is not None
        if node is None:
            return None
        node.sample.clear()  # not a disagreement of the server: nothing to verify
        node.matched = None
        probe_seconds, _ = state.ramp.probe or (0.0, 0)
        message = (
            f"{state.task.entry.label}: searches split by stacfetch are much slower than the "
            f"search itself on this server (a child's page took longer than "
            f"{state.ramp.slower():g}x the "
            f"first page's {probe_seconds:.2f} s for its size); paging the search unsplit"
        )
        return self._replace(state, node, node.chunk.again(sequential=True), message)

    @staticmethod
    def seen_again(node: SplitNode | None, keys: set[tuple[str, str]]) -> None:
        """Items of a child's page: tick them off the samples of every split above it."""
        while node is not None:
            if node.sample:
                node.sample.difference_update(keys)
            node = node.parent

    @staticmethod
    def check_page(
        node: SplitNode | None, chunk: Chunk, features: list[Any], state: EntryState
    ) -> None:
        """A child returned items outside the filter its split added: the split is broken."""
        if node is not None and not node.broken and any_outside(chunk, node.axis, features):
            node.broken = True
            state.bad_axes.add(node.axis)

    def complete(
        self, state: EntryState, node: SplitNode | None, *, failed: bool
    ) -> tuple[Chunk, Chunk] | None:
        """A chunk (or a split's last child) is done: check every split it completes.

        Returns ``(split chunk, fallback)`` when a split disagrees with the server: the
        fallback (queued here) searches the split chunk again, on the other axis or unsplit.
        """
        assert state.queue is not None
        while node is not None:
            node.failed = node.failed or failed
            node.pending -= 1
            if node.pending > 0:
                return None
            problem = _problem(node)
            if problem is not None:
                return self._fall_back(state, node, problem)
            failed = node.failed
            node = node.parent
        return None

    def _fall_back(self, state: EntryState, node: SplitNode, problem: str) -> tuple[Chunk, Chunk]:
        assert state.queue is not None
        state.bad_axes.add(node.axis)
        left = [a for a in ("time", "space") if a not in state.bad_axes]
        fallback = node.chunk.again(sequential=not left)
        if not node.paged:
            state.unpaged_fallbacks.add(fallback.chunk_id)
        where = node.chunk.interval.to_param() or "the whole search"
        tile = node.chunk.filters.get("bbox")
        if node.axis == "space" and tile is not None:
            where += f" in bbox {tile}"
        instead = f"splitting it in {left[0]} instead" if left else "paging it unsplit"
        message = (
            f"{state.task.entry.label}: the server's {node.axis} filtering disagrees "
            f"with a split of {where} ({problem}); {instead}"
        )
        return self._replace(state, node, fallback, message)

    def _replace(
        self, state: EntryState, node: SplitNode, fallback: Chunk, message: str
    ) -> tuple[Chunk, Chunk]:
        """Queue ``fallback`` in place of the split ``node`` and say why (a note, a WARNING,
        a ``Notice``). Returns ``(split chunk, fallback)``."""
        assert state.queue is not None
        state.nodes[fallback.chunk_id] = node.parent
        state.fallbacks.add(fallback.chunk_id)
        self._say(state, message)
        state.queue.put_nowait(fallback)
        return node.chunk, fallback

    def _say(self, state: EntryState, message: str) -> None:
        """A note on the entry, a WARNING and a ``Notice``: a change of plan is never silent."""
        state.notes.append(message)
        logger.warning("%s", message)
        self.sink.emit(Notice(state.task.entry.key, message))


def _problem(node: SplitNode) -> str | None:
    """What the server's answers to a split's children say is wrong with it (None: nothing)."""
    if node.broken:
        return "the server returned items outside the filters of its children"
    if not node.failed and node.sample:
        return (
            f"{len(node.sample)} item(s) of the page that led to the split did not "
            "come back from its children"
        )
    if (
        not node.failed
        and node.matched is not None
        and node.child_counts == node.size
        and node.child_matched < node.matched
    ):
        return f"its children count {node.child_matched} items, it {node.matched}"
    return None


def any_outside(chunk: Chunk, axis: str, features: list[Any]) -> bool:
    """Whether any of ``features`` falls outside the filter ``chunk`` adds on ``axis``."""
    return any(isinstance(f, dict) and outside(chunk, axis, f) for f in features)
