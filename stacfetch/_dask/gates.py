"""The cluster-wide request budget of a Dask run (worker side; see :mod:`stacfetch._dask.driver`).

Every HTTP request of every task holds a lease of a ``distributed.Semaphore`` with
``max_leases=concurrency``, one per server origin and run. A 429 (or throttling 403) seen by
any task publishes a pause-until time for that origin in a ``distributed.Variable``; every task
reads it (at most every :data:`PAUSE_POLL` seconds) before taking a lease, so the whole cluster
backs off, not only the task that was told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from .._engine.http import AdaptiveLimiter, HttpSession, origin_of
from .._model.config import RetryConfig
from .._model.errors import ConfigurationError

__all__ = [
    "PAUSE_POLL",
    "THROTTLE_PAUSE",
    "Gate",
    "GateSpec",
    "GatedLimiter",
    "GatedSession",
    "Gates",
    "PauseBoard",
    "distributed_module",
]

logger = logging.getLogger("stacfetch")

PAUSE_POLL = 0.25
"""Seconds a task trusts its last reading of the cluster-wide pause board."""

THROTTLE_PAUSE = 1.0
"""Cluster-wide pause (seconds) after a throttling answer that named no ``Retry-After``."""


class GateSpec(Protocol):
    """What the gates need to know of a run."""

    @property
    def concurrency(self) -> int: ...

    @property
    def pause_name(self) -> str: ...

    def semaphore_name(self, origin: str) -> str: ...


def distributed_module() -> Any:
    """The ``distributed`` module (imported on first use only; typed loosely on purpose)."""
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "Dask support needs the optional extra: pip install 'stacfetch[dask]'"
        ) from exc
    return distributed


class PauseBoard:
    """The run's ``distributed.Variable`` of ``{origin: pause-until (UNIX time)}``, cached."""

    def __init__(self, variable: Any) -> None:
        self._variable = variable
        self._value: dict[str, float] = {}
        self._read_at = -1e9
        self._lock = asyncio.Lock()
        self._writes: set[asyncio.Future[Any]] = set()

    def _get(self) -> dict[str, float]:
        value = self._variable.get(timeout=10)
        return dict(value) if isinstance(value, Mapping) else {}

    async def remaining(self, origin: str, *, max_age: float = PAUSE_POLL) -> float:
        """Seconds until the cluster-wide pause of ``origin`` ends (0 when none)."""
        async with self._lock:
            if time.monotonic() - self._read_at > max_age:
                try:
                    fresh = await asyncio.to_thread(self._get)
                except Exception as exc:  # the board is advisory: never fail a chunk over it
                    logger.debug("stacfetch: pause board unreadable: %r", exc)
                    fresh = {}
                for key, until in fresh.items():
                    self._value[key] = max(until, self._value.get(key, 0.0))
                self._read_at = time.monotonic()
        return max(0.0, self._value.get(origin, 0.0) - time.time())

    def pause(self, origin: str, seconds: float) -> None:
        """Publish a pause of ``origin`` for every task of the run (in the background)."""
        until = time.time() + seconds
        self._value[origin] = max(until, self._value.get(origin, 0.0))

        def publish() -> None:
            board = self._get()
            if board.get(origin, 0.0) < until:
                board[origin] = until
                self._variable.set(board)

        async def run() -> None:
            try:
                await asyncio.to_thread(publish)
            except Exception as exc:
                logger.debug("stacfetch: could not publish a pause: %r", exc)

        self.track(asyncio.get_running_loop().create_task(run()))

    def track(self, task: asyncio.Future[Any]) -> None:
        """Keep a background call alive until :meth:`flush`."""
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Wait for pauses still being published."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


class Gate:
    """One origin's cluster-wide semaphore, honouring the run's pause board."""

    def __init__(self, origin: str, semaphore: Any, board: PauseBoard) -> None:
        self.origin = origin
        self._semaphore = semaphore
        self._board = board

    async def _acquire(self) -> None:
        pending = asyncio.ensure_future(asyncio.to_thread(self._semaphore.acquire))
        try:
            await asyncio.shield(pending)
        except asyncio.CancelledError:
            # the thread may still get the lease: hand it back as soon as it does
            def give_back(fut: asyncio.Future[Any]) -> None:
                if not fut.cancelled() and fut.exception() is None and fut.result():
                    self._board.track(
                        asyncio.ensure_future(asyncio.to_thread(self._semaphore.release))
                    )

            pending.add_done_callback(give_back)
            raise

    async def _release(self) -> None:
        await asyncio.shield(asyncio.ensure_future(asyncio.to_thread(self._semaphore.release)))

    async def enter(self) -> None:
        """Wait out any cluster-wide pause, then take a lease."""
        while True:
            wait = await self._board.remaining(self.origin)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._acquire()
            if await self._board.remaining(self.origin) <= 0:
                return
            await self._release()  # a pause began while we queued for the lease

    async def leave(self) -> None:
        """Hand the lease back."""
        await self._release()

    def throttled(self, seconds: float | None) -> None:
        """The server throttled us: pause the whole cluster for this origin."""
        self._board.pause(self.origin, seconds or THROTTLE_PAUSE)


class Gates:
    """The gates of one task, made on the task's thread (where Dask's worker is known)."""

    def __init__(self, spec: GateSpec) -> None:
        distributed = distributed_module()
        self._spec = spec
        self._worker = distributed.get_worker()
        client = distributed.get_client()
        self.board = PauseBoard(distributed.Variable(spec.pause_name, client=client))
        self._gates: dict[str, Gate] = {}
        self._semaphores: list[Any] = []

    @property
    def worker(self) -> str:
        return str(self._worker.address)

    def gate(self, origin: str) -> Gate:
        if origin not in self._gates:
            semaphore = distributed_module().Semaphore(
                max_leases=self._spec.concurrency,
                name=self._spec.semaphore_name(origin),
                scheduler_rpc=self._worker.scheduler,
                loop=self._worker.loop,
            )
            self._semaphores.append(semaphore)
            self._gates[origin] = Gate(origin, semaphore, self.board)
        return self._gates[origin]

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(self._gates)

    def close(self) -> None:
        """Stop the lease-refresh callbacks (leases are all released by now)."""
        for semaphore in self._semaphores:
            callback = getattr(semaphore, "refresh_callback", None)
            if callback is not None:
                self._worker.loop.add_callback(callback.stop)


class GatedLimiter(AdaptiveLimiter):
    """The per-host limiter of a task, plus the cluster-wide gate of that host."""

    def __init__(self, max_limit: int, gate: Gate) -> None:
        super().__init__(max_limit)
        self.gate = gate

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with super().slot():
            await self.gate.enter()
            try:
                yield
            finally:
                await self.gate.leave()

    def on_throttle(self, retry_after: float | None) -> None:
        super().on_throttle(retry_after)
        self.gate.throttled(retry_after)


class GatedSession(HttpSession):
    """An :class:`HttpSession` whose every request holds a cluster-wide lease."""

    def __init__(self, gates: Gates, retry: RetryConfig, **kwargs: Any) -> None:
        super().__init__(retry, **kwargs)
        self._gates = gates

    def limiter(self, url: str) -> AdaptiveLimiter:
        origin = origin_of(url)
        if origin not in self.limiters:
            self.limiters[origin] = GatedLimiter(self.max_concurrency, self._gates.gate(origin))
        return self.limiters[origin]
