"""Decode search pages straight to Arrow in helper processes, so both cores work.

For results that end as Arrow (``ingest()``, ``to_parquet()``) the event loop only moves
bytes: each page's body goes to a decoder process (``python -m stacfetch._engine.decoder``) that
parses the JSON and converts the features to an Arrow table; the loop gets back the page
without its features (links, counts), a small stub per feature (id, collection, datetimes:
what exactly-once and remainder splits need) and the table as Arrow IPC, which costs no copy
to open. ``stream()`` yields dicts, so it decodes in the loop's process as before.

Why processes and not threads: decoding and conversion hold the GIL, and on a 2-core machine
they were what bounded ``ingest()`` (docs/decisions/0007-decoder-processes.md). Why our own
children over a pipe and not ``multiprocessing``: a child started with ``-c`` never imports
the user's ``__main__`` (no ``if __name__ == "__main__"`` guard needed in scripts), nothing is
forked from a process with threads (Jupyter), and asyncio reads the pipes without a thread.

Frames, both ways: ``<u32 header length><header JSON><u64 payload length><payload>``. The
request header is ``{"collection": ...}`` and the payload the page body; the answer header is
``{"ok": true, "head": ..., "stubs": [...]}`` (payload: Arrow IPC stream) or
``{"ok": false, "kind": "json" | "convert", "message": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import struct
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from .split import item_box

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DecodedPage",
    "DecoderPool",
    "InvalidPageContent",
    "decode_page",
    "default_decoders",
    "load_object",
    "main",
]

log = logging.getLogger("stacfetch")

_HEAD = struct.Struct("<I")
_BODY = struct.Struct("<Q")
_STUB_PROPS = ("datetime", "start_datetime", "end_datetime")


class InvalidPageContent(Exception):
    """The body is not a JSON object (``kind="json"``), or its features did not convert
    (``kind="convert"``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclasses.dataclass(frozen=True)
class DecodedPage:
    """A search page decoded to Arrow: the page without ``features`` (``head``), one stub per
    feature (``id``, ``collection``, ``properties`` datetimes), and the features as a table
    whose rows follow the stubs. ``stubs`` and ``table`` are None when the page has no
    ``features`` list."""

    head: dict[str, Any]
    stubs: list[dict[str, Any]] | None
    table: pa.Table | None


def _stub(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        return {}
    props = item.get("properties")
    stub: dict[str, Any] = {
        "id": item.get("id"),
        "collection": item.get("collection"),
        "bbox": item_box(item),
    }
    if isinstance(props, dict):
        stub["properties"] = {k: props[k] for k in _STUB_PROPS if k in props}
    return stub


def load_object(content: bytes) -> dict[str, Any]:
    """The JSON object of a response body; :class:`InvalidPageContent` (``"json"``) if not one.

    Example:
        >>> load_object(b'{"links": []}')
        {'links': []}
    """
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise InvalidPageContent("json", f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidPageContent("json", "the response is not a JSON object")
    return data


def decode_page(content: bytes, collection: str | None) -> DecodedPage:
    """Parse a page body and convert its features (``collection`` filled in where missing).

    Raises :class:`InvalidPageContent`. Runs in the decoder processes, and in-process when
    there are none.

    Example:
        >>> body = (b'{"features": [{"type": "Feature", "id": "a", "geometry": null,'
        ...         b' "properties": {"datetime": "2024-01-01T00:00:00Z"}}], "links": []}')
        >>> page = decode_page(body, "c1")
        >>> page.head, page.stubs[0]["collection"], page.table.column("id").to_pylist()
        ({'links': []}, 'c1', ['a'])
    """
    from .._formats.pagejson import page_to_arrow

    fast = page_to_arrow(content, collection)
    if fast is not None:
        return DecodedPage(fast.head, [_stub(item) for item in fast.items], fast.table)
    page = load_object(content)
    features = page.pop("features", None)
    if not isinstance(features, list):
        return DecodedPage(page, None, None)
    features = [f for f in features if isinstance(f, dict)]
    if collection:
        for item in features:
            if not item.get("collection"):
                item["collection"] = collection
    from .._formats.arrow import items_to_arrow

    try:
        table = items_to_arrow(features)
    except Exception as exc:  # reported to the caller as a failed chunk
        raise InvalidPageContent("convert", f"{type(exc).__name__}: {exc}") from None
    return DecodedPage(page, [_stub(f) for f in features], table)


def default_decoders() -> int:
    """How many decoder processes to start when not told: one per core, at most 4.

    Example:
        >>> 1 <= default_decoders() <= 4
        True
    """
    return max(1, min(4, os.cpu_count() or 1))


# --- the child --------------------------------------------------------------------------------


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    if data is None or len(data) < n:
        return None
    return data


def _write_frame(out: BinaryIO, header: dict[str, Any], payload: Any = b"") -> None:
    head = orjson.dumps(header)
    out.write(_HEAD.pack(len(head)))
    out.write(head)
    out.write(_BODY.pack(len(payload)))
    out.write(payload)
    out.flush()


_PIPE_BYTES = 1 << 20
"""The pipe capacity a decoder asks for (Linux's default is 64 KiB, its unprivileged cap 1 MiB):
a 12 MB page then crosses in ~12 writes, each a trip through the event loop, instead of ~200."""


def _widen_pipes(*streams: BinaryIO) -> None:
    """Ask for :data:`_PIPE_BYTES` pipes where the system can (Linux); elsewhere nothing."""
    try:
        import fcntl

        setpipe = fcntl.F_SETPIPE_SZ  # type: ignore[attr-defined,unused-ignore]
    except (ImportError, AttributeError):
        return
    for stream in streams:
        with contextlib.suppress(OSError, ValueError):
            fcntl.fcntl(stream.fileno(), setpipe, _PIPE_BYTES)


def _serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer frames from ``inp`` on ``out`` until ``inp`` closes."""
    import pyarrow as pa

    _widen_pipes(inp, out)

    from .._formats import arrow  # noqa: F401  (imported before saying ready)

    # One page at a time and no cycles: the collector would only walk each page's objects.
    gc.disable()
    _write_frame(out, {"ok": True, "ready": True})
    served = 0
    while True:
        raw = _read_exactly(inp, _HEAD.size)
        if raw is None:
            return
        request = orjson.loads(_read_exactly(inp, _HEAD.unpack(raw)[0]) or b"{}")
        size = _BODY.unpack(_read_exactly(inp, _BODY.size) or b"\0" * 8)[0]
        content = _read_exactly(inp, size) if size else b""
        if content is None:
            return
        try:
            page = decode_page(content, request.get("collection"))
        except InvalidPageContent as exc:
            _write_frame(out, {"ok": False, "kind": exc.kind, "message": exc.message})
            continue
        payload: Any = b""
        if page.table is not None:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, page.table.schema) as writer:
                writer.write_table(page.table)
            payload = memoryview(sink.getvalue())
        _write_frame(out, {"ok": True, "head": page.head, "stubs": page.stubs}, payload)
        del page, content
        served += 1
        if served % 64 == 0:
            gc.collect()


# --- the pool ---------------------------------------------------------------------------------


class _Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def _read_frame(self) -> tuple[dict[str, Any], bytes]:
        assert self.proc.stdout is not None
        read = self.proc.stdout.readexactly
        header = orjson.loads(await read(_HEAD.unpack(await read(_HEAD.size))[0]))
        size = _BODY.unpack(await read(_BODY.size))[0]
        return header, (await read(size) if size else b"")

    async def ready(self) -> None:
        """Wait for the child's first frame, sent once its imports are done."""
        header, _ = await self._read_frame()
        if not header.get("ready"):
            raise ConnectionError("the decoder process did not start")

    async def ask(self, collection: str | None, content: bytes) -> DecodedPage:
        import pyarrow as pa

        assert self.proc.stdin is not None
        head = orjson.dumps({"collection": collection})
        self.proc.stdin.write(_HEAD.pack(len(head)) + head + _BODY.pack(len(content)))
        self.proc.stdin.write(content)
        await self.proc.stdin.drain()
        header, payload = await self._read_frame()
        if not header["ok"]:
            raise InvalidPageContent(header["kind"], header["message"])
        table = pa.ipc.open_stream(pa.py_buffer(payload)).read_all() if payload else None
        return DecodedPage(header["head"], header["stubs"], table)


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
        self.pages_here = 0
        """Pages decoded in this process (no decoder ready, or none left)."""
        self.pages_away = 0
        """Pages decoded by the decoder processes."""

    async def __aenter__(self) -> DecoderPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the processes; until one is ready (~0.5 s), pages are decoded in-process."""
        if self._started:
            return
        self._started = True
        for _ in range(self.size):
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    "from stacfetch._engine.decoder import main; main()",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=2**24,
                )
            except (NotImplementedError, OSError) as exc:
                # e.g. a selector event loop on Windows cannot run subprocesses
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
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            log.warning("a decoder process did not start (%s)", exc)
            self._children.remove(child)
            return
        self._idle.put_nowait(child)

    async def decode(self, content: bytes, collection: str | None) -> DecodedPage:
        """Decode one page body in a free decoder process (in-process if there is none).

        Raises :class:`InvalidPageContent`.
        """
        if self._broken or not self._children or (self._idle.empty() and self._starting):
            # no decoder yet (they take ~0.5 s to import pyarrow): small searches and the
            # first pages of large ones are decoded here meanwhile
            self.pages_here += 1
            return decode_page(content, collection)
        child = await self._idle.get()
        if self._broken:
            self._idle.put_nowait(child)  # wakes the next waiter, which decodes here too
            self.pages_here += 1
            return decode_page(content, collection)
        try:
            page = await child.ask(collection, content)
        except InvalidPageContent:
            self._idle.put_nowait(child)
            raise
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            log.warning("a decoder process failed (%s); decoding in-process from now on", exc)
            self._broken = True
            self._idle.put_nowait(child)
            self.pages_here += 1
            return decode_page(content, collection)
        except BaseException:
            # cancelled mid-frame: the pipe is out of step, so this child is done for
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
            self._broken = True
            self._idle.put_nowait(child)
            raise
        self._idle.put_nowait(child)
        self.pages_away += 1
        return page

    async def aclose(self) -> None:
        """Stop the processes (they exit when their input closes)."""
        for task in list(self._starting):
            task.cancel()
        for child in self._children:
            proc = child.proc
            if proc.stdin is not None:
                with contextlib.suppress(Exception):
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    await proc.wait()
        self._children.clear()


def main() -> None:
    """The decoder process: serve frames on stdin/stdout until stdin closes."""
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        _serve(sys.stdin.buffer, sys.stdout.buffer)
