"""Progress front ends: the chooser, the notebook widgets, the tqdm bars, the text summary."""

from __future__ import annotations

import asyncio
import io
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from stacfetch._display import auto, base
from stacfetch._display.auto import make_progress
from stacfetch._display.base import (
    ProgressRenderer,
    ThrottledRenderer,
    describe_entry,
    format_duration,
)
from stacfetch._display.failure_table import FailureTableWidget
from stacfetch._display.notebook import NotebookProgress
from stacfetch._display.terminal import TerminalProgress, format_summary
from stacfetch._model.errors import ConfigurationError
from stacfetch._model.events import (
    ChunkDone,
    ChunkFailed,
    ChunkSplit,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    Event,
    FailureRecord,
    PageFetched,
    Retrying,
    RunDone,
)
from stacfetch._model.failures import FailureCollector
from stacfetch._model.progress import ProgressTracker

S2 = "https://stac.example#sentinel-2-l2a"
LS = "https://stac.example#landsat"
INTERVAL = "2020-01-01T00:00:00Z/2020-02-01T00:00:00Z"


def failure(entry_key: str = LS, chunk_id: str = "ls-2") -> FailureRecord:
    return FailureRecord(
        entry_key=entry_key,
        catalog_url="https://stac.example",
        collection_id=entry_key.rsplit("#", 1)[-1],
        chunk_id=chunk_id,
        interval=INTERVAL,
        filters={},
        method="POST",
        url="https://stac.example/search",
        body={},
        status_code=503,
        error_type="HTTPStatusError",
        message="Service <Unavailable>",
        attempts=4,
        first_time=0.0,
        last_time=1.0,
        items_delivered=10,
    )


def start_events() -> list[Event]:
    """Both entries started and planned; sentinel has a total, landsat does not."""
    return [
        EntryStarted(S2, "sentinel-2-l2a"),
        EntryStarted(LS, "landsat"),
        EntryPlanned(S2, chunks=2, total=5000),
        EntryPlanned(LS, chunks=2, total=None),
        PageFetched(S2, "s2-1", new=1234, duplicates=2),
        PageFetched(LS, "ls-1", new=300, duplicates=0),
        Retrying(LS, "ls-2", attempt=1, status_code=503, error="503", delay=0.5),
    ]


def end_events() -> list[Event]:
    """Sentinel finishes cleanly; one landsat chunk fails for good."""
    return [
        ChunkSplit(LS, "ls-1", into=1),
        PageFetched(S2, "s2-1", new=2766, duplicates=0),
        ChunkDone(S2, "s2-1", items=4000),
        PageFetched(S2, "s2-2", new=1000, duplicates=5),
        ChunkDone(S2, "s2-2", items=1000),
        EntryDone(S2, items=5000, failed_chunks=0),
        Retrying(LS, "ls-2", attempt=2, status_code=503, error="503", delay=1.0),
        ChunkDone(LS, "ls-1", items=300),
        PageFetched(LS, "ls-3", new=20, duplicates=0),
        ChunkDone(LS, "ls-3", items=20),
        ChunkFailed(LS, failure()),
        EntryDone(LS, items=320, failed_chunks=1),
        RunDone(items=5320, failed_chunks=1),
    ]


def feed(renderer: Any, events: list[Event]) -> None:
    for event in events:
        renderer.emit(event)


class FakeClock:
    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def no_display(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Capture IPython.display.display instead of printing reprs to stdout."""
    import IPython.display

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_: shown.extend(objs))
    return shown


@pytest.fixture(autouse=True)
def no_leaked_bars() -> Iterator[None]:
    from tqdm.std import tqdm

    yield
    leaked = list(tqdm._instances)
    for bar in leaked:
        bar.close()
    assert not leaked, f"tqdm bars left open: {leaked}"


# -- text ---------------------------------------------------------------------------------------
def test_format_duration() -> None:
    assert format_duration(0) == "0:00"
    assert format_duration(59.6) == "1:00"
    assert format_duration(3600 + 62) == "1:01:02"
    assert format_duration(None) == "?"
    assert format_duration(float("nan")) == "?"


def test_describe_entry_running_with_total() -> None:
    tracker = ProgressTracker()
    feed(tracker, start_events())
    p = tracker.entries[S2]
    p.started -= 5  # five seconds in
    text = describe_entry(p)
    assert text.startswith("1,234 / 5,000 items · ")
    assert "0:05 elapsed" in text
    assert "ETA 0:15" in text  # 1234/5000 in 5 s: about 15 s left
    assert "retr" not in text
    assert "failed" not in text


def test_describe_entry_without_total_counts_chunks() -> None:
    tracker = ProgressTracker()
    feed(tracker, [*start_events(), *end_events()])
    text = describe_entry(tracker.entries[LS])
    assert text.startswith("320 items · 3 / 3 chunks · ")
    assert "2 retries" in text
    assert "1 failed" in text
    assert "ETA" not in text
    assert "done" not in text
    assert describe_entry(tracker.entries[S2]).endswith(" · done")


# -- the notebook renderer ----------------------------------------------------------------------
def test_notebook_rows_while_running() -> None:
    progress = NotebookProgress(display=False, min_interval=0)  # draw every event
    feed(progress, start_events())
    s2, ls = progress.rows[S2], progress.rows[LS]
    assert [row.box for row in progress.rows.values()] == list(progress.entries.children)
    assert (s2.bar.value, s2.bar.max) == (1234, 5000)
    assert (ls.bar.value, ls.bar.max) == (0, 2)  # no total: chunks done / planned
    assert s2.bar.description == "sentinel-2-l2a"
    assert ls.bar.description == "landsat"
    assert s2.bar.bar_style == ls.bar.bar_style == "info"
    assert "stacfetch-bar" in s2.bar._dom_classes
    assert {"stacfetch-entry", "stacfetch-running"} <= set(s2.box._dom_classes)
    assert "1,234 / 5,000 items" in s2.text.value
    assert "ETA" in s2.text.value
    assert "1 retry" in ls.text.value
    assert progress.failure_table.widget.layout.display == "none"  # nothing failed yet
    progress.close()


def test_notebook_final_state(no_display: list[object]) -> None:
    calls: list[int] = []
    progress = NotebookProgress(on_retry=lambda: calls.append(1))
    assert no_display == [progress.widget]  # displayed once, when built
    feed(progress, [*start_events(), *end_events()])
    progress.close()
    s2, ls = progress.rows[S2], progress.rows[LS]
    assert (s2.bar.value, s2.bar.max, s2.bar.bar_style) == (5000, 5000, "success")
    assert ls.bar.bar_style == "danger"
    assert "stacfetch-done" in s2.box._dom_classes
    assert "stacfetch-running" not in s2.box._dom_classes
    assert "stacfetch-failed" in ls.box._dom_classes
    assert "5,000 / 5,000 items" in s2.text.value
    assert s2.text.value.endswith("done</span>")
    assert "2 retries" in ls.text.value
    assert "1 failed" in ls.text.value
    assert {"stacfetch-progress", "stacfetch-complete"} <= set(progress.widget._dom_classes)
    assert "5,320 items" in progress.header.value
    assert "1 failed chunk" in progress.header.value


def test_notebook_bar_turns_red_on_first_failed_chunk() -> None:
    progress = NotebookProgress(display=False, min_interval=0, on_retry=lambda: None)
    feed(progress, [*start_events(), ChunkFailed(LS, failure())])
    assert progress.rows[LS].bar.bar_style == "danger"
    assert progress.rows[S2].bar.bar_style == "info"
    table = progress.failure_table
    assert table.widget.layout.display is None  # shown with the first failure
    assert "stacfetch-failures" in table.table._dom_classes
    assert INTERVAL in table.table.value
    assert "<td" in table.table.value
    assert "Service &lt;Unavailable&gt;" in table.table.value  # escaped
    assert table.button.disabled  # the run is still going
    progress.close()  # the run is over (interrupted here): a retry is possible
    assert not table.button.disabled


def test_retry_button_disabled_without_on_retry_or_failures() -> None:
    assert FailureTableWidget(FailureCollector(), on_retry=lambda: None).button.disabled
    collector = FailureCollector()
    collector.add(failure())
    assert FailureTableWidget(collector, on_retry=None).button.disabled
    table = FailureTableWidget(collector, on_retry=lambda: None)
    assert not table.button.disabled
    assert "stacfetch-retry" in table.button._dom_classes


def test_retry_button_calls_on_retry_and_shows_outcome() -> None:
    collector = FailureCollector()
    seen_disabled: list[bool] = []
    progress = NotebookProgress(display=False, failures=collector)

    def on_retry() -> None:
        seen_disabled.append(progress.failure_table.button.disabled)
        collector.clear()  # the retry fetched everything

    progress.failure_table.on_retry = on_retry
    feed(progress, start_events())
    record = failure()
    progress.emit(ChunkFailed(LS, record))
    collector.add(record)  # the engine also files it in the collector
    table = progress.failure_table
    assert len(table.records) == 1  # the same chunk, not twice
    table.button.click()  # during the run: nothing happens
    assert seen_disabled == []
    feed(progress, end_events()[-2:])  # EntryDone, RunDone
    assert not table.button.disabled
    table.button.click()
    assert seen_disabled == [True]  # disabled while the retry ran
    assert "every failed chunk was fetched" in table.status.value
    assert table.button.disabled  # nothing left to retry
    assert "no failed chunks" in table.table.value
    progress.close()


def test_retry_that_raises_reports_and_reenables() -> None:
    collector = FailureCollector()
    collector.add(failure())

    def boom() -> None:
        raise RuntimeError("server still down")

    table = FailureTableWidget(collector, on_retry=boom)
    table.button.click()
    assert "Retry failed: RuntimeError: server still down" in table.status.value
    assert not table.button.disabled
    assert not table.retrying
    assert table.retries_started == 1


def test_retry_leaving_failures_says_so() -> None:
    collector = FailureCollector()
    collector.add(failure(chunk_id="a"))
    collector.add(failure(chunk_id="b"))
    table = FailureTableWidget(collector, on_retry=lambda: collector.remove_chunks({"a"}))
    table.button.click()
    assert "1 chunk is still failing" in table.status.value
    assert table.table.value.count("<tr>") == 2  # header + the one left
    assert not table.button.disabled


async def test_async_on_retry_is_awaited() -> None:
    collector = FailureCollector()
    collector.add(failure())
    done = asyncio.Event()

    async def aretry() -> None:
        await asyncio.sleep(0)
        collector.clear()
        done.set()

    table = FailureTableWidget(collector, on_retry=aretry)
    table.button.click()
    assert table.retrying
    assert table.button.disabled
    await asyncio.wait_for(done.wait(), 1)
    await asyncio.sleep(0)  # let the done-callback run
    assert not table.retrying
    assert "every failed chunk was fetched" in table.status.value


def test_failure_table_follows_events_standalone() -> None:
    table = FailureTableWidget(running=True, on_retry=lambda: None)
    table.emit(ChunkFailed(LS, failure(chunk_id="x")))
    table.emit(ChunkFailed(LS, failure(chunk_id="y")))
    assert table.table.value.count("<tr>") == 3
    assert "2 failed chunks" in table.table.value
    assert table.button.disabled
    table.emit(RunDone(items=0, failed_chunks=2))
    assert not table.button.disabled


def test_failure_table_caps_rows() -> None:
    collector = FailureCollector()
    for i in range(7):
        collector.add(failure(chunk_id=str(i)))
    table = FailureTableWidget(collector, max_rows=5)
    assert table.table.value.count("<tr>") == 6
    assert "and 2 more" in table.table.value


def test_close_without_end_marks_entries_interrupted() -> None:
    progress = NotebookProgress(display=False)
    feed(progress, start_events())
    progress.close()
    row = progress.rows[S2]
    assert row.bar.bar_style == "warning"
    assert "stacfetch-interrupted" in row.box._dom_classes
    assert "interrupted" in row.text.value
    assert "stopped" in progress.header.value
    progress.close()  # idempotent


def test_entry_done_with_zero_items_shows_a_full_bar() -> None:
    progress = NotebookProgress(display=False)
    feed(progress, [EntryStarted(S2, "s2"), EntryPlanned(S2, chunks=1, total=0)])
    progress.emit(EntryDone(S2, items=0, failed_chunks=0))
    progress.close()
    bar = progress.rows[S2].bar
    assert (bar.value, bar.max, bar.bar_style) == (1, 1, "success")


def test_entry_error_is_shown() -> None:
    progress = NotebookProgress(display=False)
    progress.emit(EntryStarted(S2, "s2"))
    progress.emit(EntryDone(S2, items=0, failed_chunks=0, error="collection not found"))
    progress.close()
    row = progress.rows[S2]
    assert row.bar.bar_style == "danger"
    assert "collection not found" in row.text.value


# -- throttling ---------------------------------------------------------------------------------
def counting(renderer: ThrottledRenderer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    draw = renderer._redraw

    def counted() -> None:
        calls.append(1)
        draw()

    monkeypatch.setattr(renderer, "_redraw", counted)
    return calls


def test_notebook_throttles_10000_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(step=0.0001)  # 10,000 events span one second
    progress = NotebookProgress(display=False, clock=clock)
    calls = counting(progress, monkeypatch)
    feed(progress, start_events()[:4])
    planned = len(calls)
    for _ in range(10_000):
        progress.emit(PageFetched(S2, "s2-1", new=1, duplicates=0))
    assert 5 <= len(calls) - planned <= 12  # ~10 per second, not 10,000
    progress.close()  # draws what the throttle held back
    bar = progress.rows[S2].bar
    assert (bar.value, bar.max) == (10_000, 10_000)  # more items than the server's total
    assert "10,000 / 5,000 items" in progress.rows[S2].text.value


def test_throttle_with_the_real_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    bars = TerminalProgress(file=out, ncols=80)
    calls = counting(bars, monkeypatch)
    feed(bars, start_events())
    for _ in range(10_000):
        bars.emit(PageFetched(LS, "ls-1", new=3, duplicates=1))
    assert len(calls) <= 30
    bars.close()
    assert bars.tracker.entries[LS].items == 30_300
    assert "30,300 items" in out.getvalue().rsplit("\r", 1)[-1]


def test_forced_redraws_ignore_the_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    progress = NotebookProgress(display=False, clock=FakeClock(step=0.0))  # time stands still
    calls = counting(progress, monkeypatch)
    progress.emit(EntryStarted(S2, "s2"))  # the very first event draws
    assert len(calls) == 1
    progress.emit(PageFetched(S2, "k", new=1, duplicates=0))
    progress.emit(Retrying(S2, "k", attempt=1, status_code=None, error="timeout", delay=1))
    assert len(calls) == 1
    for event in (
        EntryPlanned(S2, chunks=1, total=None),
        ChunkFailed(S2, failure(S2)),
        EntryDone(S2, items=1, failed_chunks=1),
        RunDone(items=1, failed_chunks=1),
    ):
        progress.emit(event)
    assert len(calls) == 5
    progress.close()  # nothing new since RunDone: no redraw
    assert len(calls) == 5


async def test_trailing_redraw_shows_the_last_page(monkeypatch: pytest.MonkeyPatch) -> None:
    progress = NotebookProgress(display=False, min_interval=0.05)
    calls = counting(progress, monkeypatch)
    feed(progress, start_events()[:4])  # the plans are drawn at once
    drawn = len(calls)
    progress.emit(PageFetched(S2, "s2-1", new=1234, duplicates=0))  # within the interval
    assert len(calls) == drawn
    assert progress.rows[S2].bar.value == 0
    await asyncio.sleep(0.2)
    assert len(calls) > drawn
    assert progress.rows[S2].bar.value == 1234
    progress.close()
    assert progress._timer is None


async def test_clock_ticks_while_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "IDLE_INTERVAL", 0.05)
    progress = NotebookProgress(display=False, min_interval=0.01)
    calls = counting(progress, monkeypatch)
    feed(progress, start_events())
    drawn = len(calls)
    await asyncio.sleep(0.3)  # no events: the elapsed time still moves
    assert len(calls) >= drawn + 2
    feed(progress, end_events())
    await asyncio.sleep(0.15)
    settled = len(calls)
    await asyncio.sleep(0.15)
    assert len(calls) == settled  # the run is done: no more ticks
    progress.close()


def test_a_broken_display_never_breaks_the_run(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(ThrottledRenderer):
        def _redraw(self) -> None:
            raise ValueError("comm closed")

    renderer = Broken()
    feed(renderer, [*start_events(), *end_events()])  # must not raise
    renderer.close()
    assert renderer.tracker.entries[S2].items == 5000
    assert [r.message for r in caplog.records].count(
        "stacfetch: progress display failed; it stops here"
    ) == 1


# -- the terminal renderer ----------------------------------------------------------------------
def test_terminal_bars_reach_their_totals() -> None:
    out = io.StringIO()
    bars = TerminalProgress(file=out, ncols=100, min_interval=0)
    feed(bars, start_events())
    s2, ls = bars.bars[S2], bars.bars[LS]
    assert (s2.n, s2.total, s2.unit) == (1234, 5000, "items")
    assert (ls.n, ls.total, ls.unit) == (0, 2, "chunks")
    assert (s2.pos, ls.pos) == (0, -1) or {abs(s2.pos), abs(ls.pos)} == {0, 1}
    feed(bars, end_events())
    bars.close()
    assert (s2.n, s2.total) == (5000, 5000)
    assert (ls.n, ls.total, ls.unit) == (3, 3, "chunks")
    assert s2.colour == "green"
    assert ls.colour == "red"
    assert s2.disable
    assert ls.disable
    text = out.getvalue()
    assert "sentinel-2-l2a: 100%" in text
    assert "5000/5000" in text
    assert "320 items, 2 retries, 1 failed" in text
    assert text.endswith("\n")  # leave=True: the last state stays on screen


def test_terminal_close_is_idempotent_and_ignores_late_events() -> None:
    out = io.StringIO()
    bars = TerminalProgress(file=out, ncols=80)
    feed(bars, start_events())
    bars.close()
    written = out.getvalue()
    bars.emit(PageFetched(S2, "s2-1", new=5, duplicates=0))
    bars.close()
    assert out.getvalue() == written


# -- the CLI summary ----------------------------------------------------------------------------
def test_format_summary() -> None:
    tracker = ProgressTracker()
    feed(tracker, [*start_events(), *end_events()])
    lines = format_summary(tracker).splitlines()
    assert lines[0].startswith("stacfetch: 2 entries · 5,320 items · ")
    assert lines[0].endswith("1 failed chunk")
    assert lines[1].split() == [
        "entry",
        "items",
        "duplicates",
        "chunks",
        "retries",
        "failed",
        "elapsed",
        "items/s",
        "status",
    ]
    s2 = lines[2].split()
    assert s2[:7] == ["sentinel-2-l2a", "5,000", "7", "2", "/", "2", "0"]
    assert s2[-1] == "done"
    ls = lines[3].split()
    assert ls[:9] == ["landsat", "320", "0", "3", "/", "3", "2", "1", "0:00"]
    assert ls[-1] == "failed"
    assert lines[4] == "failed chunk (1):"
    assert lines[5].split()[:3] == ["landsat", INTERVAL, "503"]
    assert "HTTPStatusError: Service <Unavailable>" in lines[5]
    assert lines[5].endswith("4 attempts  10 items delivered")


def test_format_summary_lists_the_collectors_failures() -> None:
    tracker = ProgressTracker()
    feed(tracker, [*start_events(), *end_events()])
    assert "failed chunk" not in format_summary(tracker, FailureCollector()).split("\n", 1)[1]
    collector = FailureCollector()
    collector.add(failure(chunk_id="a"))
    collector.add(failure(chunk_id="b"))
    assert "failed chunks (2):" in format_summary(tracker, collector)


def test_format_summary_shows_entry_errors_and_empty_runs() -> None:
    tracker = ProgressTracker()
    assert format_summary(tracker) == "stacfetch: 0 entries · 0 items · 0:00"
    tracker.emit(EntryStarted(S2, "s2"))
    tracker.emit(EntryDone(S2, items=0, failed_chunks=0, error="collection not found"))
    assert "  s2: error: collection not found" in format_summary(tracker).splitlines()


# -- the chooser --------------------------------------------------------------------------------
class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


class ClosableSink(Sink):
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def plain_script(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(auto, "in_jupyter_kernel", lambda: False)
    monkeypatch.setattr(auto, "_stderr_is_tty", lambda: False)
    return monkeypatch


@pytest.mark.parametrize("value", [False, None])
def test_make_progress_nothing(value: Any) -> None:
    assert make_progress(value) is None


def test_make_progress_auto_in_a_script_is_silent(plain_script: pytest.MonkeyPatch) -> None:
    assert make_progress() is None
    assert make_progress("auto") is None


def test_make_progress_auto_on_a_terminal(plain_script: pytest.MonkeyPatch) -> None:
    plain_script.setattr(auto, "_stderr_is_tty", lambda: True)
    renderer = make_progress("auto")
    assert isinstance(renderer, TerminalProgress)
    renderer.close()


def test_make_progress_auto_in_jupyter(
    plain_script: pytest.MonkeyPatch, no_display: list[object]
) -> None:
    plain_script.setattr(auto, "in_jupyter_kernel", lambda: True)
    collector = FailureCollector()

    def retry() -> None:
        pass

    renderer = make_progress("auto", on_retry=retry, failures=collector)
    assert isinstance(renderer, NotebookProgress)
    assert renderer.failure_table.on_retry is retry
    assert renderer.failure_table.failures is collector
    assert no_display == [renderer.widget]


def test_make_progress_true_never_means_nothing(plain_script: pytest.MonkeyPatch) -> None:
    renderer = make_progress(True)
    assert isinstance(renderer, TerminalProgress)
    renderer.close()


@pytest.mark.parametrize("value", ["bars", "terminal", "tqdm", " TQDM "])
def test_make_progress_bars(value: str) -> None:
    renderer = make_progress(value)
    assert isinstance(renderer, TerminalProgress)
    renderer.close()


@pytest.mark.parametrize("value", ["widgets", "notebook"])
def test_make_progress_widgets(value: str, no_display: list[object]) -> None:
    renderer = make_progress(value)
    assert isinstance(renderer, NotebookProgress)
    assert isinstance(renderer, ProgressRenderer)


def test_make_progress_passes_sinks_through() -> None:
    closable = ClosableSink()
    assert make_progress(closable) is closable
    sink = Sink()
    wrapped = make_progress(sink)
    assert wrapped is not None
    assert not isinstance(wrapped, Sink)
    wrapped.emit(RunDone(items=0, failed_chunks=0))
    wrapped.close()  # the sink has no close(): fine
    assert sink.events == [RunDone(items=0, failed_chunks=0)]


@pytest.mark.parametrize("value", ["sparkles", "", 42, 1.5])
def test_make_progress_rejects_unknown_values(value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_progress(value)
    message = str(info.value)
    assert message.startswith("progress: expected one of 'auto', 'widgets', 'notebook'")
    assert "'bars'" in message
    assert "True, False, None" in message
    assert repr(value) in message


def test_check_progress_validates_without_building(no_display: list[object]) -> None:
    for value in ["auto", "widgets", "Notebook", "bars", True, False, None, Sink()]:
        auto.check_progress(value)
    assert no_display == []
    with pytest.raises(ConfigurationError, match="got 'sparkles'"):
        auto.check_progress("sparkles")


def test_make_progress_survives_widgets_that_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: NotebookProgress, **_: Any) -> None:
        raise LookupError("shell_parent")  # ipykernel 7.0.x, off the kernel thread

    monkeypatch.setattr(NotebookProgress, "__init__", broken)
    assert make_progress("widgets") is None
    assert "could not display the progress widgets" in caplog.text


def test_make_progress_names_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "_importable", lambda name: name != "tqdm")
    with pytest.raises(ConfigurationError, match=r"pip install 'stacfetch\[terminal\]'"):
        make_progress("bars")


def test_in_jupyter_kernel_detects_the_zmq_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    class ZMQInteractiveShell:
        pass

    class ColabShell(ZMQInteractiveShell):
        pass

    class TerminalInteractiveShell:
        pass

    fake = types.ModuleType("IPython")
    monkeypatch.setitem(sys.modules, "IPython", fake)
    for shell, expected in [
        (None, False),
        (TerminalInteractiveShell(), False),
        (ZMQInteractiveShell(), True),
        (ColabShell(), True),
    ]:
        fake.get_ipython = lambda shell=shell: shell  # type: ignore[attr-defined]
        assert auto.in_jupyter_kernel() is expected
    monkeypatch.delitem(sys.modules, "IPython")
    assert auto.in_jupyter_kernel() is False
