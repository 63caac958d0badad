"""One page of a search: parsed as JSON in this process, or its head read here and its
features decoded to Arrow by a decoder process (:mod:`.decoder_pool`); when to start those
processes, and the failure record of a chunk whose page could not be had."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._formats.pagejson import PageHead, page_head
from .._model.errors import FetchError
from .._model.events import FailureRecord
from .._model.types import Chunk
from .decoder import DecodedPage
from .decoder_pool import DecoderPool
from .http import HttpSession, describe
from .records import EntryState
from .search import SearchRequest

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DECODER_MIN_ITEMS",
    "Fetched",
    "chunk_failure",
    "fetch_page",
    "in_time",
    "start_if_large",
]

DECODER_MIN_ITEMS = 10_000
"""Below this many items (when the counts tell), decoder processes cost more than they save:
each takes ~0.5 s of CPU to start (docs/decisions/0007-decoder-processes.md)."""


class Fetched:
    """A page whose body has arrived: its head (the page without ``features``: links, counts)
    and how many features it has, at once; the features, and their Arrow table when a decoder
    converts them, from :meth:`decoded` (a decoder process may still be at work on them).

    With a decoder the features are stubs (``id``, ``collection``, datetimes, ``bbox``) and
    the table holds the items.
    """

    def __init__(
        self,
        head: dict[str, Any],
        count: int,
        features: list[Any] | None = None,
        table: pa.Table | None = None,
        decoding: asyncio.Future[DecodedPage] | None = None,
    ) -> None:
        self.head = head
        self.count = count
        self._features = features if features is not None else []
        self._table = table
        self._decoding = decoding

    @property
    def decoding(self) -> bool:
        """Whether the features are still being decoded."""
        return self._decoding is not None and not self._decoding.done()

    async def decoded(self) -> tuple[list[Any], pa.Table | None]:
        """The features and their table; raises
        :class:`~stacfetch._engine.decoder.InvalidPageContent` when they do not decode."""
        if self._decoding is not None:
            page = await self._decoding
            self._decoding = None
            self._features, self._table = list(page.stubs or ()), page.table
        return self._features, self._table

    async def drop(self) -> None:
        """Stop decoding the features: the page will not be used."""
        if self._decoding is not None:
            self._decoding.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._decoding
            self._decoding = None


async def fetch_page(
    http: HttpSession,
    decoder: DecoderPool | None,
    req: SearchRequest,
    collection: str | None,
    on_retry: Any,
) -> Fetched:
    """One page, handed over as soon as its body is read and its head known; with a decoder
    the features go on decoding in a decoder process (:meth:`Fetched.decoded`).

    Raises :class:`~stacfetch.FetchError` when the answer is not an item search page.

    Example::

        page = await fetch_page(http, pool, req, "c1", on_retry=None)
        nxt = next_request(page.head, req)          # ask for it while this page decodes
        features, table = await page.decoded()
    """
    if decoder is None:
        whole = await http.get_json(req, on_retry=on_retry)
        features = _check_features(whole.get("features"), req)
        return Fetched(whole, len(features), features)

    async def read(content: bytes) -> tuple[bytes, PageHead] | DecodedPage:
        peeked = page_head(content)
        if peeked is None:  # the head cannot be read apart (or the body is not JSON): decode
            return await decoder.decode(content, collection)  # (not JSON: retried by fetch)
        return content, peeked

    answer = await http.fetch(req, read, on_retry=on_retry)
    if isinstance(answer, DecodedPage):
        stubs = _check_features(answer.stubs, req)
        return Fetched(answer.head, len(stubs), stubs, answer.table)
    content, peeked = answer
    _check_features([] if peeked.count is not None else None, req)
    decoding = asyncio.ensure_future(decoder.decode(content, collection, head=False))
    return Fetched(peeked.head, peeked.count or 0, decoding=decoding)


def _check_features(features: Any, req: SearchRequest) -> list[Any]:
    if not isinstance(features, list):
        raise FetchError(
            "the response has no 'features' list: not an item search page",
            request=describe(req),
            error_type="InvalidPage",
        )
    return features


async def in_time(
    fetching: asyncio.Future[Any], seconds: float, retried: Callable[[], bool]
) -> bool:
    """Wait up to ``seconds`` for ``fetching``: False when it had not answered by then (it is
    then cancelled). A request that was retried meanwhile is waited for to its end: its time
    says nothing of the search.

    Example::

        fetching = asyncio.ensure_future(fetch_page(http, None, req, "c1", on_retry=None))
        if await in_time(fetching, 1.5, lambda: False):
            page = await fetching
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
