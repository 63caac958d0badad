"""The argument parser of the ``stacfetch`` command (argparse; parsing only, no validation)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["DEMO_OUT", "build_parser", "join_dash_values"]

DEMO_OUT = "stacfetch-demo.parquet"
"""Where ``stacfetch demo`` writes its GeoParquet by default."""
DASH_VALUES = ("--bbox", "--sortby")
"""Options whose value may start with '-' (``--bbox -10,35,30,60``, ``--sortby -datetime``)."""

EPILOG = """\
examples:
  stacfetch ingest https://earth-search.aws.element84.com/v1 -c sentinel-2-l2a -c landsat-c2-l2 \\
      --datetime 2024-06 --bbox 5.9,45.8,10.5,47.8 -o alps.parquet
  stacfetch run workflow.yaml
  stacfetch demo

exit codes: 0 ok, 1 chunks failed, 2 usage or configuration error
"""
"""The examples shown at the end of ``stacfetch --help``."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stacfetch`` command.

    Example:
        >>> args = build_parser().parse_args(["ingest", "https://x.org/stac", "-c", "a"])
        >>> args.command, args.url, args.collection
        ('ingest', 'https://x.org/stac', ['a'])
    """
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="stacfetch",
        description="Fetch every STAC item of a search, fast and exactly once.",
        epilog=EPILOG,
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


def join_dash_values(argv: Sequence[str]) -> list[str]:
    """``--bbox -10,35,30,60`` -> ``--bbox=-10,35,30,60`` (argparse takes it for an option).

    Example:
        >>> join_dash_values(["ingest", "--bbox", "-10,35,30,60", "--sortby", "-datetime"])
        ['ingest', '--bbox=-10,35,30,60', '--sortby=-datetime']
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if (
            token in DASH_VALUES
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
