"""The live failure table of a notebook: failed chunks, and a "Retry failed" button.

The table itself is :func:`stacfetch._model.failures.failure_table_html` (the same rendering
as a :class:`~stacfetch.FailureCollector` shown in a cell); this module wraps it in ipywidgets,
follows a run's events and runs the retry. ipywidgets is imported lazily, when a widget is built.

DOM classes, for browser tests: the viewer ``stacfetch-failure-viewer``, the table
``stacfetch-failures`` (its interval cells ``td.stacfetch-failure-interval[data-interval]``),
the button ``stacfetch-retry``, its outcome ``stacfetch-retry-status``, what the retry
displays ``stacfetch-retry-output``.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._model.events import ChunkFailed, Event, FailureRecord, RunDone
from .._model.failures import MAX_ROWS, failure_table_html
from .base import format_count

if TYPE_CHECKING:
    from .._model.failures import FailureCollector

__all__ = ["FailureTableWidget"]

logger = logging.getLogger("stacfetch")


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
