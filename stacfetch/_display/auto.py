"""The progress chooser: which front end draws a run, picked from ``progress=``.

Like tqdm's ``autonotebook``, this module sits on top of the renderers and picks one:

* :class:`~stacfetch._display.notebook.NotebookProgress`: ipywidgets bars in a Jupyter kernel,
* :class:`~stacfetch._display.terminal.TerminalProgress`: tqdm bars on a terminal,
* nothing at all in scripts whose stderr is not a terminal (logs, CI).

:func:`make_progress` picks one from the ``progress=`` argument users pass to ``ingest()``;
:func:`check_progress` only validates that argument. The renderers themselves share the base
in :mod:`stacfetch._display.base` and never import this module.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._model.errors import ConfigurationError
from .._model.events import Event, EventSink
from .base import ProgressRenderer

if TYPE_CHECKING:
    from .._model.failures import FailureCollector

__all__ = [
    "PROGRESS_CHOICES",
    "check_progress",
    "in_jupyter_kernel",
    "make_progress",
]

logger = logging.getLogger("stacfetch")

PROGRESS_CHOICES = ("auto", "widgets", "notebook", "bars", "terminal", "tqdm", True, False, None)
"""Valid values of the ``progress`` argument (besides any object with ``emit``)."""


class _SinkRenderer:
    """Gives a plain :class:`EventSink` the renderer shape (``close`` calls its own if any)."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    def emit(self, event: Event) -> None:
        self.sink.emit(event)

    def close(self) -> None:
        close = getattr(self.sink, "close", None)
        if callable(close):
            close()


# -- environment detection -------------------------------------------------------------------
def in_jupyter_kernel() -> bool:
    """True when running inside a Jupyter kernel (an IPython ``ZMQInteractiveShell``).

    IPython is not imported for the check: a kernel has always imported it already.

    Example:
        >>> in_jupyter_kernel()
        False
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and any(
        cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__
    )


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _stderr_is_tty() -> bool:
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def _need(module: str, extra: str, progress: object) -> None:
    if not _importable(module):
        raise ConfigurationError(
            f"progress={progress!r} needs {module}, which is not installed; "
            f"install it with: pip install 'stacfetch[{extra}]'"
        )


def make_progress(
    progress: bool | str | EventSink | None = "auto",
    *,
    on_retry: Callable[[], object] | None = None,
    failures: FailureCollector | None = None,
) -> ProgressRenderer | None:
    """Pick the progress front end for ``progress``; ``None`` means "draw nothing".

    * ``"auto"`` (default): ipywidgets in a Jupyter kernel (when ipywidgets is installed),
      tqdm bars when stderr is a terminal, nothing otherwise;
    * ``"widgets"`` / ``"notebook"``: ipywidgets (displayed at once, in the calling cell);
    * ``"bars"`` / ``"terminal"`` / ``"tqdm"``: tqdm bars on stderr;
    * ``True``: like ``"auto"`` but never nothing (falls back to tqdm bars);
    * ``False`` / ``None``: nothing;
    * any object with ``emit(event)``: used as is (``close()`` is called if it has one).

    ``on_retry`` is what the notebook's "Retry failed" button calls; ``failures`` is the
    run's collector, shown by the notebook's failure table.

    Call this on the thread that owns the notebook cell (the kernel thread), before the
    engine starts: the widgets are displayed here, and only updated later.

    Example:
        >>> make_progress(False) is None
        True
        >>> make_progress("sparkles")
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: progress: expected one of 'auto', 'widgets', \
'notebook', 'bars', 'terminal', 'tqdm', True, False, None or an object with emit(event), \
got 'sparkles'
    """
    check_progress(progress)
    if progress is None or progress is False:
        return None
    if isinstance(progress, str):
        choice = progress.strip().lower()
        if choice == "auto":
            return _auto(on_retry, failures, fallback=False)
        if choice in _WIDGETS:
            return _widgets(on_retry, failures)
        return _bars()  # check_progress let only the bars' names through
    if progress is True:
        return _auto(on_retry, failures, fallback=True)
    if isinstance(progress, ProgressRenderer):
        return progress
    assert isinstance(progress, EventSink)
    return _SinkRenderer(progress)


_WIDGETS = ("widgets", "notebook")
_BARS = ("bars", "terminal", "tqdm")


def check_progress(progress: object) -> None:
    """Raise :class:`~stacfetch.ConfigurationError` unless ``progress`` is a valid value.

    Builds and displays nothing (unlike :func:`make_progress`), so it suits constructors.

    Example:
        >>> check_progress("bars")
        >>> check_progress("sparkles")
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: progress: expected one of 'auto', 'widgets', \
'notebook', 'bars', 'terminal', 'tqdm', True, False, None or an object with emit(event), \
got 'sparkles'
    """
    if progress is None or isinstance(progress, (bool, EventSink)):
        return
    if isinstance(progress, str):
        choice = progress.strip().lower()
        if choice == "auto":
            return
        if choice in _WIDGETS:
            return _need("ipywidgets", "notebook", progress)
        if choice in _BARS:
            return _need("tqdm", "terminal", progress)
    valid = ", ".join(repr(c) for c in PROGRESS_CHOICES)
    raise ConfigurationError(
        f"progress: expected one of {valid} or an object with emit(event), got {progress!r}"
    )


def _auto(
    on_retry: Callable[[], object] | None,
    failures: FailureCollector | None,
    *,
    fallback: bool,
) -> ProgressRenderer | None:
    if in_jupyter_kernel() and _importable("ipywidgets"):
        return _widgets(on_retry, failures)
    if _importable("tqdm") and (fallback or _stderr_is_tty()):
        return _bars()
    if fallback:
        _need("tqdm", "terminal", True)
    return None


def _widgets(
    on_retry: Callable[[], object] | None, failures: FailureCollector | None
) -> ProgressRenderer | None:
    from .notebook import NotebookProgress

    try:
        return NotebookProgress(on_retry=on_retry, failures=failures)
    except Exception:  # e.g. ipykernel 7.0.x, built off the kernel thread: no progress, no crash
        logger.warning("stacfetch: could not display the progress widgets", exc_info=True)
        return None


def _bars() -> ProgressRenderer:
    from .terminal import TerminalProgress

    return TerminalProgress()
