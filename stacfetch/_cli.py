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
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from ._model.errors import ConfigurationError, IncompleteIngestError, StacfetchError

__all__ = ["build_parser", "describe_frame", "describe_output", "main"]

logger = logging.getLogger("stacfetch")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEMO_OUT = "stacfetch-demo.parquet"
_DASH_VALUES = ("--bbox", "--sortby")
"""Options whose value may start with '-' (``--bbox -10,35,30,60``, ``--sortby -datetime``)."""

_EPILOG = """\
examples:
  stacfetch ingest https://earth-search.aws.element84.com/v1 -c sentinel-2-l2a -c landsat-c2-l2 \\
      --datetime 2024-06 --bbox 5.9,45.8,10.5,47.8 -o alps.parquet
  stacfetch run workflow.yaml
  stacfetch demo

exit codes: 0 ok, 1 chunks failed, 2 usage or configuration error
"""


class _UsageError(Exception):
    """A command-line value that cannot be used (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stacfetch`` command.

    Example:
        >>> args = build_parser().parse_args(["ingest", "https://x.org/stac", "-c", "a"])
        >>> args.command, args.url, args.collection
        ('ingest', 'https://x.org/stac', ['a'])
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="stacfetch",
        description="Fetch every STAC item of a search, fast and exactly once.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stacfetch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = sub.add_parser(
        "ingest",
        help="fetch the items of one or more collections of a STAC API",
        description="Fetch every item of a search, one pipeline per collection, in parallel.",
    )
    ingest.add_argument("url", metavar="URL", help="root URL of the STAC API")
    ingest.add_argument(
        "-c",
        "--collection",
        action="append",
        metavar="COLLECTION",
        help="collection id (repeat, or separate with commas); one matrix entry each",
    )
    flt = ingest.add_argument_group("search filters")
    flt.add_argument("--datetime", help="e.g. 2024-06, 2024-01-01/2024-03-31, ../2020")
    flt.add_argument("--bbox", metavar="W,S,E,N", help="west,south,east,north in degrees")
    flt.add_argument(
        "--intersects", metavar="FILE_OR_GEOJSON", help="GeoJSON geometry: a file or inline"
    )
    flt.add_argument(
        "--filter", metavar="CQL2", help="CQL2-text, or CQL2-JSON (inline, starting with '{')"
    )
    flt.add_argument(
        "--query", metavar="JSON", help='query extension, e.g. \'{"gsd": {"lt": 20}}\''
    )
    flt.add_argument("--ids", metavar="A,B", help="item ids, comma-separated")
    flt.add_argument("--sortby", metavar="FIELDS", help="e.g. -datetime or +id")
    run_opts = ingest.add_argument_group("fetching")
    run_opts.add_argument("--concurrency", type=int, metavar="N", help="parallel requests")
    run_opts.add_argument("--chunk-size", type=int, metavar="N", help="target items per chunk")
    run_opts.add_argument("--limit", type=int, metavar="N", help="page size asked of the server")
    run_opts.add_argument("--max-items", type=int, metavar="N", help="stop after N per collection")
    run_opts.add_argument("--retries", type=int, metavar="N", help="retries per request")
    run_opts.add_argument("--timeout", type=float, metavar="S", help="read timeout in seconds")
    run_opts.add_argument(
        "--decoders",
        type=int,
        metavar="N",
        help="processes decoding pages to Arrow (default: one per core, at most 4; 0: none)",
    )
    run_opts.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="HTTP header for every request (repeatable)",
    )
    _output_options(ingest)

    run = sub.add_parser(
        "run",
        help="run a workflow file (strategy.matrix + ingest config)",
        description="Run a workflow file: a strategy.matrix plus the ingest config (YAML/JSON).",
    )
    run.add_argument("workflow", metavar="WORKFLOW", help="a .yaml, .yml or .json file")
    _output_options(run)

    demo = sub.add_parser(
        "demo",
        help="offline demo: a local STAC API with bundled items, a two-collection ingest",
        description=(
            "Start a local STAC API on 127.0.0.1 serving sample items shipped with stacfetch, "
            "fetch both collections in parallel with progress, write GeoParquet and print a "
            "summary. No network needed."
        ),
    )
    demo.add_argument("--items", type=int, metavar="N", help="serve N items (default: all)")
    demo.add_argument(
        "--out",
        metavar="PATH",
        help=f"GeoParquet output, replaced if it exists (default: {DEMO_OUT})",
    )
    demo.add_argument(
        "--workflow",
        metavar="FILE",
        help="run this workflow file against the demo server instead (its "
        "${STACFETCH_CATALOG_URL} is the server's URL)",
    )
    demo.add_argument(
        "--flaky",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pages of items within May-July 2023 fail once (503) before they are served, to "
        "show the retries (default: on)",
    )
    demo.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bars"
    )
    demo.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    return parser


def _output_options(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o", "--output", metavar="PATH", help="write GeoParquet there (default: print a summary)"
    )
    out.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
    out.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the chunks on this Dask scheduler (pip install 'stacfetch[dask]'); "
        "-o must be a path every worker can write",
    )
    out.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier stacfetch output at -o (default: resume it, fetching only "
        "what is missing)",
    )
    out.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1, no result summary) if any chunk failed; with -o the partial "
        "output stays, marked incomplete",
    )
    out.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")


def _join_dash_values(argv: Sequence[str]) -> list[str]:
    """``--bbox -10,35,30,60`` -> ``--bbox=-10,35,30,60`` (argparse takes it for an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if (
            token in _DASH_VALUES
            and nxt is not None
            and nxt.startswith("-")
            and len(nxt) > 1
            and not nxt.startswith("--")
            and not (len(nxt) == 2 and nxt[1].isalpha())
        ):
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stacfetch`` command line; returns the exit code.

    Example:
        >>> main(["ingest", "https://stac.example.com", "-c", "a", "--bbox", "1,2,3"])
        2
    """
    args_list = _join_dash_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler, level = _logging(args.verbose)
    try:
        if args.command == "ingest":
            return _cmd_ingest(args)
        if args.command == "run":
            return _cmd_run(args)
        return _cmd_demo(args)
    except (ConfigurationError, _UsageError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except StacfetchError as exc:
        _error(str(exc), verbose=args.verbose)
        return EXIT_FAILED
    except Exception as exc:  # a bug or an OS error: one line, the traceback with -v
        _error(f"{type(exc).__name__}: {exc}", verbose=args.verbose)
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


def _error(message: str, *, verbose: int = 0) -> None:
    print(f"stacfetch: error: {message}", file=sys.stderr)
    if verbose:
        import traceback

        traceback.print_exc(file=sys.stderr)


def _progress(flag: bool | None) -> bool | str:
    """``--progress``: bars even off a terminal; ``--no-progress``: none; else automatic."""
    if flag is None:
        return "auto"
    return "bars" if flag else False


# -- ingest ------------------------------------------------------------------------------------
def _cmd_ingest(args: argparse.Namespace) -> int:
    from ._ingestor import Ingestor

    ing = Ingestor(args.url, **_ingest_kwargs(args))
    return _execute(ing, args.output, overwrite=args.overwrite, dask=args.dask)


def _ingest_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Ingestor keyword arguments from the ``ingest`` options (parsing only; it validates)."""
    collections = [c.strip() for value in args.collection or [] for c in value.split(",")]
    collections = [c for c in collections if c]
    if not collections:
        raise _UsageError("give at least one collection: -c COLLECTION (repeatable)")
    kwargs: dict[str, Any] = {
        "collections": collections,
        "datetime": args.datetime,
        "bbox": args.bbox,
        "intersects": _intersects(args.intersects) if args.intersects else None,
        "filter": _filter(args.filter) if args.filter is not None else None,
        "query": _json_object(args.query, "--query") if args.query is not None else None,
        "ids": args.ids,
        "sortby": args.sortby,
        "limit": args.limit,
        "max_items": args.max_items,
        "headers": _headers(args.header) or None,
        "progress": _progress(args.progress),
        "strict": args.strict,
        "decoders": args.decoders,
    }
    concurrency = {"workers": args.concurrency, "chunk_size": args.chunk_size}
    if any(v is not None for v in concurrency.values()):
        kwargs["concurrency"] = {k: v for k, v in concurrency.items() if v is not None}
    retry = {"max_retries": args.retries, "timeout": args.timeout}
    if any(v is not None for v in retry.values()):
        kwargs["retry"] = {k: v for k, v in retry.items() if v is not None}
    return kwargs


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _UsageError(f"{option}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise _UsageError(f"{option}: expected a JSON object, got {type(value).__name__}")
    return value


def _filter(text: str) -> dict[str, Any] | str:
    """CQL2-JSON when the value starts with ``{``, else CQL2-text."""
    if text.lstrip().startswith("{"):
        return _json_object(text, "--filter")
    return text


def _intersects(value: str) -> dict[str, Any]:
    """A GeoJSON geometry from a file or inline text (Feature / FeatureCollection unwrapped)."""
    text = value.strip()
    if not text.startswith("{"):
        try:
            with open(os.path.expanduser(text), encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise _UsageError(
                f"--intersects: {value!r} is neither inline GeoJSON nor a readable file "
                f"({exc.strerror or exc})"
            ) from None
    geo = _json_object(text, "--intersects")
    if geo.get("type") == "FeatureCollection":
        geoms: list[dict[str, Any]] = []
        for feature in geo.get("features") or []:
            geometry = feature.get("geometry") if isinstance(feature, dict) else None
            if isinstance(geometry, dict):
                geoms.append(geometry)
        if len(geoms) == 1:
            return dict(geoms[0])
        if geoms and all(g.get("type") in ("Polygon", "MultiPolygon") for g in geoms):
            polygons: list[Any] = []
            for g in geoms:
                coords = g.get("coordinates") or []
                polygons.extend([coords] if g["type"] == "Polygon" else coords)
            return {"type": "MultiPolygon", "coordinates": polygons}
        raise _UsageError(
            f"--intersects: the FeatureCollection holds {len(geoms)} geometries; give one "
            "geometry (or only polygons, which are combined)"
        )
    if geo.get("type") == "Feature":
        geometry = geo.get("geometry")
        if not isinstance(geometry, dict):
            raise _UsageError("--intersects: the Feature has no geometry")
        return dict(geometry)
    return geo


def _headers(values: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise _UsageError(f"--header: expected 'Name: value', got {value!r}")
        headers[name.strip()] = text.strip()
    return headers


# -- run ---------------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from ._ingestor import Ingestor
    from ._workflow import load_workflow

    spec = load_workflow(args.workflow)
    kwargs = spec.ingestor_kwargs()
    if args.progress is not None:
        kwargs["progress"] = _progress(args.progress)
    elif kwargs["progress"] in ("auto", "widgets", "notebook"):
        kwargs["progress"] = "auto"  # a terminal command: bars on a terminal, never widgets
    ing = Ingestor(**kwargs, strict=args.strict)
    if spec.name:
        print(f"stacfetch: running workflow {spec.name!r} ({len(ing.entries)} entries)")
    return _execute(ing, args.output or spec.output, overwrite=args.overwrite, dask=args.dask)


# -- shared ------------------------------------------------------------------------------------
def _execute(
    ing: Any,
    output: str | os.PathLike[str] | None,
    *,
    overwrite: bool = False,
    dask: str | None = None,
) -> int:
    """Run ``ing`` to GeoParquet (``output``) or a GeoDataFrame; print the summaries."""
    from ._display.terminal import format_summary

    path: Any = None
    frame: Any = None
    try:
        if dask and not output:
            _error("--dask needs -o/--output: the workers write the GeoParquet parts there")
            return EXIT_USAGE
        if output:
            extra = {"client": dask} if dask else {}
            path = ing.to_parquet(output, overwrite=overwrite, **extra)
        else:
            frame = ing.ingest()
    except IncompleteIngestError:
        print(format_summary(ing.tracker, ing.failures))
        if output:
            _error(
                f"{_failed(ing)}; {output} is incomplete (--strict); run the same command "
                "again to fetch only what is missing"
            )
        else:
            _error(f"{_failed(ing)} (--strict: no result)")
        return EXIT_FAILED
    print(format_summary(ing.tracker, ing.failures))
    if path is not None:
        fetched = sum(p.items for p in ing.tracker.entries.values())
        print(describe_output(path, fetched))
    elif frame is not None:
        print(describe_frame(frame))
    if ing.failures:
        hint = "; run the same command again to fetch only what is missing" if output else ""
        _error(f"{_failed(ing)}; the result is incomplete{hint}")
        return EXIT_FAILED
    return EXIT_OK


def _failed(ing: Any) -> str:
    n = len(ing.failures)
    return f"{n} {'chunk' if n == 1 else 'chunks'} failed"


def describe_output(path: str | os.PathLike[str], fetched: int | None = None) -> str:
    """One line about a GeoParquet output (a file or a directory of parts): items per collection.

    ``fetched`` is how many items this run wrote; when the output holds more (a resumed run),
    both numbers are given.

    Example:
        >>> import tempfile, geopandas
        >>> from shapely.geometry import Point
        >>> out = tempfile.mkdtemp()
        >>> geopandas.GeoDataFrame({"collection": ["a", "a", "b"]}, geometry=[Point(0, 0)] * 3,
        ...                        crs=4326).to_parquet(f"{out}/part-0.parquet")
        >>> describe_output(out, 3).replace(out, "OUT")
        'wrote 3 items to OUT (a 2, b 1)'
    """
    from pathlib import Path

    import pyarrow.parquet as pq

    root = Path(path)
    files = [root] if root.is_file() else sorted(root.glob("*.parquet"))
    counts: dict[str, int] = {}
    total = 0
    for file in files:
        meta = pq.ParquetFile(file)
        total += meta.metadata.num_rows
        if "collection" in meta.schema_arrow.names:
            column = pq.read_table(file, columns=["collection"]).column("collection")
            for name in column.to_pylist():
                counts[str(name)] = counts.get(str(name), 0) + 1
    per = ", ".join(f"{name} {n:,}" for name, n in counts.items())
    detail = f" ({per})" if per else ""
    if fetched is None or fetched == total:
        return f"wrote {total:,} items to {path}{detail}"
    return f"wrote {fetched:,} new items to {path}; it holds {total:,} items{detail}"


def describe_frame(frame: Any) -> str:
    """A short text summary of a result GeoDataFrame: rows per collection, columns, time span.

    Example:
        >>> import geopandas
        >>> from shapely.geometry import Point
        >>> gdf = geopandas.GeoDataFrame(
        ...     {"id": ["a", "b"], "collection": ["s2", "s2"],
        ...      "datetime": ["2024-06-01T00:00:00Z", "2024-06-03T10:00:00Z"]},
        ...     geometry=[Point(0, 0), Point(1, 1)], crs=4326)
        >>> print(describe_frame(gdf))
        2 items, 4 columns, 2024-06-01T00:00:00Z .. 2024-06-03T10:00:00Z
          s2  2
        columns: id, collection, datetime, geometry
    """
    import pandas as pd

    rows = len(frame)
    columns = [str(c) for c in frame.columns]
    span = ""
    lows, highs = [], []
    for name in ("datetime", "start_datetime", "end_datetime"):
        if name in frame.columns:
            values = pd.to_datetime(frame[name], utc=True, errors="coerce").dropna()
            if len(values):
                lows.append(values.min())
                highs.append(values.max())
    if lows:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        span = f", {min(lows).strftime(fmt)} .. {max(highs).strftime(fmt)}"
    lines = [f"{rows:,} {'item' if rows == 1 else 'items'}, {len(columns)} columns{span}"]
    if "collection" in frame.columns and rows:
        counts = frame["collection"].fillna("(none)").astype(str).value_counts(sort=False)
        width = max(len(str(k)) for k in counts.index)
        lines += [f"  {str(k).ljust(width)}  {int(v):,}" for k, v in counts.items()]
    shown = columns[:12]
    more = f" (+{len(columns) - len(shown)} more)" if len(columns) > len(shown) else ""
    lines.append(f"columns: {', '.join(shown)}{more}")
    return "\n".join(lines)


# -- demo ------------------------------------------------------------------------------------
FLAKY_WINDOW = ("2023-05-01", "2023-07-31")
"""``stacfetch demo --flaky``: every page inside this window fails ``FLAKY_TIMES`` times..."""
FLAKY_TIMES = 1
"""...with a 503 before it succeeds: transient errors that the retries overcome."""
DEMO_WORKFLOW: dict[str, Any] = {
    "name": "stacfetch-demo",
    "catalog_url": "${STACFETCH_CATALOG_URL}",
    "strategy": {
        "matrix": [{"collection_id": "sentinel-2-l2a"}, {"collection_id": "landsat-c2-l2"}]
    },
    "ingest": {
        "concurrency": {"workers": 8},
        "limit": 100,
        "retry": {"max_retries": 8, "backoff_base": 0.25, "backoff_max": 2.0},
    },
}
"""The workflow ``stacfetch demo`` runs (``examples/workflow-demo.yaml`` holds the same)."""


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._ingestor import Ingestor
    from ._model.datetimes import parse_instant
    from ._testing.demo import (
        DEMO_COLLECTIONS,
        demo_items,
        demo_server,
        first_attempts,
        within_window,
    )
    from ._workflow import load_workflow

    if args.items is not None and args.items < 1:
        raise _UsageError(f"--items: expected a number >= 1, got {args.items}")
    if args.workflow is not None:  # fail on a bad file before starting anything
        load_workflow(args.workflow, env={**os.environ, "STACFETCH_CATALOG_URL": "http://x"})
    items = demo_items(args.items)
    started = time.monotonic()
    with demo_server(items=items, page_delay=0.01, item_delay=0.002) as server:
        env = {**os.environ, "STACFETCH_CATALOG_URL": server.url}
        spec = load_workflow(args.workflow or DEMO_WORKFLOW, env=env)
        output = args.out or spec.output or DEMO_OUT
        print(
            f"stacfetch demo: a local STAC API at {server.url} serves {len(items):,} items of "
            f"{' and '.join(DEMO_COLLECTIONS)} (offline)"
        )
        if args.flaky:
            start = parse_instant(FLAKY_WINDOW[0])
            end = parse_instant(FLAKY_WINDOW[1], end=True)
            inside = within_window(start, end)

            def page_inside(search: dict[str, Any]) -> bool:  # item pages, not count probes
                return (search.get("limit") or 0) > 1 and inside(search)

            server.fail_when(first_attempts(page_inside, times=FLAKY_TIMES))
            print(
                f"stacfetch demo: every page of items within {FLAKY_WINDOW[0]}..{FLAKY_WINDOW[1]} "
                f"fails {'once' if FLAKY_TIMES == 1 else f'{FLAKY_TIMES} times'} (503) before "
                "it is served, to show the retries "
                "(--no-flaky: off)"
            )
        kwargs = spec.ingestor_kwargs()
        kwargs["progress"] = _progress(args.progress)
        ing = Ingestor(**kwargs)
        code = _execute(ing, output, overwrite=True)  # a fresh demo output every time
    fetched = sum(p.items for p in ing.tracker.entries.values())
    if code == EXIT_OK and args.workflow is None:
        verdict = "every item exactly once" if fetched == len(items) else "MISMATCH"
        print(f"stacfetch demo: served {len(items):,}, fetched {fetched:,}: {verdict}")
        if fetched != len(items):
            code = EXIT_FAILED
    print(f"stacfetch demo: done in {time.monotonic() - started:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
