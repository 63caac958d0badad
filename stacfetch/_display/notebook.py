"""Jupyter front end: one ipywidgets bar per entry, and a live table of failed chunks.

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
failure table ``stacfetch-failures``, the button
``stacfetch-retry``, its outcome ``stacfetch-retry-status``.
"""

from __future__ import annotations

import asyncio
import contextvars
import html
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._model.events import ChunkFailed, Event, FailureRecord, RunDone
from .._model.progress import EntryProgress
from .auto import (
    DEFAULT_MIN_INTERVAL,
    ThrottledRenderer,
    bar_position,
    describe_entry,
    format_count,
    format_duration,
)
from .timeline import timeline_html

if TYPE_CHECKING:
    from .._model.failures import FailureCollector

__all__ = ["FailureTableWidget", "NotebookProgress", "failure_table_html"]

logger = logging.getLogger("stacfetch")

MAX_ROWS = 50
"""Rows shown by the failure table; the rest are counted (``to_dataframe()`` has them all)."""

_COLUMNS = ("entry", "interval", "status", "error", "attempts", "items delivered")
_STYLE_BY_STATUS = {"running": "info", "done": "success", "failed": "danger"}
_STATUS_CLASSES = (
    "stacfetch-running",
    "stacfetch-done",
    "stacfetch-failed",
    "stacfetch-interrupted",
)


def failure_table_html(records: Iterable[FailureRecord], *, max_rows: int = MAX_ROWS) -> str:
    """An HTML table of failed chunks: entry, interval, status, error, attempts, items.

    Example:
        >>> from stacfetch._model.events import FailureRecord
        >>> r = FailureRecord(entry_key="u#c", catalog_url="u", collection_id="c",
        ...     chunk_id="ab", interval="2024-01-01/2024-02-01", filters={}, method="POST",
        ...     url="u/search", body={}, status_code=503, error_type="HTTPStatusError",
        ...     message="503 <Service Unavailable>", attempts=4, first_time=0.0,
        ...     last_time=1.0, items_delivered=10)
        >>> out = failure_table_html([r])
        >>> out.count("<tr>"), "&lt;Service Unavailable&gt;" in out
        (2, True)
    """
    records = list(records)
    if not records:
        return "<div class='stacfetch-failures-empty'>No failed chunks.</div>"
    cell = "padding:2px 8px;text-align:left;vertical-align:top"
    head = "".join(f"<th style='{cell}'>{name}</th>" for name in _COLUMNS)
    rows = []
    for r in records[:max_rows]:
        error = f"{r.error_type}: {r.message}"
        short = error if len(error) <= 160 else error[:159] + "…"
        cells = (
            html.escape(r.collection_id or r.entry_key),
            html.escape(r.interval or "(whole search)"),
            "" if r.status_code is None else str(r.status_code),
            f"<span title='{html.escape(error, quote=True)}'>{html.escape(short)}</span>",
            str(r.attempts),
            format_count(r.items_delivered),
        )
        tds = [f"<td style='{cell}'>{c}</td>" for c in cells]
        # what the timeline's red segments carry, for tests and for users' own tooling
        tds[1] = (
            f"<td style='{cell}' class='stacfetch-failure-interval' "
            f"data-entry='{html.escape(r.entry_key, quote=True)}' "
            f"data-chunk='{html.escape(r.chunk_id, quote=True)}' "
            f"data-interval='{html.escape(r.interval or '', quote=True)}'>{cells[1]}</td>"
        )
        rows.append("<tr>" + "".join(tds) + "</tr>")
    more = len(records) - max_rows
    tail = (
        f"<div>… and {format_count(more)} more; <code>ing.failures.to_dataframe()</code> "
        "lists them all.</div>"
        if more > 0
        else ""
    )
    noun = "chunk" if len(records) == 1 else "chunks"
    return (
        f"<div><b>{format_count(len(records))} failed {noun}</b></div>"
        "<table class='stacfetch-failure-table' style='border-collapse:collapse;"
        f"font-size:90%'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        f"</table>{tail}"
    )


class FailureTableWidget:
    """A live table of failed chunks with a "Retry failed" button.

    Shows the records of ``failures`` (the run's collector) plus those seen in
    :class:`~stacfetch._model.events.ChunkFailed` events and not yet in the collector. The button
    calls ``on_retry`` (e.g. ``ing.retry_failed``); it is disabled while a retry runs, while
    the run is still going, without ``on_retry``, and when nothing failed. Output printed or
    displayed by ``on_retry`` (the retry's own progress bars) appears below the button. If
    ``on_retry`` returns an awaitable it is scheduled on the running event loop (the kernel
    stays free meanwhile). ``on_retry`` must block until the retry is over or return an
    awaitable: one that starts a thread and returns at once gets its outcome reported too
    early, and what that thread displays lands in no cell.

    Display it with ``display(table)`` or as the last expression of a cell.

    Example:
        >>> from stacfetch._model.failures import FailureCollector
        >>> calls = []
        >>> table = FailureTableWidget(FailureCollector(), on_retry=lambda: calls.append(1))
        >>> table.button.disabled  # nothing failed, nothing to retry
        True
    """

    def __init__(
        self,
        failures: FailureCollector | None = None,
        on_retry: Callable[[], object] | None = None,
        *,
        max_rows: int = MAX_ROWS,
        running: bool = False,
    ) -> None:
        import ipywidgets as widgets

        self.failures = failures
        self.on_retry = on_retry
        self.max_rows = max_rows
        self.running = running
        self.retrying = False
        self.retries_started = 0
        self._pending: list[FailureRecord] = []
        self._lock = threading.RLock()
        self._task: asyncio.Task[Any] | None = None

        self.table = widgets.HTML()
        self.table.add_class("stacfetch-failures")
        self.button = widgets.Button(description="Retry failed", icon="redo")
        self.button.add_class("stacfetch-retry")
        self.button.on_click(lambda _button: self.retry())
        self.status = widgets.HTML()
        self.status.add_class("stacfetch-retry-status")
        self.output = widgets.Output()
        self.output.add_class("stacfetch-retry-output")
        controls = widgets.HBox([self.button, self.status])
        self.widget = widgets.VBox([self.table, controls, self.output])
        self.widget.add_class("stacfetch-failure-viewer")
        self.refresh()

    # -- data -------------------------------------------------------------------------------
    @property
    def records(self) -> list[FailureRecord]:
        """The records shown: the collector's, then event records it does not hold (yet)."""
        with self._lock:
            known = list(self.failures) if self.failures is not None else []
            keys = {(r.entry_key, r.chunk_id) for r in known}
            # once the collector holds a record, it is the source of truth (a retry may drop it)
            self._pending = [r for r in self._pending if (r.entry_key, r.chunk_id) not in keys]
            return known + self._pending

    def add_record(self, record: FailureRecord) -> None:
        """Remember a record seen in an event (no redraw; call :meth:`refresh`)."""
        with self._lock:
            self._pending.append(record)

    def emit(self, event: Event) -> None:
        """Follow a run live: :class:`ChunkFailed` adds a row, :class:`RunDone` ends the run."""
        if isinstance(event, ChunkFailed):
            self.add_record(event.record)
            self.refresh()
        elif isinstance(event, RunDone):
            self.set_running(False)

    def set_running(self, running: bool) -> None:
        """Tell the table whether a run is in progress (the button waits for its end)."""
        if running != self.running:
            self.running = running
            self.refresh()

    # -- drawing ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw the table and the button from the current records."""
        with self._lock:
            records = self.records
            self.table.value = failure_table_html(records, max_rows=self.max_rows)
            self.button.disabled = (
                self.on_retry is None or self.retrying or self.running or not records
            )
            if self.on_retry is None:
                self.button.tooltip = "No retry available here"
            elif self.running:
                self.button.tooltip = "Available when the run finishes"
            else:
                self.button.tooltip = "Fetch the failed chunks again"

    def _set_status(self, text: str, colour: str | None = None) -> None:
        style = f" style='color:{colour}'" if colour else ""
        self.status.value = f"<span{style}>{html.escape(text)}</span>"

    # -- retry ------------------------------------------------------------------------------
    def retry(self) -> None:
        """What the button does: call ``on_retry`` once, then show the outcome."""
        with self._lock:
            if not self.records:  # another table or retry_failed() fixed them meanwhile
                self.refresh()
                self._set_status("Nothing to retry: no failed chunks left.")
                return
            if self.on_retry is None or self.retrying or self.running:
                return
            self.retrying = True
            self.retries_started += 1
            count = len(self.records)
            self.refresh()
        noun = "chunk" if count == 1 else "chunks"
        self._set_status(f"Retrying {format_count(count)} failed {noun}…")
        self.output.clear_output()
        error: BaseException | None = None
        result: object = None
        with self.output:
            try:
                result = self.on_retry()
            except Exception as exc:
                error = exc
                logger.warning("stacfetch: retry failed", exc_info=True)
        if error is None and inspect.isawaitable(result):
            self._await(result)
            return
        self._retry_done(error)

    def _await(self, awaitable: Awaitable[object]) -> None:
        async def wait() -> object:
            with self.output:  # what the retry displays (its own bars) lands under the button
                return await awaitable

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                asyncio.run(wait())
            except Exception as exc:
                self._retry_done(exc)
            else:
                self._retry_done(None)
            return
        self._task = loop.create_task(wait())
        self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._task = None
        if task.cancelled():
            self._retry_done(asyncio.CancelledError("retry cancelled"))
        else:
            self._retry_done(task.exception())

    def _retry_done(self, error: BaseException | None) -> None:
        with self._lock:
            self.retrying = False
            left = len(self.records)
            self.refresh()
        if error is not None:
            self._set_status(f"Retry failed: {type(error).__name__}: {error}", "#c62828")
        elif left:
            noun = "chunk is" if left == 1 else "chunks are"
            self._set_status(
                f"Retry finished: {format_count(left)} {noun} still failing.", "#c62828"
            )
        else:
            self._set_status("Retry finished: every failed chunk was fetched.", "#2e7d32")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


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
