"""One page of a search: parsed as JSON in this process, or decoded to Arrow by a decoder
process (:mod:`.decoder`), when to start those processes, and the failure record of a chunk
whose page could not be had."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._model.errors import FetchError
from .._model.events import FailureRecord
from .._model.types import Chunk
from .decoder import DecoderPool
from .http import HttpSession, describe
from .records import EntryState
from .search import SearchRequest

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DECODER_MIN_ITEMS", "chunk_failure", "get_page", "in_time", "start_if_large"]

DECODER_MIN_ITEMS = 10_000
"""Below this many items (when the counts tell), decoder processes cost more than they save:
each takes ~0.5 s of CPU to start (docs/decisions/0007-decoder-processes.md)."""


async def get_page(
    http: HttpSession,
    decoder: DecoderPool | None,
    req: SearchRequest,
    collection: str | None,
    on_retry: Any,
) -> tuple[dict[str, Any], list[Any], pa.Table | None]:
    """One page: (the page, its features, their Arrow table when a decoder decoded it).

    With a decoder the features are stubs (``id``, ``collection``, datetimes, ``bbox``) and
    the table holds the items; raises :class:`~stacfetch.FetchError` when the answer is not
    an item search page.

    Example::

        page, features, table = await get_page(http, None, req, "c1", on_retry=None)
    """
    table = None
    if decoder is not None:
        decode = functools.partial(decoder.decode, collection=collection)
        decoded = await http.fetch(req, decode, on_retry=on_retry)
        page, features, table = decoded.head, decoded.stubs, decoded.table
    else:
        page = await http.get_json(req, on_retry=on_retry)
        features = page.get("features")
    if not isinstance(features, list):
        raise FetchError(
            "the response has no 'features' list: not an item search page",
            request=describe(req),
            error_type="InvalidPage",
        )
    return page, features, table


async def in_time(
    fetching: asyncio.Future[Any], seconds: float, retried: Callable[[], bool]
) -> bool:
    """Wait up to ``seconds`` for ``fetching``: False when it had not answered by then (it is
    then cancelled). A request that was retried meanwhile is waited for to its end: its time
    says nothing of the search.

    Example::

        fetching = asyncio.ensure_future(get_page(http, None, req, "c1", on_retry=None))
        if await in_time(fetching, 1.5, lambda: False):
            page, features, table = await fetching
    """
    done, _ = await asyncio.wait({fetching}, timeout=seconds)
    if done or retried():
        return True
    fetching.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await fetching
    return False


async def start_if_large(
    decoder: DecoderPool, states: Sequence[EntryState], min_items: int = DECODER_MIN_ITEMS
) -> None:
    """Start the decoder processes unless the counts say the run is small (until then, and
    in small runs, pages are decoded in this process).

    Example::

        await start_if_large(pool, states)   # after the entries' first pages told the counts
    """
    counting = [s.counting for s in states if s.counting is not None]
    await asyncio.gather(*counting, return_exceptions=True)
    totals = [s.total if s.task.chunks is None else None for s in states]
    known = [t for t in totals if t is not None]
    if len(known) == len(totals) and sum(known) < min_items:
        return
    await decoder.start()


def chunk_failure(
    chunk: Chunk,
    req: SearchRequest,
    exc: FetchError | None,
    error_type: str,
    message: str,
    *,
    first_time: float,
    delivered: int,
) -> FailureRecord:
    """The failure table's row for ``chunk``, whose request ``req`` failed (``exc``: the HTTP
    error, None for a problem found in an answer, such as a truncated result)."""
    request = exc.request if exc and exc.request else describe(req)
    return FailureRecord.of_chunk(
        chunk,
        error_type=error_type,
        message=message,
        first_time=first_time,
        request={"method": req.method, **request},
        status_code=exc.status_code if exc else None,
        attempts=exc.attempts if exc else 1,
        items_delivered=delivered,
    )
