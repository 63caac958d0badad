"""Process-wide settings a run holds while it goes on: the collector's threshold, socket reads.

Both exist for the CPU of the event loop, which is what bounds a fast fetch on few cores.

**The cyclic garbage collector.** Decoding a 1000-item page creates some 10^5 dicts and lists
at once. With the default threshold (700 net allocations) young collections start in the
middle of every page, walk objects that are all alive, promote them, and the older collections
walk them again. Measured on a 20,000-item ``stream()`` (docs/decisions/0007-decoder-processes.md):
7.2 s of CPU with the default, 2.2 s with the threshold raised, 2.2 s with the collector off.
Pages are mostly freed by reference counting before the raised threshold is reached, so they
are never walked. During a run the young-generation threshold is raised to
:data:`RUN_THRESHOLD` (the collector stays on: cyclic garbage is still collected, a little
later). That is cheap in memory because no page body waits for the collector: the HTTP
session reads bodies itself rather than leaving them on httpx's responses, which sit in
reference cycles (docs/decisions/0012-page-bodies-outside-cycles.md).

**Socket reads.** httpcore reads a response 64 KiB at a time, and every read goes through
anyio, h11 and httpx's byte iterators: a 12 MB page is ~200 trips through the loop. During a
run httpcore reads up to :data:`RUN_READ_BYTES` at a time (asyncio's transports hand over at
most 256 KiB per read anyway): measured on 615 MB of pages from a local server, 2.3-2.7 s of
CPU with 64 KiB reads, 0.7-1.1 s with 256 KiB (docs/decisions/0011-socket-reads-and-pipes.md).
The size of a read changes nothing but the number of reads.

Each setting is process-wide (so is the collector, and httpcore's read size is a class
attribute), counted across nested and concurrent runs, and undone by the last run to end,
unless someone else changed it meanwhile.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpcore

__all__ = ["RUN_READ_BYTES", "RUN_THRESHOLD", "gc_relaxed", "large_reads", "run_settings"]

RUN_THRESHOLD = 4_000_000
"""Net allocations of tracked objects between young collections during a run."""

RUN_READ_BYTES = 256 * 1024
"""Bytes httpcore asks the socket for at a time during a run (its default: 64 KiB)."""


class _Held:
    """A process-wide setting raised while at least one holder is inside; nesting and threads
    are fine; the last holder out restores the value found by the first, unless it changed."""

    def __init__(
        self, get: Callable[[], Any], put: Callable[[Any], None], raised: Callable[[Any], Any]
    ) -> None:
        self._get, self._put, self._raised = get, put, raised
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: Any = None
        self._ours: Any = None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved = self._get()
                self._ours = self._raised(self._saved)
                self._put(self._ours)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._get() == self._ours:
                    self._put(self._saved)


def _set_threshold(values: tuple[int, ...]) -> None:
    gc.set_threshold(*values)


def _read_bytes() -> int | None:
    # None: an httpcore without the attribute, whose reads are left as they are
    size = getattr(httpcore.AsyncHTTP11Connection, "READ_NUM_BYTES", None)
    return size if isinstance(size, int) else None


def _set_read_bytes(size: int | None) -> None:
    if size is not None:
        httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = size


_threshold = _Held(
    gc.get_threshold,
    _set_threshold,
    lambda saved: (max(saved[0], RUN_THRESHOLD), *saved[1:]),
)
_reads = _Held(
    _read_bytes,
    _set_read_bytes,
    lambda saved: None if saved is None else max(saved, RUN_READ_BYTES),
)


def gc_relaxed() -> contextlib.AbstractContextManager[None]:
    """Run the block with the young-generation threshold raised; nesting and threads are fine.

    Example:
        >>> import gc
        >>> before = gc.get_threshold()
        >>> with gc_relaxed():
        ...     gc.get_threshold()[0] >= RUN_THRESHOLD
        True
        >>> gc.get_threshold() == before
        True
    """
    return _threshold.hold()


def large_reads() -> contextlib.AbstractContextManager[None]:
    """Run the block with httpcore reading up to :data:`RUN_READ_BYTES` per socket read.

    Example:
        >>> import httpcore
        >>> with large_reads():
        ...     httpcore.AsyncHTTP11Connection.READ_NUM_BYTES >= RUN_READ_BYTES
        True
    """
    return _reads.hold()


@contextlib.contextmanager
def run_settings() -> Iterator[None]:
    """Both settings, for the length of a run.

    Example:
        >>> with run_settings():
        ...     pass
    """
    with gc_relaxed(), large_reads():
        yield
