"""What a run did, in numbers a reader can check: :class:`RunSummary` (``Ingestor.summary``).

Built from a :class:`~stacfetch._model.events.ProgressTracker` (and the run's failures), so it
knows what the events told: items per entry, duplicates dropped, requests sent, retries,
failed chunks and time. Shown as text (``print(ing.summary)``) and as HTML in Jupyter.
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections.abc import Iterable

from .._model.events import FailureRecord
from .._model.progress import EntryProgress, ProgressTracker
from .timeline import timeline_text

__all__ = ["EntrySummary", "RunSummary"]


def _duration(seconds: float) -> str:
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclasses.dataclass(frozen=True)
class EntrySummary:
    """One entry's numbers.

    ``requests`` counts the search requests the events account for: one per page received,
    one per retried attempt, and the last attempt of each failed chunk (count probes are not
    included).

    Example:
        >>> EntrySummary("c", 10, 1, 2, 2, 0, 0, 3, 1.5, "done", "").items
        10
    """

    label: str
    items: int
    duplicates: int
    chunks: int
    chunks_done: int
    chunks_failed: int
    retries: int
    requests: int
    seconds: float
    status: str
    timeline: str
    error: str | None = None

    @classmethod
    def of(cls, p: EntryProgress) -> EntrySummary:
        """The summary of one tracked entry."""
        return cls(
            label=p.label,
            items=p.items,
            duplicates=p.duplicates,
            chunks=max(p.chunks_planned, p.chunks_done + p.chunks_failed),
            chunks_done=p.chunks_done,
            # failed for good: a chunk retried since then is not (the counter keeps them)
            chunks_failed=(
                sum(c.state == "failed" for c in p.chunks.values()) if p.chunks else p.chunks_failed
            ),
            retries=p.retries,
            requests=p.pages + p.retries + p.chunks_failed,
            seconds=p.elapsed,
            status=p.status,
            timeline=timeline_text(p),
            error=p.error,
        )


_HEAD = ("entry", "items", "duplicates", "chunks", "failed", "requests", "retries", "time")


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """A run's result in numbers: per entry and in total, as text and as an HTML table.

    Example:
        >>> from stacfetch._model.events import EntryStarted, PageFetched, ChunkDone, EntryDone
        >>> t = ProgressTracker()
        >>> for e in (EntryStarted("u#c", "landsat"), PageFetched("u#c", "k", 1200, 3),
        ...           ChunkDone("u#c", "k", 1200), EntryDone("u#c", 1200, 0)):
        ...     t.emit(e)
        >>> s = RunSummary.of(t)
        >>> s.items, s.duplicates, s.requests, s.state
        (1200, 3, 1, 'done')
        >>> str(s).splitlines()[0].split(" · ")[1:4]
        ['1,200 items', '3 duplicates dropped', '1 request']
    """

    entries: tuple[EntrySummary, ...]
    seconds: float
    failures: tuple[FailureRecord, ...] | None = None
    """The failed chunks left (the run's collector), or ``None``: count those the events told."""

    @classmethod
    def of(
        cls, tracker: ProgressTracker, failures: Iterable[FailureRecord] | None = None
    ) -> RunSummary:
        """The summary of what ``tracker`` saw (``failures``: the run's collector, if any)."""
        entries = list(tracker.entries.values())
        started = min((p.started for p in entries), default=None)
        ends = [p.finished for p in entries if p.finished is not None]
        end = max(ends) if ends and len(ends) == len(entries) else time.monotonic()
        records = tuple(failures) if failures is not None else None
        return cls(
            tuple(EntrySummary.of(p) for p in entries),
            end - started if started is not None else 0.0,
            records,
        )

    # -- totals -------------------------------------------------------------------------------
    @property
    def items(self) -> int:
        """Items kept, all entries together."""
        return sum(e.items for e in self.entries)

    @property
    def duplicates(self) -> int:
        """Items dropped by exactly-once dedup."""
        return sum(e.duplicates for e in self.entries)

    @property
    def requests(self) -> int:
        """Search requests sent (see :class:`EntrySummary`)."""
        return sum(e.requests for e in self.entries)

    @property
    def retries(self) -> int:
        """Requests retried."""
        return sum(e.retries for e in self.entries)

    @property
    def failed_chunks(self) -> int:
        """Chunks that failed for good (``ing.failures`` after the run)."""
        if self.failures is not None:
            return len(self.failures)
        return sum(e.chunks_failed for e in self.entries)

    @property
    def state(self) -> str:
        """``not started``, ``running``, ``done`` or ``failed`` (some chunk or entry failed)."""
        if not self.entries:
            return "not started"
        if any(e.status == "running" for e in self.entries):
            return "running"
        failed = self.failed_chunks or any(e.error for e in self.entries)
        return "failed" if failed else "done"

    # -- text ---------------------------------------------------------------------------------
    def _headline(self) -> str:
        n = len(self.entries)
        parts = [
            f"{n} {'entry' if n == 1 else 'entries'}",
            f"{self.items:,} items",
            f"{self.duplicates:,} duplicates dropped",
            f"{self.requests:,} request{'' if self.requests == 1 else 's'}",
            f"{self.retries:,} {'retry' if self.retries == 1 else 'retries'}",
            _duration(self.seconds),
        ]
        if self.failed_chunks:
            parts.append(
                f"{self.failed_chunks:,} failed chunk{'s' if self.failed_chunks > 1 else ''}"
            )
        parts.append(self.state)
        return "stacfetch: " + " · ".join(parts)

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                e.label,
                f"{e.items:,}",
                f"{e.duplicates:,}",
                f"{e.chunks_done + e.chunks_failed:,} / {e.chunks:,}",
                f"{e.chunks_failed:,}",
                f"{e.requests:,}",
                f"{e.retries:,}",
                _duration(e.seconds),
            )
            for e in self.entries
        ]

    def __str__(self) -> str:
        lines = [self._headline()]
        rows = [_HEAD, *self._rows()]
        if len(rows) > 1:
            widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
            for r in rows:
                cells = [r[0].ljust(widths[0])] + [
                    c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
                ]
                lines.append("  " + "  ".join(cells).rstrip())
        for e in self.entries:
            if e.timeline:
                lines.append(f"  {e.label} timeline: {e.timeline}")
        if not self.items and self.state == "done":
            lines.append("  the search matched no items")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<RunSummary {self._headline().removeprefix('stacfetch: ')}>"

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='padding:2px 8px'>{h}</th>" for h in _HEAD)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td style='padding:2px 8px;text-align:{'left' if i == 0 else 'right'}'>"
                f"{html.escape(c)}</td>"
                for i, c in enumerate(row)
            )
            + "</tr>"
            for row in self._rows()
        )
        note = (
            "<div>The search matched no items.</div>"
            if not self.items and self.state == "done"
            else ""
        )
        return (
            f"<div class='stacfetch-summary'><div><b>{html.escape(self._headline())}</b></div>"
            f"<table style='border-collapse:collapse;font-size:90%'><thead><tr>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table>{note}</div>"
        )
