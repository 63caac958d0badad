"""The search of a slice of an entry's span, sent just after its probe, to learn early whether
splits pay on the server (:mod:`.ramp` gives the verdict; its items are not kept).

Without it, an entry's first split waits for the probe, then for one child's page sent alone:
two round trips before the other children leave. With it, both measurements travel together
and the children leave once the probe has answered (on a latency-bound API, ~0.5 s earlier).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from .._model.errors import FetchError
from .._model.events import EventSink, Retrying
from .._model.types import Chunk, Interval
from .decoder import InvalidPageContent, load_object
from .http import HttpSession
from .plan import resolve_bounds, split_interval
from .records import EntryState
from .search import build_search_request
from .splitting import Splitter

__all__ = ["AFTER_PROBE", "SLICE_LIMIT", "search_slice", "slice_chunk"]

AFTER_PROBE = 0.05
"""Seconds between the probe and the slice's search: a server that answers one request at a
time then answers the probe first, so the probe's time is not the slice's walk too."""

SLICE_LIMIT = 1
"""The slice's page size: its time is what counts, and its items are not kept."""


def slice_chunk(state: EntryState, root: Chunk, pieces: int) -> Chunk | None:
    """The first of ``pieces`` equal time slices of ``root``'s span (its interval, its open ends
    bounded by the collection's extent), or None when the span has no bounded length.

    Example::

        chunk = slice_chunk(state, root, 2 * workers)   # what the first split's child covers
    """
    extent = (
        (None, None) if state.info is None else (state.info.extent_start, state.info.extent_end)
    )
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if root.interval.is_instant:
        return None
    _, body, _ = resolve_bounds(root.interval, extent[0], extent[1], now)
    if body is None or not body.is_bounded:
        return None
    parts = split_interval(body, pieces)
    if len(parts) < 2:
        return None
    first: Interval = parts[0]
    return Chunk.make(root.entry, first, dict(root.filters))


async def search_slice(
    http: HttpSession, splitter: Splitter, sink: EventSink, state: EntryState, chunk: Chunk
) -> None:
    """Search ``chunk`` (a slice of the entry's span) for one item and hand its time to the
    splitter. A failed or retried search says nothing, and the first split's wave
    child decides as before; its retries are reported like any other."""
    assert state.api is not None
    await asyncio.sleep(AFTER_PROBE)
    req = build_search_request(state.api, chunk, SLICE_LIMIT)
    probing = 0 if state.ramp.probe is not None else 1  # the probe itself is no load
    shared = http.limiter(req.url).in_flight > probing
    retried = False

    def on_retry(attempt: int, status: int | None, error: str, delay: float) -> None:
        nonlocal retried
        retried = True
        sink.emit(Retrying(state.task.entry.key, chunk.chunk_id, attempt, status, error, delay))

    asked = time.monotonic()
    try:
        count = await http.fetch(req, _count, on_retry=on_retry)
    except (FetchError, InvalidPageContent):
        return
    if not retried:
        splitter.filtered(state, time.monotonic() - asked, count, shared=shared)


async def _count(content: bytes) -> int:
    features = load_object(content).get("features")
    return len(features) if isinstance(features, list) else 0
