"""What every ``stacfetch`` command shares: exit codes, usage errors, error output, --progress."""

from __future__ import annotations

import sys

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "error",
    "progress_option",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command-line value that cannot be used (exit code 2).

    Example:
        >>> str(UsageError("--items: expected a number >= 1, got 0"))
        '--items: expected a number >= 1, got 0'
    """


def error(message: str, *, verbose: int = 0) -> None:
    """Print ``stacfetch: error: message`` to stderr (with ``verbose``: the traceback too).

    Example:
        >>> import contextlib, io
        >>> err = io.StringIO()
        >>> with contextlib.redirect_stderr(err):
        ...     error("no such file")
        >>> err.getvalue()
        'stacfetch: error: no such file\\n'
    """
    print(f"stacfetch: error: {message}", file=sys.stderr)
    if verbose:
        import traceback

        traceback.print_exc(file=sys.stderr)


def progress_option(flag: bool | None) -> bool | str:
    """``--progress``: bars even off a terminal; ``--no-progress``: none; else automatic.

    Example:
        >>> progress_option(None), progress_option(True), progress_option(False)
        ('auto', 'bars', False)
    """
    if flag is None:
        return "auto"
    return "bars" if flag else False
