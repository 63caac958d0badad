"""Keep Python's cyclic garbage collector from walking every page while a run goes on.

Decoding a 1000-item page creates some 10^5 dicts and lists at once. With the default
threshold (700 net allocations) young collections start in the middle of every page, walk
objects that are all alive, promote them, and the older collections walk them again. Measured
on a 20,000-item ``stream()`` (docs/decisions/0007-decoder-processes.md): 7.2 s of CPU with
the default, 2.2 s with the threshold raised, 2.2 s with the collector off. Pages are mostly
freed by reference counting before the raised threshold is reached, so they are never walked.

During a run the young-generation threshold is raised to :data:`RUN_THRESHOLD` (the collector
stays on: cyclic garbage is still collected, a little later). The change is process-wide (so
is the collector), counted across nested and concurrent runs, and undone by the last run to
end, unless someone else changed the thresholds meanwhile.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["RUN_THRESHOLD", "gc_relaxed"]

RUN_THRESHOLD = 400_000
"""Net allocations of tracked objects between young collections during a run."""

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = ()
_ours: tuple[int, ...] = ()


@contextlib.contextmanager
def gc_relaxed() -> Iterator[None]:
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
    global _depth, _saved, _ours
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            _ours = (max(_saved[0], RUN_THRESHOLD), *_saved[1:])
            gc.set_threshold(*_ours)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and gc.get_threshold() == _ours:
                gc.set_threshold(*_saved)
