"""Jupyter front end: one ipywidgets bar per entry, and a live table of failed chunks.

The table is a :class:`~stacfetch._display.failure_table.FailureTableWidget` (re-exported
here), shown under the bars once a chunk fails.

ipywidgets and IPython are imported lazily, when a widget is built: importing this module
costs nothing in scripts.

Widget updates from a worker thread. ``Ingestor.ingest()`` may run the engine in a worker
thread while the kernel thread waits; the renderer then sets widget traits from that thread.
Each change becomes a comm ``update`` message that ipykernel publishes on IOPub, and IOPub
sends are thread-safe since ipykernel 4.3 (they are handed to the kernel's IOPub thread).
Comm messages carry the kernel's current ``shell`` parent header: ipykernel 6 reads it from a
plain dict; ipykernel 7 from a context variable, unset in new threads. In 7.0.x that raised
``LookupError`` for every widget change made from a thread (ipywidgets#4001, ipykernel#1450);
7.1 falls back to the latest parent (ipykernel#1451). :class:`NotebookProgress` copies the
context of the cell that builds it and draws inside that copy, so its comm messages carry
that cell's parent from any thread, on every version. Measured in a real kernel, engine in a
worker thread while the cell waits on ``join()``: ipykernel 6.29.5, 7.0.1 and 7.4.0 all
stream the updates live (~10 redraws/s), parented to the cell. *New output*
(``display``/``print``) is routed by parent too, which is why the widgets are displayed once,
on the calling thread, when the renderer is built.

DOM classes, for browser tests: the container ``stacfetch-progress`` (plus
``stacfetch-complete`` at the end), each entry row ``stacfetch-entry`` (plus
``stacfetch-running`` / ``stacfetch-done`` / ``stacfetch-failed`` /
``stacfetch-interrupted``), the bar ``stacfetch-bar`` (its description is the entry label),
the text ``stacfetch-text``, the chunk timeline ``stacfetch-timeline`` (its segments
``rect.stacfetch-seg[data-state][data-interval]``, see :mod:`stacfetch._display.timeline`), the
failure viewer ``stacfetch-failure-viewer`` (its classes: :mod:`stacfetch._display.failure_table`).
"""

from __future__ import annotations

import contextvars
import html
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._model.events import ChunkFailed, Event
from .._model.progress import EntryProgress
from .base import (
    DEFAULT_MIN_INTERVAL,
    ThrottledRenderer,
    bar_position,
    describe_entry,
    format_count,
    format_duration,
)
from .failure_table import FailureTableWidget  # also re-exported: its historical home
from .timeline import timeline_html

if TYPE_CHECKING:
    from .._model.failures import FailureCollector

__all__ = ["FailureTableWidget", "NotebookProgress", "timeline_interval"]

_STYLE_BY_STATUS = {"running": "info", "done": "success", "failed": "danger"}
_STATUS_CLASSES = (
    "stacfetch-running",
    "stacfetch-done",
    "stacfetch-failed",
    "stacfetch-interrupted",
)


def timeline_interval(chunks: int) -> float:
    """Seconds between two timeline redraws of an entry with ``chunks`` chunks: like the bars
    (0.1 s) up to 200 chunks, then proportionally longer (1 s for 2,000 chunks).

    Example:
        >>> timeline_interval(10), timeline_interval(2000)
        (0.1, 1.0)
    """
    return DEFAULT_MIN_INTERVAL * max(1.0, chunks / 200)


class _Row:
    """The widgets of one entry: a bar (described by the label) and a line of text."""

    def __init__(self, widgets: Any, p: EntryProgress) -> None:
        self.bar = widgets.IntProgress(
            value=0,
            min=0,
            max=1,
            description=p.label,
            bar_style="info",
            tooltip=p.entry_key,
            layout=widgets.Layout(width="55%", min_width="280px"),
        )
        self.bar.add_class("stacfetch-bar")
        self.text = widgets.HTML(layout=widgets.Layout(flex="1 1 auto", margin="0 0 0 8px"))
        self.text.add_class("stacfetch-text")
        self.timeline = widgets.HTML(layout=widgets.Layout(margin="0 0 4px 0"))
        self.timeline.add_class("stacfetch-timeline-box")
        self.line = widgets.HBox([self.bar, self.text])
        self.box = widgets.VBox([self.line, self.timeline])
        self.box.add_class("stacfetch-entry")
        self.status = ""
        self._chunks_version = -1
        self._timeline_due = float("-inf")

    def draw(
        self,
        p: EntryProgress,
        *,
        interrupted: bool,
        label_width: str,
        now: float | None = None,
        final: bool = False,
    ) -> None:
        value, high, unit = bar_position(p)
        if high == 0:  # done, with no items: a full bar
            value = high = 1
        status = "interrupted" if interrupted else p.status
        if p.chunks_failed or p.error:
            style = "danger"
        else:
            style = "warning" if interrupted else _STYLE_BY_STATUS.get(status, "info")
        text = describe_entry(p)
        if interrupted:
            text += " · interrupted"
        with self.bar.hold_sync():
            self.bar.description = p.label
            self.bar.max = high  # max first: value is clipped to [min, max]
            self.bar.value = value
            self.bar.bar_style = style
            self.bar.style.description_width = label_width
            self.bar.tooltip = f"{p.entry_key} ({unit})"
        self.text.value = f"<span>{html.escape(text)}</span>"
        now = time.monotonic() if now is None else now
        final = final or interrupted or p.finished is not None
        # the SVG only when a chunk changed, and less often for many chunks (its size grows
        # with them: ~300 bytes a segment), always at the end
        if p.chunks_version != self._chunks_version and (final or now >= self._timeline_due):
            self._chunks_version = p.chunks_version
            self._timeline_due = now + timeline_interval(len(p.chunks))
            self.timeline.value = timeline_html(p)
        if status != self.status:
            for cls in _STATUS_CLASSES:
                self.box.remove_class(cls)
            self.box.add_class(f"stacfetch-{status}")
            self.status = status


class NotebookProgress(ThrottledRenderer):
    """Live ipywidgets progress: one row per entry, a summary line, and the failure table.

    Each row is a bar (items vs the best known total, else chunks done vs planned; blue while
    running, green when done, red once a chunk failed) and a line such as
    ``1,234 / 5,000 items · 812 items/s · 0:05 elapsed · ETA 0:12 · 3 retries · 1 failed``.
    The failure table appears with the first failed chunk; its "Retry failed" button
    calls ``on_retry`` once the run is over. Everything stays visible after :meth:`close`.

    Build it on the kernel thread: with ``display=True`` it displays itself at once.

    Example:
        >>> from stacfetch._model.events import EntryStarted, EntryPlanned, PageFetched
        >>> progress = NotebookProgress(display=False)
        >>> progress.emit(EntryStarted("u#c", "sentinel-2-l2a"))
        >>> progress.emit(EntryPlanned("u#c", chunks=4, total=5000))
        >>> progress.emit(PageFetched("u#c", "k", new=1234, duplicates=0))
        >>> progress.close()
        >>> row = progress.rows["u#c"]
        >>> row.bar.value, row.bar.max, row.bar.description
        (1234, 5000, 'sentinel-2-l2a')
    """

    def __init__(
        self,
        *,
        on_retry: Callable[[], object] | None = None,
        failures: FailureCollector | None = None,
        display: bool = True,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(min_interval=min_interval, clock=clock)
        import ipywidgets as widgets

        self._widgets = widgets
        self.rows: dict[str, _Row] = {}
        self.header = widgets.HTML()
        self.header.add_class("stacfetch-header")
        self.entries = widgets.VBox([])
        self.entries.add_class("stacfetch-entries")
        self.failure_table = FailureTableWidget(failures, on_retry, running=True)
        self.failure_table.widget.layout.display = "none"
        self.widget = widgets.VBox([self.header, self.entries, self.failure_table.widget])
        self.widget.add_class("stacfetch-progress")
        self._label_width = ""
        # the cell's context: ipykernel 7 keeps the parent request in a context variable
        self._context = contextvars.copy_context()
        self._header_text("starting…")
        if display:
            import IPython.display

            show: Callable[..., object] = IPython.display.display
            show(self.widget)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ChunkFailed):
            self.failure_table.add_record(event.record)

    def _header_text(self, state: str) -> None:
        self.header.value = f"<b>stacfetch</b> · {html.escape(state)}"

    def _redraw(self) -> None:
        # Draw in the context of the cell that built the renderer, whatever the thread: with
        # ipykernel 7.0.x a comm send from a thread without its own parent raised LookupError.
        self._context.run(self._draw_widgets)

    def _draw_widgets(self) -> None:
        entries = list(self.tracker.entries.values())
        new = [p for p in entries if p.entry_key not in self.rows]
        for p in new:
            self.rows[p.entry_key] = _Row(self._widgets, p)
        if new:
            self.entries.children = tuple(self.rows[p.entry_key].box for p in entries)
        longest = max((len(p.label) for p in entries), default=0)
        self._label_width = f"{min(longest, 40) + 2}ch"
        for p in entries:
            interrupted = self.closed and p.finished is None and not self.run_done
            self.rows[p.entry_key].draw(
                p,
                interrupted=interrupted,
                label_width=self._label_width,
                now=self.clock(),
                final=self.closed or self.run_done,
            )
        self._draw_header(entries)
        table = self.failure_table
        table.running = not (self.run_done or self.closed)
        table.refresh()
        table.widget.layout.display = None if table.records else "none"

    def _draw_header(self, entries: list[EntryProgress]) -> None:
        items = sum(p.items for p in entries)
        failed = sum(p.chunks_failed for p in entries)
        started = min((p.started for p in entries), default=None)
        ends = [p.finished for p in entries if p.finished is not None]
        end = max(ends) if ends and len(ends) == len(entries) else time.monotonic()
        parts = [
            f"{format_count(len(entries))} {'entry' if len(entries) == 1 else 'entries'}",
            f"{format_count(items)} items",
        ]
        if started is not None:
            parts.append(format_duration(end - started))
        if failed:
            parts.append(f"{format_count(failed)} failed {'chunk' if failed == 1 else 'chunks'}")
        if self.run_done:
            parts.append("done" if not failed else "finished with failures")
        elif self.closed:
            parts.append("stopped")
        self._header_text(" · ".join(parts))

    def _finish(self) -> None:
        self.failure_table.set_running(False)
        self.widget.add_class("stacfetch-complete")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
