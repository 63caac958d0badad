"""Decode one search page to Arrow: what a decoder process runs (and the loop's process, when
there is none).

For results that end as Arrow (``ingest()``, ``to_parquet()``) the event loop only moves
bytes: each page's body goes to a decoder process (:mod:`.decoder_pool` starts and feeds them)
that parses the JSON and converts the features to an Arrow table; the loop gets back the page
without its features (links, counts), a small stub per feature (id, collection, datetimes:
what exactly-once and remainder splits need) and the table as Arrow IPC, which costs no copy
to open. ``stream()`` yields dicts, so it decodes in the loop's process.

Frames, both ways: ``<u32 header length><header JSON><u64 payload length><payload>``. The
request header is ``{"collection": ..., "head": true | false}`` and the payload the page body;
the answer header is ``{"ok": true, "head": ..., "stubs": [...]}`` (payload: Arrow IPC stream) or
``{"ok": false, "kind": "json" | "convert", "message": ...}``.
"""

from __future__ import annotations

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
    "FRAME_BODY",
    "FRAME_HEAD",
    "DecodedPage",
    "InvalidPageContent",
    "decode_page",
    "default_decoders",
    "load_object",
    "main",
    "read_exactly",
]

log = logging.getLogger("stacfetch")

FRAME_HEAD = struct.Struct("<I")
"""A frame's header length."""
FRAME_BODY = struct.Struct("<Q")
"""A frame's payload length."""
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


def decode_page(content: bytes, collection: str | None, *, head: bool = True) -> DecodedPage:
    """Parse a page body and convert its features (``collection`` filled in where missing).

    ``head=False``: the caller has the page's head (:func:`~.pages.fetch_page` reads it as
    the body arrives), and the page's own may be left out (an empty ``head``).
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

    fast = page_to_arrow(content, collection, head=head)
    if fast is not None:  # its items are small dicts already: made stubs in place
        for item in fast.items:
            item["bbox"] = item_box(item)
            item.pop("geometry", None)
        return DecodedPage(fast.head, fast.items, fast.table)
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


def read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    """``n`` bytes from ``stream``, or None when it ends first."""
    data = stream.read(n)
    if data is None or len(data) < n:
        return None
    return data


def _write_frame(out: BinaryIO, header: dict[str, Any], payload: Any = b"") -> None:
    head = orjson.dumps(header)
    out.write(FRAME_HEAD.pack(len(head)))
    out.write(head)
    out.write(FRAME_BODY.pack(len(payload)))
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
        raw = read_exactly(inp, FRAME_HEAD.size)
        if raw is None:
            return
        request = orjson.loads(read_exactly(inp, FRAME_HEAD.unpack(raw)[0]) or b"{}")
        size = FRAME_BODY.unpack(read_exactly(inp, FRAME_BODY.size) or b"\0" * 8)[0]
        content = read_exactly(inp, size) if size else b""
        if content is None:
            return
        try:
            page = decode_page(content, request.get("collection"), head=request.get("head", True))
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


def main() -> None:
    """The decoder process: serve frames on stdin/stdout until stdin closes."""
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        _serve(sys.stdin.buffer, sys.stdout.buffer)
