"""Pure chunk planning: interval maths, contiguous splits, remainders. No IO here.

Rules that keep results exact:

- Chunks are contiguous and share their boundaries: ``a/b`` then ``b/c``. Real servers treat
  intervals as closed, so an item stamped exactly ``b`` comes back twice and is deduplicated by
  (collection, id); no item falls in a gap (never ``23:59:59`` ends).
- Open ends are not guessed away: the part of a search outside the collection's temporal extent
  becomes an open chunk (``../e0`` or ``e1/..``), so a stale extent cannot lose items.
- A remainder split (``split_remainder``) only narrows an interval when the sort order of the
  page proves that every item left lies inside the narrowed interval.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .._model.datetimes import MICROSECOND
from .._model.errors import ConfigurationError
from .._model.types import Chunk, Entry, Interval

__all__ = [
    "choose_chunk_target",
    "plan_chunks",
    "resolve_bounds",
    "split_interval",
]


def split_interval(interval: Interval, n: int) -> list[Interval]:
    """Split a bounded interval into at most ``n`` contiguous pieces sharing their boundaries.

    Pieces are as equal as microsecond resolution allows; an instant stays one piece.

    Example:
        >>> from datetime import datetime, timezone
        >>> iv = Interval(datetime(2024, 1, 1, tzinfo=timezone.utc),
        ...               datetime(2024, 1, 3, tzinfo=timezone.utc))
        >>> [p.to_param() for p in split_interval(iv, 2)]
        ['2024-01-01T00:00:00Z/2024-01-02T00:00:00Z', '2024-01-02T00:00:00Z/2024-01-03T00:00:00Z']
    """
    if n < 1:
        raise ConfigurationError(f"n: must be >= 1, got {n}")
    if interval.start is None or interval.end is None:
        raise ValueError("only a bounded interval can be split")
    start, end = interval.start, interval.end
    width_us = (end - start) // MICROSECOND
    n = max(1, min(n, width_us))
    if n == 1:
        return [interval]
    cuts = [start + timedelta(microseconds=width_us * i // n) for i in range(n + 1)]
    cuts[-1] = end
    return [Interval(a, b) for a, b in itertools.pairwise(cuts) if a < b]


def resolve_bounds(
    interval: Interval | None,
    extent_start: datetime | None,
    extent_end: datetime | None,
    now: datetime,
) -> tuple[Interval | None, Interval | None, Interval | None]:
    """Resolve open or missing ends against the collection's temporal extent.

    Returns ``(head, body, tail)``: ``body`` is the bounded, splittable part (or None),
    ``head``/``tail`` are open chunks covering what lies before/after it. Together they cover
    exactly the requested interval.

    Example:
        >>> from datetime import datetime, timezone
        >>> utc = timezone.utc
        >>> head, body, tail = resolve_bounds(None, datetime(2020, 1, 1, tzinfo=utc), None,
        ...                                   now=datetime(2024, 1, 1, tzinfo=utc))
        >>> head.to_param(), tail.to_param()
        ('../2020-01-01T00:00:00Z', '2024-01-01T00:00:00Z/..')
        >>> body.to_param()
        '2020-01-01T00:00:00Z/2024-01-01T00:00:00Z'
    """
    req_start = interval.start if interval else None
    req_end = interval.end if interval else None
    start, head = req_start, None
    if start is None and extent_start is not None:
        start = extent_start
    end, tail = req_end, None
    if end is None:
        end = extent_end if extent_end is not None else now
        if start is not None and end <= start:
            return None, None, Interval(start, None)
    if start is None:
        return None, Interval(None, end), (Interval(end, None) if req_end is None else None)
    if end < start:  # requested end lies before the extent starts
        return Interval(req_start, end), None, None
    if req_start is None:
        head = Interval(None, start)
    if req_end is None:
        tail = Interval(end, None)
    return head, Interval(start, end), tail


def plan_chunks(
    entry: Entry,
    interval: Interval | None,
    filters: Mapping[str, Any],
    n: int,
    *,
    extent: tuple[datetime | None, datetime | None] = (None, None),
    now: datetime,
) -> list[Chunk]:
    """Plan the initial chunks of one entry: open head/tail plus ``n`` pieces of the body.

    Example:
        >>> from datetime import datetime, timezone
        >>> utc = timezone.utc
        >>> iv = Interval(datetime(2024, 1, 1, tzinfo=utc), datetime(2024, 1, 5, tzinfo=utc))
        >>> chunks = plan_chunks(Entry("u", "c"), iv, {}, 4, now=datetime(2025, 1, 1, tzinfo=utc))
        >>> len(chunks), chunks[0].interval.start == iv.start, chunks[-1].interval.end == iv.end
        (4, True, True)
    """
    if interval is not None and interval.is_instant:
        return [Chunk.make(entry, interval, filters)]
    head, body, tail = resolve_bounds(interval, extent[0], extent[1], now)
    pieces: list[Interval] = []
    if head is not None:
        pieces.append(head)
    if body is not None:
        pieces.extend(split_interval(body, n) if body.is_bounded else [body])
    if tail is not None:
        pieces.append(tail)
    return [Chunk.make(entry, piece, filters) for piece in pieces]


def choose_chunk_target(
    chunk_size: int | None, limit: int, total: int | None, workers: int, most: int | None = None
) -> int:
    """Target items per chunk: the configured ``chunk_size``, else two chunks per worker (as
    planned: evenly spread items are not split again), never below one page, and at most
    ``most`` (``to_parquet`` keeps chunks small, so that a resumed run re-fetches little).

    Example:
        >>> choose_chunk_target(None, 1000, 100_000, 8)
        6250
        >>> choose_chunk_target(500, 1000, None, 8)
        500
        >>> choose_chunk_target(None, 1000, 100_000, 8, most=3000), choose_chunk_target(
        ...     None, 1000, 10_000, 16, most=3000)
        (3000, 1000)
    """
    if chunk_size is not None:
        return chunk_size
    target = limit * 5 if total is None else max(limit, -(-total // (workers * 2)))
    return min(target, most) if most is not None else target
