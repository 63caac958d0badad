"""Terminal front end: one tqdm bar per entry, and a plain-text summary for the CLI.

tqdm is imported lazily, when a :class:`TerminalProgress` is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

from .._model.events import FailureRecord
from .._model.progress import EntryProgress, ProgressTracker
from .base import (
    DEFAULT_MIN_INTERVAL,
    ThrottledRenderer,
    bar_position,
    format_count,
    format_duration,
    format_rate,
)
from .timeline import timeline_text

if TYPE_CHECKING:
    from .._model.failures import FailureCollector

__all__ = ["TerminalProgress", "format_summary"]

_COLOURS = {"done": "green", "failed": "red"}


class TerminalProgress(ThrottledRenderer):
    """tqdm bars, one per entry (``leave=True``: they stay on screen after the run).

    A bar counts items against the total when the server reported one, else chunks done
    against chunks planned; the postfix carries items, retries and failed chunks. At the
    end a bar turns green (done) or red (failed chunks). Output goes to ``file``
    (``sys.stderr`` by default).

    Example:
        >>> import io
        >>> from stacfetch._model.events import EntryStarted, EntryPlanned, PageFetched, EntryDone
        >>> out = io.StringIO()
        >>> bars = TerminalProgress(file=out, ncols=80)
        >>> bars.emit(EntryStarted("u#c", "landsat"))
        >>> bars.emit(EntryPlanned("u#c", chunks=2, total=300))
        >>> bars.emit(PageFetched("u#c", "k", new=300, duplicates=0))
        >>> bars.emit(EntryDone("u#c", items=300, failed_chunks=0))
        >>> bars.close()
        >>> "300/300" in out.getvalue()
        True
    """

    def __init__(
        self,
        *,
        file: IO[str] | None = None,
        ncols: int | None = None,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(min_interval=min_interval, clock=clock)
        from tqdm.std import tqdm

        self._tqdm = tqdm
        self.file = file
        self.ncols = ncols
        self.bars: dict[str, Any] = {}

    def _redraw(self) -> None:
        for p in self.tracker.entries.values():
            value, high, unit = bar_position(p)
            postfix = _postfix(p, unit)
            bar = self.bars.get(p.entry_key)
            if bar is None:  # tqdm draws on creation: create it with the right numbers
                self.bars[p.entry_key] = bar = self._tqdm(
                    total=high,
                    desc=p.label,
                    unit=unit,
                    postfix=postfix or None,
                    position=len(self.bars),
                    leave=True,
                    file=self.file,
                    ncols=self.ncols,
                    mininterval=0,  # this renderer throttles; tqdm draws when asked
                    smoothing=0,  # average rate: n is set directly, not through update()
                    dynamic_ncols=self.ncols is None and self.file is None,
                )
            bar.desc = p.label
            bar.unit = unit
            bar.total = high
            bar.n = value
            bar.set_postfix_str(postfix, refresh=False)
            colour = _COLOURS.get("failed" if p.chunks_failed or p.error else p.status)
            if colour is not None and p.finished is not None and hasattr(bar, "colour"):
                bar.colour = colour
            bar.refresh()

    def _finish(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _postfix(p: EntryProgress, unit: str) -> str:
    parts = []
    if unit != "items":
        parts.append(f"{format_count(p.items)} items")
    if p.retries:
        parts.append(f"{format_count(p.retries)} {'retry' if p.retries == 1 else 'retries'}")
    if p.chunks_failed:
        parts.append(f"{format_count(p.chunks_failed)} failed")
    if p.error:
        parts.append(f"error: {p.error}")
    return ", ".join(parts)


def _table(rows: Sequence[Sequence[str]], right: Iterable[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = set(right)
    return [
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def format_summary(tracker: ProgressTracker, failures: FailureCollector | None = None) -> str:
    """A plain-text summary of a run, for the CLI: one line per entry, then the failures.

    Per entry: items, duplicates dropped, chunks, retries, failed chunks, elapsed time,
    items per second and status. Failed chunks are listed from ``failures`` when given,
    else from the failures the tracker saw. Last, one timeline line per entry whose chunk
    intervals are known (``#`` done, ``>`` running, ``.`` pending, ``x`` failed).

    Example:
        >>> from stacfetch._model.events import EntryStarted, EntryPlanned, PageFetched, ChunkDone
        >>> t = ProgressTracker()
        >>> t.emit(EntryStarted("u#c", "landsat"))
        >>> t.emit(EntryPlanned("u#c", chunks=1, total=None))
        >>> t.emit(PageFetched("u#c", "k", new=1200, duplicates=3))
        >>> t.emit(ChunkDone("u#c", "k", items=1200))
        >>> lines = format_summary(t).splitlines()
        >>> lines[1].split()[:4]
        ['entry', 'items', 'duplicates', 'chunks']
        >>> lines[2].split()[:6], lines[2].split()[-1]
        (['landsat', '1,200', '3', '1', '/', '1'], 'running')
    """
    entries = list(tracker.entries.values())
    records: list[FailureRecord] = list(failures) if failures is not None else tracker.failures
    items = sum(p.items for p in entries)
    failed = sum(p.chunks_failed for p in entries)
    started = min((p.started for p in entries), default=None)
    ends = [p.finished for p in entries if p.finished is not None]
    end = max(ends) if ends and len(ends) == len(entries) else time.monotonic()
    elapsed = end - started if started is not None else 0.0
    head = [
        f"{format_count(len(entries))} {'entry' if len(entries) == 1 else 'entries'}",
        f"{format_count(items)} items",
        format_duration(elapsed),
    ]
    if elapsed > 0:
        head.append(format_rate(items / elapsed))
    if failed:
        head.append(f"{format_count(failed)} failed {'chunk' if failed == 1 else 'chunks'}")
    lines = ["stacfetch: " + " · ".join(head)]
    if entries:
        rows: list[tuple[str, ...]] = [
            (
                "entry",
                "items",
                "duplicates",
                "chunks",
                "retries",
                "failed",
                "elapsed",
                "items/s",
                "status",
            )
        ]
        for p in entries:
            rows.append(
                (
                    p.label,
                    format_count(p.items),
                    format_count(p.duplicates),
                    f"{format_count(p.chunks_done + p.chunks_failed)} / "
                    f"{format_count(p.chunks_planned)}",
                    format_count(p.retries),
                    format_count(p.chunks_failed),
                    format_duration(p.elapsed),
                    f"{p.rate:,.0f}" if p.rate >= 10 else f"{p.rate:.1f}",
                    p.status,
                )
            )
        lines += _table(rows, right=range(1, 8))
        lines += [f"  {p.label}: error: {p.error}" for p in entries if p.error]
    if records:
        noun = "chunk" if len(records) == 1 else "chunks"
        lines.append(f"failed {noun} ({format_count(len(records))}):")
        lines += _table(
            [
                (
                    r.collection_id or r.entry_key,
                    r.interval or "(whole search)",
                    "-" if r.status_code is None else str(r.status_code),
                    f"{r.error_type}: {r.message}",
                    f"{r.attempts} attempts",
                    f"{format_count(r.items_delivered)} items delivered",
                )
                for r in records
            ],
            right=(),
        )
    timelines = [(p.label, timeline_text(p)) for p in entries]
    lines += [f"  {label} timeline: {line}" for label, line in timelines if line]
    return "\n".join(lines)
