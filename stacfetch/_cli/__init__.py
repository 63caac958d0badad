"""The ``stacfetch`` command: ``ingest``, ``run`` (a workflow file) and ``demo``.

Usage::

    stacfetch ingest URL -c COLLECTION [-c COLLECTION ...] [--datetime 2024-06]
        [--bbox W,S,E,N] [--intersects FILE_OR_GEOJSON] [--filter CQL2] [--query JSON]
        [--ids A,B] [--sortby -datetime] [--concurrency N] [--chunk-size N] [--limit N]
        [--max-items N] [--retries N] [--timeout S] [--header 'K: V' ...]
        [-o out.parquet] [--progress | --no-progress] [--strict] [-v]
    stacfetch run workflow.yaml [-o out.parquet] [--progress | --no-progress] [--strict] [-v]
    stacfetch demo [--items N] [--out PATH] [--workflow FILE] [--no-flaky] [--no-progress]
    stacfetch --version

Without ``-o`` the result is summarised (rows per collection, columns, time span); with it,
GeoParquet is written by ``Ingestor.to_parquet``: a directory of part files that the same
command resumes after an interruption or failed chunks (``--overwrite`` starts afresh).
See :mod:`stacfetch._workflow` for the workflow file layout.

Exit codes: 0 success; 1 when chunks failed (the output then holds what was fetched, unless
``--strict``) or the server could not be used; 2 for usage and configuration errors (the
message goes to stderr, no traceback, and no request is sent); 130 when interrupted.

Progress bars (one per collection) go to stderr; summaries go to stdout.

The package: :mod:`.parser` builds the argparse parser, :mod:`.commands` holds ``ingest`` and
``run``, :mod:`.demo` the ``demo`` command, :mod:`.execute` runs an Ingestor and prints the
summaries (:mod:`.describe`), :mod:`.common` the exit codes and error output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from .._model.errors import ConfigurationError, StacfetchError
from .commands import cmd_ingest, cmd_run, ingest_kwargs
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, error
from .demo import cmd_demo
from .describe import describe_frame, describe_output
from .parser import build_parser, join_dash_values

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "describe_frame",
    "describe_output",
    "ingest_kwargs",
    "join_dash_values",
    "main",
]

logger = logging.getLogger("stacfetch")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stacfetch`` command line; returns the exit code.

    Example:
        >>> main(["ingest", "https://stac.example.com", "-c", "a", "--bbox", "1,2,3"])
        2
    """
    args_list = join_dash_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler, level = _logging(args.verbose)
    try:
        if args.command == "ingest":
            return cmd_ingest(args)
        if args.command == "run":
            return cmd_run(args)
        return cmd_demo(args)
    except (ConfigurationError, UsageError) as exc:
        error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except StacfetchError as exc:
        error(str(exc), verbose=args.verbose)
        return EXIT_FAILED
    except Exception as exc:  # a bug or an OS error: one line, the traceback with -v
        error(f"{type(exc).__name__}: {exc}", verbose=args.verbose)
        return EXIT_FAILED
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(level)


def _logging(verbose: int) -> tuple[logging.Handler | None, int]:
    """With ``-v``, log stacfetch's INFO records to stderr (``-vv``: DEBUG)."""
    level = logger.level
    if not verbose:
        return None, level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    return handler, level
