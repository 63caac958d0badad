"""Splitting only where it pays: an entry's first split starts with one child alone.

On most servers a search with an added filter (a time interval, a bbox tile) costs about what
the user's own search costs for the same number of items, so splitting it into parallel
children is pure gain. On some it does not: a static catalog behind a search API reads every
item file to evaluate a ``datetime`` filter and answers one request at a time, so each child
costs a whole walk and sixteen of them take many times longer than paging the plain search.
Nothing in a server's capabilities says which kind it is, so the engine measures: the first
:data:`WAVE` child of the entry's first split runs alone, and when its first page returns,
its latency is compared with the probe's (the user's own search), scaled by the number of
items. If the child took more than :data:`SLOWER` times longer (and longer than
:data:`FLOOR_SECONDS`), the other children are dropped before they are sent, no split is
made again for that entry, and the user's search is paged unsplit instead; otherwise every
child runs. The wave child's first page is probe-sized, so that the other children wait one
short page, and the verdict does not wait for a slow page: once it is overdue
(:meth:`Ramp.deadline`), the page is abandoned and the verdict is given.

Where the search has a time span (the user's, else the collection's extent), the engine also
sends, just after the probe, one small search of the first slice of that span
(:meth:`Ramp.filtered`): alongside the probe instead of after it. When it answers fast enough,
or its time against the probe's gives a verdict before the split is made, the children of the
first split start at once, and no wave child runs alone. Its items are not kept. It is sent
after the probe so that a server answering one request at a time answers the probe first:
the probe's time stays clean of the slice's walk.
"""

from __future__ import annotations

import asyncio
import dataclasses

__all__ = ["FLOOR_SECONDS", "SLOWER", "SLOWER_SHARED", "WAVE", "Ramp"]

WAVE = 1
"""Children of an entry's first split that run before the gate opens: one, so that on a
server where each split search is a whole walk, only one such walk is spent."""
SLOWER = 3.0
"""A child's page slower than the probe's by this factor (per item) means splits cost more
(stac-fastapi-static, where a filter costs a walk of the catalog: 4x and more)."""
SLOWER_SHARED = 6.0
"""The factor when other requests to the server were in flight as the page was sent (other
entries' pages): their load slowed a cheap server's page 3.3x its probe in a notebook test
in CI. Less sensitive: a walk is still told from load, if later."""
FLOOR_SECONDS = 0.5
"""Pages faster than this never count as slow: a split of cheap searches always pays."""


@dataclasses.dataclass
class Ramp:
    """One entry's gate on its first split.

    Example:
        >>> import asyncio
        >>> ramp = Ramp()
        >>> ramp.probed(0.2, 100)
        >>> ramp.start({"a", "b", "c"})
        True
        >>> asyncio.run(ramp.admit("a")), ramp.observe("a", 3.0, 50)
        (True, True)
        >>> sorted(ramp.dropped), ramp.expensive
        (['b', 'c'], True)
    """

    probe: tuple[float, int] | None = None
    """Seconds and items of the probe page (the user's own search)."""
    children: set[str] = dataclasses.field(default_factory=set)
    wave: set[str] = dataclasses.field(default_factory=set)
    dropped: set[str] = dataclasses.field(default_factory=set)
    expensive: bool = False
    shared: bool = False
    """Other requests to the server were in flight when the wave's page was sent."""
    started: bool = False
    opened: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    slice: tuple[float, int, bool] | None = None
    """Seconds, items and load (others in flight) of the search of a slice of the span."""

    def probed(self, seconds: float, items: int) -> bool | None:
        """The probe page came back after ``seconds`` with ``items`` items. Returns the
        verdict when the slice's search answered already (see :meth:`filtered`)."""
        if self.probe is None:
            self.probe = (seconds, max(1, items))
        return self._sliced()

    def filtered(self, seconds: float, items: int, *, shared: bool) -> bool | None:
        """The search of a slice of the span, sent alongside the probe, answered after
        ``seconds`` with ``items`` items. Returns the verdict it gives (True: splits cost more
        than they gain), or None (none yet, or none to give).

        Example:
            >>> ramp = Ramp()
            >>> ramp.filtered(0.3, 100, shared=False), ramp.opened.is_set()
            (False, True)
            >>> late = Ramp(probe=(0.2, 100))
            >>> late.filtered(2.0, 100, shared=False), late.expensive
            (True, True)
        """
        self.slice = (seconds, max(1, items), shared)
        return self._sliced()

    def _sliced(self) -> bool | None:
        if self.slice is None or self.opened.is_set():
            return None
        seconds, items, shared = self.slice
        if seconds <= FLOOR_SECONDS:
            return self._verdict(expensive=False)
        if self.probe is None:
            return None  # given once the probe answers
        probe_seconds, probe_items = self.probe
        factor = SLOWER_SHARED if shared else SLOWER
        slow = seconds > factor * probe_seconds * max(1.0, items / probe_items)
        if slow and self.started:
            return None  # the split is made and gated: its wave child decides (and drops)
        return self._verdict(expensive=slow)

    def start(self, children: set[str]) -> bool:
        """The entry's first split: gate ``children`` (False: not gated, nothing to compare,
        or the slice's search gave the verdict already)."""
        if self.started or self.probe is None or len(children) <= WAVE or self.opened.is_set():
            self.started = True
            return False
        self.started = True
        self.children = set(children)
        return True

    async def admit(self, chunk_id: str) -> bool:
        """Wait until ``chunk_id`` may run; False when it was dropped."""
        if chunk_id in self.children and not self.opened.is_set():
            if len(self.wave) < WAVE:
                self.wave.add(chunk_id)
                return True
            await self.opened.wait()
        return chunk_id not in self.dropped

    def sampling(self, chunk_id: str) -> bool:
        """Whether ``chunk_id`` is a wave child still awaiting its verdict."""
        return chunk_id in self.wave and not self.opened.is_set()

    def deadline(self, items: int) -> float:
        """Seconds after which a wave child's page of up to ``items`` items is slow enough
        for the verdict "splits cost more" (the same rule as :meth:`observe`).

        Example:
            >>> ramp = Ramp(probe=(0.4, 100))
            >>> ramp.deadline(100), ramp.deadline(1)
            (1.2000000000000002, 1.2000000000000002)
        """
        probe_seconds, probe_items = self.probe or (0.0, 1)
        factor = self.slower()
        return max(FLOOR_SECONDS, factor * probe_seconds * max(1.0, items / probe_items))

    def slower(self) -> float:
        """The factor a wave page must exceed: :data:`SLOWER`, or :data:`SLOWER_SHARED`."""
        return SLOWER_SHARED if self.shared else SLOWER

    def overdue(self, chunk_id: str) -> bool:
        """A wave child's first page is past :meth:`deadline`: the verdict is "splits cost
        more" (True; the children not yet sent are dropped)."""
        if not self.sampling(chunk_id):
            return False
        return self._verdict(expensive=True)

    def observe(self, chunk_id: str, seconds: float, items: int) -> bool:
        """A wave child's first page: True when splitting costs more than it gains (the
        children not yet sent are then dropped)."""
        if chunk_id not in self.wave or self.opened.is_set() or self.probe is None:
            return False
        probe_seconds, probe_items = self.probe
        expected = probe_seconds * max(1.0, items / probe_items)
        slow = seconds > FLOOR_SECONDS and seconds > self.slower() * expected
        return self._verdict(expensive=slow)

    def _verdict(self, *, expensive: bool) -> bool:
        """Open the gate; where splits cost more, drop the children not yet sent."""
        self.expensive = expensive
        if expensive:
            self.dropped = self.children - self.wave
        self.opened.set()
        return expensive

    def superseded(self, chunk_id: str) -> bool:
        """Whether ``chunk_id`` is a wave child whose search the unsplit fallback repeats."""
        return self.expensive and chunk_id in self.wave

    def finished(self, chunk_id: str) -> None:
        """A wave child ended without a verdict (it failed): open the gate."""
        if chunk_id in self.wave:
            self.opened.set()
