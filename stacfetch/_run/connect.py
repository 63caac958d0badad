"""The one place an HTTP session and a fetch engine are built, from a :class:`~.run.Connection`.

Every path goes through :func:`open_engine`: the local run, the Dask driver's planning and
every Dask task (with its own session class and split policy). So ``concurrency``, ``retry``
and ``headers`` travel one way: ``Ingestor(...)`` -> ``IngestConfig`` -> ``Run`` ->
``Connection`` -> ``HttpSession`` (limiter, retry policy, credentials) and ``FetchEngine``
(workers; discovery reads headers and retry from the session).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._engine.decoder_pool import DecoderPool
from .._engine.fetch import FetchEngine
from .._engine.http import HttpSession
from .._engine.search import ApiInfo
from .._engine.splitting import Splitter
from .._engine.tuning import run_settings
from .._model.config import RetryConfig
from .._model.events import EventSink
from .._model.failures import FailureCollector
from .run import Connection

__all__ = ["open_engine"]

SessionFactory = Callable[..., HttpSession]


@contextlib.asynccontextmanager
async def open_engine(
    conn: Connection,
    *,
    sink: EventSink,
    failures: FailureCollector,
    catalogs: dict[str, tuple[ApiInfo, Any]],
    decoder: DecoderPool | None = None,
    session: SessionFactory = HttpSession,
    workers: int | None = None,
    max_concurrency: int | None = None,
    splitter: Splitter | None = None,
) -> AsyncIterator[FetchEngine]:
    """An engine over a fresh HTTP session (closed on exit); ``engine.http`` is the session.

    While it is open the process holds the run settings of :mod:`stacfetch._engine.tuning`
    (the collector's raised threshold, larger socket reads).

    ``workers`` / ``max_concurrency`` default to ``conn.concurrency`` (a Dask task runs one
    worker over a small session of its own, gated cluster-wide by ``session``).

    Example::

        async with open_engine(run.connection(), sink=sink, failures=run.failures,
                               catalogs=run.catalogs) as engine:
            async for out in engine.stream(run.tasks()):
                ...
    """
    retry: RetryConfig = conn.retry
    with run_settings():
        async with session(
            retry,
            max_concurrency=max_concurrency or conn.concurrency,
            headers=conn.headers,
            request_modifier=conn.request_modifier,
            trusted_origins=set(conn.trusted_origins),
        ) as http:
            count = workers or conn.concurrency
            yield FetchEngine(
                http,
                sink=sink,
                failures=failures,
                workers=count,
                limit=conn.limit,
                chunk_size=conn.chunk_size,
                max_chunk=conn.max_chunk,
                modifier=conn.modifier,
                max_items=conn.max_items,
                catalogs=catalogs,
                decoder=decoder,
                splitter=splitter or Splitter(workers=count, sink=sink),
            )
