"""Run a coroutine to completion from sync code, also inside a running event loop (Jupyter).

Decision (docs/decisions/0002-sync-runner.md): when the calling thread already runs an event
loop (a Jupyter kernel), the coroutine runs on a fresh loop in a worker thread and the caller
waits for it. This needs no patching of asyncio: ``nest_asyncio`` 1.6.0 hangs the next queued
cell on "Run All" with ipykernel 7, and a thread behaves the same on every kernel. Interrupting
the kernel cancels the run cleanly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Box:
    """Holds a result with a cheap repr: on Python 3.11, ``asyncio.run`` formats the repr of
    its main task (result included) when it restores the SIGINT handler, which cost a full
    ``DataFrame.__repr__`` of every ingested GeoDataFrame (0.3-0.5 s for 20,000 rows)."""

    __slots__ = ("value",)
    value: Any

    def __repr__(self) -> str:
        return "<stacfetch result>"


async def _boxed(coro: Coroutine[Any, Any, T]) -> _Box:
    box = _Box()
    box.value = await coro
    return box


def run_sync(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make_coro()`` to completion and return its result.

    Example:
        >>> async def answer() -> int:
        ...     return 42
        >>> run_sync(answer)
        42
    """
    if not _loop_running():
        box: _Box = asyncio.run(_boxed(make_coro()))
        return box.value  # type: ignore[no-any-return]

    result: dict[str, Any] = {}
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def target() -> None:
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        try:
            task = loop.create_task(make_coro())
            holder["task"] = task
            ready.set()
            result["value"] = loop.run_until_complete(task)
        except BaseException as exc:
            result["error"] = exc
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    thread = threading.Thread(target=target, name="stacfetch-runner", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.05)
    except KeyboardInterrupt:
        ready.wait()
        loop, task = holder.get("loop"), holder.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        thread.join()
        raise
    if "error" in result:
        raise result["error"]
    return result["value"]  # type: ignore[no-any-return]
