"""Decoder processes shared by the pages of a run, so both cores work.

Why processes and not threads: decoding and conversion hold the GIL, and on a 2-core machine
they were what bounded ``ingest()`` (docs/decisions/0007-decoder-processes.md). Why our own
children over a pipe and not ``multiprocessing``: a child started with ``-c`` never imports
the user's ``__main__`` (no ``if __name__ == "__main__"`` guard needed in scripts), and nothing
is forked from a process with threads (Jupyter).

The loop talks to each child from one thread of its own, with blocking reads and writes: a
12 MB page crosses a pipe in a few system calls that release the GIL, where the event loop's
pipe transports copied what was left of the frame at every partial write and read (about a
second of the loop's CPU in a 50,000-item run). One thread per child also keeps each pipe in
step: a page whose caller was cancelled still finishes its exchange before the next one starts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import subprocess
import sys
import threading
from typing import Any

import orjson

from .decoder import (
    FRAME_BODY,
    FRAME_HEAD,
    DecodedPage,
    InvalidPageContent,
    decode_page,
    read_exactly,
)

__all__ = ["DecoderPool"]

log = logging.getLogger("stacfetch")

_CHILD = (
    "import importlib.util as u, sys; "
    'sys.modules["stacfetch"] = u.module_from_spec(u.find_spec("stacfetch")); '
    "from stacfetch._engine.decoder import main; main()"
)
"""The decoder process's program. The package's ``__init__`` imports the whole library (httpx,
pydantic, geopandas, Dask's gates: ~0.4 s of CPU per process, twice per run on two cores) and
a decoder needs none of it: the package is registered without running its ``__init__``, and
only the decoder's own modules (pyarrow, orjson, simdjson) are imported."""


def _spawn() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )


class _Child:
    """One decoder process and the thread that talks to it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="stacfetch-decoder"
        )

    def _need(self, n: int) -> bytes:
        assert self.proc.stdout is not None
        data = read_exactly(self.proc.stdout, n)  # type: ignore[arg-type]
        if data is None:
            raise ConnectionError("the decoder process closed its output")
        return data

    def _read_frame(self) -> tuple[dict[str, Any], bytes]:
        header = orjson.loads(self._need(FRAME_HEAD.unpack(self._need(FRAME_HEAD.size))[0]))
        size = FRAME_BODY.unpack(self._need(FRAME_BODY.size))[0]
        return header, (self._need(size) if size else b"")

    def _exchange(
        self, collection: str | None, content: bytes, head: bool
    ) -> tuple[dict[str, Any], bytes]:
        stdin = self.proc.stdin
        assert stdin is not None
        request = orjson.dumps({"collection": collection, "head": head})
        stdin.write(FRAME_HEAD.pack(len(request)) + request + FRAME_BODY.pack(len(content)))
        stdin.write(content)
        stdin.flush()
        return self._read_frame()

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def ready(self) -> None:
        """Wait for the child's first frame, sent once its imports are done."""
        header, _ = await self._call(self._read_frame)
        if not header.get("ready"):
            raise ConnectionError("the decoder process did not start")

    async def ask(self, collection: str | None, content: bytes, head: bool) -> DecodedPage:
        import pyarrow as pa

        header, payload = await self._call(self._exchange, collection, content, head)
        if not header["ok"]:
            raise InvalidPageContent(header["kind"], header["message"])
        table = pa.ipc.open_stream(pa.py_buffer(payload)).read_all() if payload else None
        return DecodedPage(header["head"], header["stubs"], table)

    def stop(self) -> threading.Thread:
        """Close the child's input: it exits on its own (freeing its memory takes it ~0.1 s,
        which no one needs to wait for). A thread reaps it, and kills it if it has not exited
        within 5 s; the thread is returned."""
        proc = self.proc
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()

        def reap() -> None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
            if proc.stdout is not None:
                with contextlib.suppress(Exception):
                    proc.stdout.close()
            self._thread.shutdown(wait=False)

        reaper = threading.Thread(target=reap, name="stacfetch-decoder-reaper", daemon=True)
        reaper.start()
        return reaper


class DecoderPool:
    """Decoder processes shared by the pages of a run; falls back to decoding in-process.

    Example::

        async with DecoderPool(2) as pool:  # stops the processes on exit
            await pool.start()
            page = await pool.decode(body, "sentinel-2-l2a")
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: asyncio.Queue[_Child] = asyncio.Queue()
        self._children: list[_Child] = []
        self._started = False
        self._broken = False
        self._starting: set[asyncio.Task[None]] = set()
        self._reapers: list[threading.Thread] = []
        self.pages_here = 0
        """Pages decoded in this process (no decoder ready, or none left)."""
        self.pages_away = 0
        """Pages decoded by the decoder processes."""

    async def __aenter__(self) -> DecoderPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the processes; until one is ready (~0.3 s), pages are decoded in-process."""
        if self._started:
            return
        self._started = True
        for _ in range(self.size):
            try:
                proc = await asyncio.to_thread(_spawn)
            except OSError as exc:
                log.info("decoding in-process: no decoder process (%s)", exc)
                self._broken = True
                return
            child = _Child(proc)
            self._children.append(child)
            task = asyncio.ensure_future(self._when_ready(child))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def ready(self) -> int:
        """Wait until every process started is ready (or gone); how many are ready."""
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)
        return len(self._children)

    async def _when_ready(self, child: _Child) -> None:
        try:
            await child.ready()
        except (ConnectionError, OSError, ValueError) as exc:
            log.warning("a decoder process did not start (%s)", exc)
            self._children.remove(child)
            self._reapers.append(child.stop())
            return
        self._idle.put_nowait(child)

    async def decode(
        self, content: bytes, collection: str | None, *, head: bool = True
    ) -> DecodedPage:
        """Decode one page body in a free decoder process (in-process if there is none);
        ``head=False``: the page's head may be left out (the caller read it).

        Raises :class:`~stacfetch._engine.decoder.InvalidPageContent`.
        """
        if self._broken or not self._children or (self._idle.empty() and self._starting):
            # no decoder yet (they take ~0.3 s to import pyarrow): small searches and the
            # first pages of large ones are decoded here meanwhile
            self.pages_here += 1
            return decode_page(content, collection, head=head)
        child = await self._idle.get()
        if self._broken:
            self._idle.put_nowait(child)  # wakes the next waiter, which decodes here too
            self.pages_here += 1
            return decode_page(content, collection, head=head)
        try:
            page = await child.ask(collection, content, head)
        except InvalidPageContent:
            self._idle.put_nowait(child)
            raise
        except (ConnectionError, OSError, ValueError) as exc:
            log.warning("a decoder process failed (%s); decoding in-process from now on", exc)
            self._broken = True
            self._idle.put_nowait(child)
            self.pages_here += 1
            return decode_page(content, collection, head=head)
        except BaseException:
            # cancelled: the child's thread still finishes this exchange before its next one,
            # so the child stays usable
            self._idle.put_nowait(child)
            raise
        self._idle.put_nowait(child)
        self.pages_away += 1
        return page

    async def aclose(self) -> None:
        """Stop the processes (they exit when their input closes; :meth:`join` waits)."""
        for task in list(self._starting):
            task.cancel()
        self._reapers += [child.stop() for child in self._children]
        self._children.clear()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the processes stopped by :meth:`aclose` have exited; whether they did."""
        for reaper in self._reapers:
            reaper.join(timeout)
        return not any(reaper.is_alive() for reaper in self._reapers)
