"""The renderer base: a progress front end folds events, and redraws at its own pace.

The engine emits :mod:`events <stacfetch._model.events>`; a renderer folds them into a
:class:`~stacfetch._model.progress.ProgressTracker` and draws the snapshots at its own pace.
:class:`ThrottledRenderer` is the base of the notebook and terminal renderers
(:mod:`stacfetch._display.notebook`, :mod:`stacfetch._display.terminal`); the text helpers
below (:func:`format_duration`, :func:`describe_entry`, :func:`bar_position`...) are shared by
every front end. This module imports no other display module; the chooser,
:func:`stacfetch._display.auto.make_progress`, sits on top of all of them.

Threading: ``emit`` is called on the event loop's thread (which, for the sync
``Ingestor.ingest()`` in Jupyter, may be a worker thread while the kernel thread waits).
It never blocks: it folds the event, and redraws at most every ``min_interval`` seconds
(always on plan, entry end, chunk failure and run end). When an event is skipped by the
throttle and a loop is running, one trailing redraw is scheduled on that loop so the last
numbers always show; while entries run, a slow tick keeps the elapsed time moving.
A renderer never lets a drawing error escape into the engine: it logs once and stops
drawing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .._model.events import ChunkFailed, EntryDone, EntryPlanned, Event, RunDone
from .._model.progress import EntryProgress, ProgressTracker

__all__ = [
    "DEFAULT_MIN_INTERVAL",
    "ProgressRenderer",
    "ThrottledRenderer",
    "bar_position",
    "describe_entry",
    "format_count",
    "format_duration",
    "format_rate",
]

logger = logging.getLogger("stacfetch")

DEFAULT_MIN_INTERVAL = 0.1
"""Seconds between two redraws of a renderer (10 redraws per second at most)."""

IDLE_INTERVAL = 1.0
"""Seconds between two redraws while entries run but no event arrives (the clock ticks)."""

IDLE_TICK_LIMIT = 600.0
"""Seconds without any event after which the clock stops ticking (a run that never closed)."""

_FORCE_REDRAW = (EntryPlanned, EntryDone, ChunkFailed, RunDone)


@runtime_checkable
class ProgressRenderer(Protocol):
    """A progress front end: an :class:`~stacfetch.EventSink` that can be closed.

    ``close()`` draws the final state and leaves it visible (bars are not removed).

    Example:
        >>> class Quiet:
        ...     def emit(self, event): pass
        ...     def close(self): pass
        >>> isinstance(Quiet(), ProgressRenderer)
        True
    """

    def emit(self, event: Event) -> None:
        """Receive one event (on the event loop thread; must not block)."""

    def close(self) -> None:
        """Draw the final state and release resources; the display stays visible."""


class ThrottledRenderer:
    """Base of the renderers: folds events into a tracker and redraws at most 1/``min_interval``.

    Subclasses implement :meth:`_redraw` (draw ``self.tracker``) and may extend
    :meth:`_finish` (called once by :meth:`close`, after the final redraw).
    ``clock`` is injectable for tests; ``redraws`` counts the draws made.

    Example:
        >>> from stacfetch._model.events import EntryStarted, PageFetched
        >>> class Count(ThrottledRenderer):
        ...     def _redraw(self) -> None: pass
        >>> r = Count(min_interval=3600)
        >>> r.emit(EntryStarted("u#c", "c"))
        >>> for _ in range(1000):
        ...     r.emit(PageFetched("u#c", "k", new=10, duplicates=0))
        >>> r.close()
        >>> r.tracker.entries["u#c"].items, r.redraws
        (10000, 2)
    """

    def __init__(
        self,
        *,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = ProgressTracker()
        self.min_interval = min_interval
        self.clock = clock
        self.redraws = 0
        self.run_done = False
        self.closed = False
        self._last_draw = float("-inf")
        self._last_event = float("-inf")
        self._drawn_version = -1
        self._broken = False
        self._lock = threading.RLock()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_idle = False

    # -- the sink ---------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Fold one event and redraw when due; never raises, never blocks."""
        with self._lock:
            if self.closed:
                return
            self.tracker.emit(event)
            if isinstance(event, RunDone):
                self.run_done = True
            try:
                self._on_event(event)
            except Exception:  # a front end must never break the fetch
                self._give_up()
            now = self._last_event = self.clock()
            if isinstance(event, _FORCE_REDRAW) or now - self._last_draw >= self.min_interval:
                self._draw(now)
            self._schedule()

    def close(self) -> None:
        """Draw the final state once and finish (bars stay visible). Safe to call twice."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._cancel_timer()
            self._draw(self.clock())
            try:
                self._finish()
            except Exception:
                self._give_up()

    # -- hooks for subclasses ---------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        """Called for every event after the tracker folded it (cheap work only)."""

    def _redraw(self) -> None:
        """Draw ``self.tracker``; subclasses implement it."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Called once by :meth:`close` after the final redraw."""

    # -- machinery --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while some entry has started and not finished, and the run is not done."""
        return not self.run_done and any(p.finished is None for p in self.tracker.entries.values())

    def _draw(self, now: float) -> None:
        if self._broken:
            return
        if self.tracker.version == self._drawn_version and not self.running:
            return  # nothing new to show
        self._last_draw = now
        self._drawn_version = self.tracker.version
        self.redraws += 1
        try:
            self._redraw()
        except Exception:
            self._give_up()

    def _give_up(self) -> None:
        if not self._broken:
            self._broken = True
            logger.warning("stacfetch: progress display failed; it stops here", exc_info=True)

    def _schedule(self) -> None:
        """Keep one timer on the running loop: a trailing redraw, or the idle clock tick."""
        if self._broken or self.closed or not self.running:
            return
        pending = self.tracker.version != self._drawn_version
        if self._timer is not None:
            if not (pending and self._timer_idle):
                return
            self._cancel_timer()  # an undrawn event: do not wait for the slow tick
        if not pending and self.clock() - self._last_event > IDLE_TICK_LIMIT:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer_idle = not pending
        self._timer = loop.call_later(self.min_interval if pending else IDLE_INTERVAL, self._tick)

    def _tick(self) -> None:
        with self._lock:
            self._timer = None
            if self.closed:
                return
            now = self.clock()
            pending = self.tracker.version != self._drawn_version
            if pending or now - self._last_draw >= IDLE_INTERVAL:
                self._draw(now)
            self._schedule()

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()


# -- text shared by the renderers --------------------------------------------------------------
def format_duration(seconds: float | None) -> str:
    """Seconds as ``M:SS`` or ``H:MM:SS`` (``?`` when unknown).

    Example:
        >>> format_duration(5), format_duration(754.6), format_duration(3725), format_duration(None)
        ('0:05', '12:35', '1:02:05', '?')
    """
    if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "?"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_count(n: int) -> str:
    """An integer with thousands separators.

    Example:
        >>> format_count(1234567)
        '1,234,567'
    """
    return f"{n:,}"


def format_rate(rate: float, unit: str = "items") -> str:
    """A rate per second, with one decimal below 10.

    Example:
        >>> format_rate(812.4), format_rate(2.345)
        ('812 items/s', '2.3 items/s')
    """
    return f"{rate:,.0f} {unit}/s" if rate >= 10 else f"{rate:.1f} {unit}/s"


def describe_entry(p: EntryProgress) -> str:
    """One line of text for an entry, as the widgets show it next to the bar.

    Example:
        >>> p = EntryProgress("u#c", "c", items=1234, total=5000, retries=3, chunks_failed=1)
        >>> p.started, p.finished = 0.0, 5.0
        >>> describe_entry(p)
        '1,234 / 5,000 items · 247 items/s · 0:05 elapsed · 3 retries · 1 failed'
    """
    if p.total is not None:
        parts = [f"{format_count(p.items)} / {format_count(p.total)} items"]
    else:
        parts = [f"{format_count(p.items)} items"]
        if p.chunks_planned:
            parts.append(
                f"{format_count(p.chunks_done + p.chunks_failed)} / "
                f"{format_count(p.chunks_planned)} chunks"
            )
    parts.append(format_rate(p.rate))
    parts.append(f"{format_duration(p.elapsed)} elapsed")
    if p.finished is None and p.eta is not None:
        parts.append(f"ETA {format_duration(p.eta)}")
    if p.retries:
        parts.append(f"{format_count(p.retries)} {'retry' if p.retries == 1 else 'retries'}")
    if p.chunks_failed:
        parts.append(f"{format_count(p.chunks_failed)} failed")
    if p.error:
        parts.append(f"error: {p.error}")
    elif p.status == "done":
        parts.append("done")
    return " · ".join(parts)


def bar_position(p: EntryProgress) -> tuple[int, int, str]:
    """``(value, max, unit)`` of an entry's bar: items vs total, else chunks done vs planned.

    Server totals can be estimates: the maximum grows with the items seen, and once an
    entry is done (without failures) its item count becomes the total: a full bar. ``max``
    is 0 only for an entry that is done with no items at all.

    Example:
        >>> bar_position(EntryProgress("u#c", "c", items=40, total=100))
        (40, 100, 'items')
        >>> bar_position(EntryProgress("u#c", "c", items=40, total=100, finished=1.0))
        (40, 40, 'items')
        >>> bar_position(EntryProgress("u#c", "c", chunks_planned=8, chunks_done=2))
        (2, 8, 'chunks')
    """
    if p.total is not None:
        if p.status == "done":
            return p.items, p.items, "items"
        return p.items, max(p.total, p.items, 1), "items"
    seen = p.chunks_done + p.chunks_failed
    high = max(p.chunks_planned, seen, 1)
    return (high if p.status == "done" else seen), high, "chunks"
