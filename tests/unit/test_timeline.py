"""The chunk timeline, the run summary and the Ingestor's HTML: from events to what is drawn."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest

import stacfetch
from stacfetch import Chunk, Entry, Interval
from stacfetch._display.notebook import NotebookProgress
from stacfetch._display.summary import RunSummary
from stacfetch._display.terminal import format_summary
from stacfetch._display.timeline import parse_interval, timeline_html, timeline_svg, timeline_text
from stacfetch._model.events import (
    ChunkDone,
    ChunkFailed,
    ChunkSpan,
    ChunksPlanned,
    ChunkSplit,
    ChunkStarted,
    EntryDone,
    EntryPlanned,
    EntryStarted,
    Event,
    FailureRecord,
    PageFetched,
    Retrying,
)
from stacfetch._model.failures import FailureCollector, failure_table_html
from stacfetch._model.progress import ProgressTracker

KEY = "https://stac.example#c"
JAN = "2024-01-01T00:00:00Z/2024-02-01T00:00:00Z"
FEB = "2024-02-01T00:00:00Z/2024-03-01T00:00:00Z"
MAR = "2024-03-01T00:00:00Z/2024-04-01T00:00:00Z"
MAR_A = "2024-03-01T00:00:00Z/2024-03-16T00:00:00Z"
MAR_B = "2024-03-16T00:00:00Z/2024-04-01T00:00:00Z"


def record(chunk_id: str, interval: str | None, chunk: Any = None) -> FailureRecord:
    return FailureRecord(
        entry_key=KEY,
        catalog_url="https://stac.example",
        collection_id="c",
        chunk_id=chunk_id,
        interval=interval,
        filters={},
        method="POST",
        url="https://stac.example/search",
        body={},
        status_code=503,
        error_type="HTTPStatusError",
        message="503",
        attempts=3,
        first_time=0.0,
        last_time=1.0,
        items_delivered=4,
        chunk=chunk,
    )


def fold(events: list[Event]) -> ProgressTracker:
    tracker = ProgressTracker()
    for event in events:
        tracker.emit(event)
    return tracker


def segments(svg: str, cls: str = "stacfetch-seg") -> list[dict[str, str]]:
    """Every rect of class ``cls`` as its attributes."""
    found = []
    for rect in re.findall(rf'<rect class="{cls}" ([^>]*)>', svg):
        found.append(dict(re.findall(r'([\w-]+)="([^"]*)"', rect)))
    return found


def full_run() -> list[Event]:
    spans = (ChunkSpan("a", JAN), ChunkSpan("b", FEB), ChunkSpan("m", MAR))
    return [
        EntryStarted(KEY, "c"),
        EntryPlanned(KEY, 3, None),
        ChunksPlanned(KEY, spans),
        ChunkStarted(KEY, "a"),
        PageFetched(KEY, "a", new=10, duplicates=1),
        ChunkDone(KEY, "a", items=10),
        PageFetched(KEY, "b", new=5, duplicates=0),
        ChunkSplit(KEY, "m", into=2, children=(ChunkSpan("m1", MAR_A), ChunkSpan("m2", MAR_B))),
        ChunkDone(KEY, "m", items=0),  # the engine marks a split chunk done: it stays split
        Retrying(KEY, "m2", attempt=1, status_code=503, error="503", delay=0.1),
        ChunkFailed(KEY, record("m2", MAR_B)),
    ]


# -- the tracker ---------------------------------------------------------------------------------
def test_chunk_states_follow_the_events() -> None:
    p = fold(full_run()).entries[KEY]
    states = {cid: (c.state, c.interval, c.items, c.attempts) for cid, c in p.chunks.items()}
    assert states == {
        "a": ("done", JAN, 10, 1),
        "b": ("running", FEB, 5, 1),
        "m": ("split", MAR, 0, 0),
        "m1": ("pending", MAR_A, 0, 0),
        "m2": ("failed", MAR_B, 4, 3),
    }
    assert p.chunks["m1"].parent_id == "m"
    assert p.pages == 2


def test_chunks_planned_is_idempotent_and_fills_in_late_spans() -> None:
    # a page before the plan reached the tracker: the chunk exists, its interval comes later
    tracker = fold(
        [
            EntryStarted(KEY, "c"),
            PageFetched(KEY, "a", new=3, duplicates=0),
            ChunksPlanned(KEY, (ChunkSpan("a", JAN),)),
            ChunksPlanned(KEY, (ChunkSpan("a", JAN),)),
        ]
    )
    (state,) = tracker.entries[KEY].chunks.values()
    assert (state.state, state.interval, state.items) == ("running", JAN, 3)


def test_a_failed_chunk_planned_again_in_a_later_run_is_pending() -> None:
    tracker = fold([EntryStarted(KEY, "c"), ChunkFailed(KEY, record("a", JAN))])
    tracker.emit(ChunksPlanned(KEY, (ChunkSpan("a", JAN),)))  # same run: stays failed
    assert tracker.entries[KEY].chunks["a"].state == "failed"
    tracker.emit(EntryStarted(KEY, "c"))  # retry_failed()
    tracker.emit(ChunksPlanned(KEY, (ChunkSpan("a", JAN),)))
    assert tracker.entries[KEY].chunks["a"].state == "pending"
    tracker.emit(ChunkDone(KEY, "a", items=7))
    assert tracker.entries[KEY].chunks["a"].state == "done"


def test_chunk_span_reads_the_tile_of_a_chunk() -> None:
    entry = Entry("https://x/stac", "c1")
    chunk = Chunk.make(entry, Interval(None, None), {"bbox": [0, 1, 2, 3]})
    assert ChunkSpan.of(chunk) == ChunkSpan(chunk.chunk_id, None, (0.0, 1.0, 2.0, 3.0))
    poly = {"type": "Polygon", "coordinates": [[[5, 6], [7, 6], [7, 9], [5, 6]]]}
    chunk = Chunk.make(entry, Interval(None, None), {"intersects": poly})
    assert ChunkSpan.of(chunk).bbox == (5.0, 6.0, 7.0, 9.0)
    assert ChunkSpan.of(Chunk.make(entry, Interval(None, None))).bbox is None


# -- drawing -------------------------------------------------------------------------------------
def test_parse_interval() -> None:
    assert parse_interval("2024-01-01T00:00:00Z") == (1704067200.0, 1704067200.0)
    assert parse_interval("2024-01-01T00:00:00Z/..") == (1704067200.0, None)
    assert parse_interval("garbage/also") == (None, None)


def test_svg_segments_carry_state_interval_and_hover_text() -> None:
    p = fold(full_run()).entries[KEY]
    svg = timeline_svg(p, width=900)
    rects = segments(svg)
    assert next(r["data-chunk"] for r in rects) == "m"  # split drawn first, under its children
    by_chunk = {r["data-chunk"]: r for r in rects}
    assert by_chunk["m2"]["data-state"] == "failed"
    assert by_chunk["m2"]["data-interval"] == MAR_B
    assert by_chunk["m2"]["fill"] == "#e53935"
    assert by_chunk["a"]["data-items"] == "10"
    # January is 31 of the 91 days on a 900 px axis
    assert float(by_chunk["a"]["x"]) == 0.0
    assert float(by_chunk["a"]["width"]) == pytest.approx(900 * 31 / 91, abs=0.01)
    assert float(by_chunk["m2"]["x"]) + float(by_chunk["m2"]["width"]) == pytest.approx(900)
    assert "<title>2024-03-16T00:00:00Z/2024-04-01T00:00:00Z · failed · 4 items · 3 attempts" in svg
    assert 'data-start="2024-01-01" data-end="2024-04-01"' in svg


def test_the_entry_interval_sets_the_axis() -> None:
    tracker = fold(full_run())
    tracker.emit(EntryPlanned(KEY, 0, None, interval="2023-12-01T00:00:00Z/2024-06-01T00:00:00Z"))
    svg = timeline_svg(tracker.entries[KEY])
    assert 'data-start="2023-12-01" data-end="2024-06-01"' in svg
    assert float(segments(svg)[1]["x"]) > 0


def test_html_has_a_legend_and_a_tile_map_once_chunks_split_in_space() -> None:
    p = fold(full_run()).entries[KEY]
    page = timeline_html(p)
    assert "stacfetch-tiles-svg" not in page  # no tiles: no map
    assert re.search(r"1 failed</span>", page)
    tracker = fold(
        [
            EntryStarted(KEY, "c"),
            ChunksPlanned(
                KEY,
                (
                    ChunkSpan("w", JAN, (0.0, 0.0, 5.0, 5.0)),
                    ChunkSpan("e", JAN, (5.0, 0.0, 10.0, 5.0)),
                ),
            ),
            ChunkDone(KEY, "w", items=1),
            ChunkFailed(KEY, record("e", JAN)),
        ]
    )
    tiles = segments(timeline_html(tracker.entries[KEY]), "stacfetch-tile")
    assert {(t["data-chunk"], t["data-state"], t["data-bbox"]) for t in tiles} == {
        ("w", "done", "0,0,5,5"),
        ("e", "failed", "5,0,10,5"),
    }
    east = next(t for t in tiles if t["data-chunk"] == "e")
    assert float(east["x"]) == pytest.approx(80.0)  # right half of the 160 px map


def test_nothing_known_draws_nothing() -> None:
    tracker = fold([EntryStarted(KEY, "c"), PageFetched(KEY, "x", new=1, duplicates=0)])
    p = tracker.entries[KEY]
    assert timeline_svg(p) == ""
    assert timeline_text(p) == ""
    assert "not known" in timeline_html(p)


def test_text_timeline_marks_the_failed_month() -> None:
    p = fold(full_run()).entries[KEY]
    line = timeline_text(p, width=91)  # one cell per day
    bar = line.split("|")[1]
    assert bar[:31] == "#" * 31
    assert bar[31:60] == ">" * 29  # February: running
    assert bar[60:75] == "." * 15  # first half of March: pending child of the split
    assert bar[76:] == "x" * 15
    assert line.startswith("2024-01-01 |")
    assert line.endswith("| 2024-04-01")
    summary = format_summary(fold(full_run()))
    assert summary.splitlines()[-1].startswith("  c timeline: 2024-01-01 |")


def test_failure_table_cells_carry_the_interval() -> None:
    out = failure_table_html([record("m2", MAR_B)])
    assert f"data-interval='{MAR_B}'" in out
    assert "data-chunk='m2'" in out


def header(out: str) -> list[str]:
    return re.findall(r"<th[^>]*>([^<]*)</th>", out)


def cells(out: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", out)
    return [
        [re.sub(r"<[^>]+>", "", td) for td in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in rows
        if "<td" in row
    ]


def test_failure_table_columns_and_content() -> None:
    out = failure_table_html([record("m2", MAR_B)])
    assert header(out) == [
        "entry",
        "interval",
        "status",
        "error",
        "attempts",
        "items delivered",
        "last seen (UTC)",
    ]  # no spatial filter: no bbox column
    assert cells(out) == [["c", MAR_B, "503", "HTTPStatusError: 503", "3", "4", "00:00:01"]]
    assert "1 failed chunk</b>" in out
    assert "retry_failed" not in out


def test_failure_table_shows_the_bbox_of_spatial_chunks() -> None:
    tile = dataclasses.replace(record("t1", MAR_B), filters={"bbox": [0, 45.5, 2.25, 47]})
    shape = {"type": "Polygon", "coordinates": [[[1, 2], [3, 2], [3, 4.5], [1, 2]]]}
    cut = dataclasses.replace(record("t2", None), filters={"intersects": shape})
    plain = record("t3", MAR_B)
    out = failure_table_html([tile, cut, plain])
    assert header(out)[:3] == ["entry", "interval", "bbox"]
    assert [row[:3] for row in cells(out)] == [
        ["c", MAR_B, "0, 45.5, 2.25, 47"],
        ["c", "(whole search)", "≈ 1, 2, 3, 4.5"],
        ["c", MAR_B, ""],
    ]


def test_collector_repr_is_the_same_table() -> None:
    collector = FailureCollector()
    assert "no failed chunks" in collector._repr_html_()
    collector.add(record("m2", MAR_B))
    out = collector._repr_html_()
    assert out == failure_table_html(collector, retry_hint=True)
    assert cells(out)[0][:4] == ["c", MAR_B, "503", "HTTPStatusError: 503"]
    assert "ing.retry_failed()" in out


def test_notebook_rows_draw_the_timeline_only_when_a_chunk_changed() -> None:
    now = [0.0]
    progress = NotebookProgress(display=False, min_interval=0, clock=lambda: now[0])
    for event in full_run():
        now[0] += 0.2  # every event after the last redraw was due
        progress.emit(event)
    row = progress.rows[KEY]
    assert "stacfetch-timeline" in row.timeline.value
    red = {r["data-chunk"] for r in segments(row.timeline.value) if r["data-state"] == "failed"}
    assert red == {"m2"}
    row.timeline.value = "sentinel"
    now[0] += 0.05
    progress.emit(PageFetched(KEY, "zz", new=0, duplicates=0))  # too soon after the last SVG
    assert row.timeline.value == "sentinel"
    now[0] += 0.1
    progress.emit(PageFetched(KEY, "zz", new=0, duplicates=0))  # due: redrawn
    assert row.timeline.value != "sentinel"
    row.timeline.value = "sentinel"
    now[0] += 1
    progress.emit(Retrying(KEY, "plan", 1, 503, "503", 0.1))  # no chunk changed: kept
    assert row.timeline.value == "sentinel"
    progress.emit(PageFetched(KEY, "yy", new=0, duplicates=0))
    row.timeline.value = "sentinel"
    progress.emit(PageFetched(KEY, "xx", new=0, duplicates=0))  # not due, but the end draws it
    progress.close()
    assert row.timeline.value != "sentinel"
    assert 'data-chunk="xx"' not in row.timeline.value  # no interval known: counted, not drawn
    assert "4 running" in row.timeline.value  # b, zz, yy, xx


def test_many_chunks_redraw_less_often() -> None:
    from stacfetch._display.notebook import timeline_interval

    assert timeline_interval(1) == timeline_interval(200) == 0.1
    assert timeline_interval(4000) == 2.0


# -- summary and reprs -----------------------------------------------------------------------------
def test_run_summary_text_and_html() -> None:
    tracker = fold([*full_run(), EntryDone(KEY, items=15, failed_chunks=1)])
    summary = RunSummary.of(tracker)
    assert (summary.items, summary.duplicates, summary.retries, summary.failed_chunks) == (
        15,
        1,
        1,
        1,
    )
    assert summary.requests == 2 + 1 + 1  # pages, retries, the failed chunk's last attempt
    assert summary.state == "failed"
    text = str(summary)
    assert text.splitlines()[0].startswith("stacfetch: 1 entry · 15 items · 1 duplicates dropped")
    assert "c timeline: 2024-01-01 |" in text
    page = summary._repr_html_()
    assert "stacfetch-summary" in page
    assert "<td" in page
    assert RunSummary.of(tracker, failures=[]).state == "done"  # retried since


def test_empty_summary_says_the_search_matched_nothing() -> None:
    tracker = fold([EntryStarted(KEY, "c"), EntryPlanned(KEY, 1, 0), EntryDone(KEY, 0, 0)])
    summary = RunSummary.of(tracker, [])
    assert summary.state == "done"
    assert "the search matched no items" in str(summary)
    assert "matched no items" in summary._repr_html_()
    assert RunSummary.of(ProgressTracker()).state == "not started"


@pytest.fixture
def demo() -> Iterator[Any]:
    from stacfetch._testing.demo import demo_server

    server = demo_server(fail_window=("2023-03-01", "2023-03-31"))
    try:
        yield server
    finally:
        server.stop()


def test_a_real_run_paints_the_failed_chunks_red(demo: Any) -> None:
    from stacfetch._testing.demo import DEMO_COLLECTIONS

    ing = stacfetch.Ingestor(
        demo.url,
        collections=DEMO_COLLECTIONS[:1],
        retry={"max_retries": 1, "backoff_base": 0.01},
        progress=False,
        decoders=0,
    )
    assert "not started" in ing._repr_html_()
    ing.ingest()
    (p,) = ing.tracker.entries.values()
    red = {c.interval for c in p.chunks.values() if c.state == "failed"}
    assert red == {r.interval for r in ing.failures}
    assert red
    assert all("2023-03" in iv or "2023-02" in iv for iv in red if iv)
    svg = timeline_svg(p)
    assert {r["data-interval"] for r in segments(svg) if r["data-state"] == "failed"} == red
    states = {c.state for c in p.chunks.values()}
    assert {"done", "failed"} <= states <= {"done", "failed", "split"}  # every chunk placed
    assert all(c.interval for c in p.chunks.values() if c.state != "split")
    page = ing._repr_html_()
    assert "failed" in page
    assert "datetime" not in page
    summary = ing.summary
    assert summary.items == p.items > 0
    assert summary.state == "failed"
    demo.heal()
    ing.retry_failed()
    assert ing.summary.state == "done"
    assert ing.summary.failed_chunks == 0
    after = {c.state for c in ing.tracker.entries[p.entry_key].chunks.values()}
    assert after <= {"done", "split"}
    assert "done" in after
    assert "x" not in timeline_text(ing.tracker.entries[p.entry_key])
