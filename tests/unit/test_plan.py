"""Planning and interval maths: pure functions, no IO."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacfetch._engine.plan import (
    choose_chunk_target,
    plan_chunks,
    resolve_bounds,
    split_interval,
)
from stacfetch._engine.split import plan_split, time_pieces
from stacfetch._model.types import Chunk, Entry, Interval

UTC = timezone.utc
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ENTRY = Entry("https://x/stac", "c1")


def dt(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def feature(when: str | None, start: str | None = None) -> dict[str, object]:
    props: dict[str, object] = {"datetime": when}
    if start:
        props["start_datetime"] = start
    return {"properties": props}


instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(a=instants, b=instants, n=st.integers(1, 500))
@settings(max_examples=300, deadline=None)
def test_split_is_contiguous_and_covers(a: datetime, b: datetime, n: int) -> None:
    start, end = min(a, b), max(a, b)
    pieces = split_interval(Interval(start, end), n)
    assert pieces[0].start == start
    assert pieces[-1].end == end
    assert 1 <= len(pieces) <= n
    for left, right in itertools.pairwise(pieces):
        assert left.end == right.start  # shared boundary: no gap, no overlap beyond it
        assert left.start is not None
        assert left.end is not None
        assert left.start < left.end


def test_split_is_balanced() -> None:
    pieces = split_interval(Interval(dt(2020, 1, 1), dt(2020, 1, 11)), 10)
    widths = {p.end - p.start for p in pieces if p.end and p.start}
    assert widths == {timedelta(days=1)}


def test_split_instant_and_tiny_intervals() -> None:
    instant = Interval(dt(2020, 1, 1), dt(2020, 1, 1))
    assert split_interval(instant, 8) == [instant]
    tiny = Interval(dt(2020, 1, 1), dt(2020, 1, 1) + timedelta(microseconds=3))
    assert len(split_interval(tiny, 100)) == 3


def test_split_rejects_open_interval() -> None:
    with pytest.raises(ValueError, match="bounded"):
        split_interval(Interval(None, dt(2020, 1, 1)), 2)


def test_resolve_bounds_open_both_uses_extent_and_keeps_open_edges() -> None:
    head, body, tail = resolve_bounds(None, dt(2015, 6, 1), dt(2024, 1, 1), NOW)
    assert head == Interval(None, dt(2015, 6, 1))
    assert body == Interval(dt(2015, 6, 1), dt(2024, 1, 1))
    assert tail == Interval(dt(2024, 1, 1), None)


def test_resolve_bounds_closed_request_ignores_extent() -> None:
    iv = Interval(dt(2010, 1, 1), dt(2011, 1, 1))
    assert resolve_bounds(iv, dt(2015, 1, 1), dt(2016, 1, 1), NOW) == (None, iv, None)


def test_resolve_bounds_unknown_extent_end_uses_now() -> None:
    head, body, tail = resolve_bounds(Interval(dt(2020, 1, 1), None), None, None, NOW)
    assert head is None
    assert body == Interval(dt(2020, 1, 1), NOW)
    assert tail == Interval(NOW, None)


def test_resolve_bounds_unknown_extent_start_is_not_split() -> None:
    head, body, tail = resolve_bounds(Interval(None, dt(2020, 1, 1)), None, None, NOW)
    assert (head, tail) == (None, None)
    assert body == Interval(None, dt(2020, 1, 1))


def test_resolve_bounds_start_after_extent() -> None:
    assert resolve_bounds(Interval(dt(2030, 1, 1), None), None, dt(2025, 1, 1), NOW) == (
        None,
        None,
        Interval(dt(2030, 1, 1), None),
    )


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_plan_chunks_cover_request(n: int) -> None:
    iv = Interval(dt(2020, 1, 1), dt(2021, 1, 1))
    chunks = plan_chunks(ENTRY, iv, {"bbox": [0, 0, 1, 1]}, n, now=NOW)
    assert len(chunks) == n
    assert chunks[0].interval.start == iv.start
    assert chunks[-1].interval.end == iv.end
    assert all(c.filters == {"bbox": [0, 0, 1, 1]} for c in chunks)
    assert len({c.chunk_id for c in chunks}) == n


def test_plan_chunks_instant_is_one_chunk() -> None:
    iv = Interval(dt(2020, 5, 5), dt(2020, 5, 5))
    assert [c.interval for c in plan_chunks(ENTRY, iv, {}, 16, now=NOW)] == [iv]


def test_plan_chunks_no_datetime_adds_open_edges() -> None:
    chunks = plan_chunks(ENTRY, None, {}, 4, extent=(dt(2020, 1, 1), dt(2021, 1, 1)), now=NOW)
    assert chunks[0].interval == Interval(None, dt(2020, 1, 1))
    assert chunks[-1].interval == Interval(dt(2021, 1, 1), None)
    assert len(chunks) == 6


def test_choose_chunk_target() -> None:
    assert choose_chunk_target(None, 1000, None, 8) == 5000
    assert choose_chunk_target(None, 1000, 10, 8) == 1000
    assert choose_chunk_target(None, 100, 64_000, 8) == 4000  # two chunks per worker
    assert choose_chunk_target(123, 1000, 10**6, 8) == 123


# --- time pieces that follow the sampled items ----------------------------------------------
@given(
    a=instants,
    b=instants,
    n=st.integers(2, 40),
    sample=st.lists(st.floats(0, 1), min_size=0, max_size=200),
)
@settings(max_examples=300, deadline=None)
def test_time_pieces_cover_the_interval_whatever_the_sample(
    a: datetime, b: datetime, n: int, sample: list[float]
) -> None:
    start, end = min(a, b), max(a, b)
    spans = [(start + (end - start) * f, start + (end - start) * f) for f in sample]
    pieces = time_pieces(Interval(start, end), n, spans, now=NOW)
    assert pieces[0].start == start
    assert pieces[-1].end == end
    assert len(pieces) <= n
    for left, right in itertools.pairwise(pieces):
        assert left.end == right.start
        assert left.start is not None
        assert left.end is not None
        assert left.start < left.end


def test_time_pieces_follow_a_burst_and_ignore_a_bunched_page() -> None:
    year = Interval(dt(2021, 1, 1), dt(2022, 1, 1))
    day = dt(2021, 6, 1)
    spread = [dt(2021, 1, 1) + timedelta(days=3.6 * i + 0.5) for i in range(100)]
    burst = [day + timedelta(minutes=7 * i) for i in range(80)] + spread[::5]
    in_burst = [p for p in time_pieces(year, 16, [(t, t) for t in burst], now=NOW)
                if p.start is not None and day <= p.start <= day + timedelta(days=1)]  # fmt: skip
    assert len(in_burst) >= 5  # even cuts alone would put none inside that day
    # a page of a server sorting by datetime: the newest items, bunched at the end
    bunched = [dt(2021, 12, 31) + timedelta(minutes=i) for i in range(100)]
    pieces = time_pieces(year, 16, [(t, t) for t in bunched], now=NOW)
    assert pieces == split_interval(year, 16)


def test_time_pieces_cut_off_the_sampled_items() -> None:
    year = Interval(dt(2021, 1, 1), dt(2022, 1, 1))
    stamps = [dt(2021, 1, 1) + timedelta(days=3 * i + 1) for i in range(120)]
    pieces = time_pieces(year, 16, [(t, t) for t in stamps], now=NOW)
    cuts = {p.start for p in pieces[1:]}
    assert not cuts & set(stamps)


def _annual(x: float, y: float, year: int) -> dict[str, object]:
    return {
        "bbox": [x, y, x + 1, y + 1],
        "properties": {
            "datetime": None,
            "start_datetime": f"{year}-01-01T00:00:00Z",
            "end_datetime": f"{year}-12-31T23:59:59Z",
        },
    }


def test_below_a_space_split_range_items_stay_split_in_space() -> None:
    # five yearly composites per footprint: a time split in two cuts through one year
    sample = [_annual(x, y, year) for x in range(121, 179, 6) for y in (-20, 0, 20)
              for year in range(2017, 2022)]  # fmt: skip
    tile = Chunk.make(
        Entry("https://x", "c"), Interval(None, None), {"bbox": [120.8, -29.2, 180.0, 30.8]}
    )
    alone = plan_split(tile, sample, 2, now=NOW)
    below_space = plan_split(tile, sample, 2, now=NOW, prefer="space")
    assert alone is not None
    assert below_space is not None
    assert alone.axis == "time"  # 1.2 copies per item: time, when nothing says otherwise
    assert below_space.axis == "space"  # each item once, and no deeper cuts through years
    few = plan_split(tile, sample[:3], 2, now=NOW, prefer="space")
    assert few is not None
    assert few.axis == "space"


def test_open_ended_time_pieces_cut_inside_the_extent_and_stay_open() -> None:
    lo, hi = datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)
    pieces = time_pieces(Interval(None, None), 4, [], extent=(lo, hi), now=NOW)
    assert len(pieces) == 4  # every piece holds a share of the extent
    assert pieces[0].start is None
    assert pieces[-1].end is None
    assert pieces[0].end == lo + (hi - lo) / 4
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
