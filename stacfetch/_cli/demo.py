"""``stacfetch demo``: an offline run against a local STAC API serving the bundled items."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from .common import EXIT_FAILED, EXIT_OK, UsageError, progress_option
from .execute import execute
from .parser import DEMO_OUT

__all__ = ["DEMO_WORKFLOW", "FLAKY_TIMES", "FLAKY_WINDOW", "cmd_demo"]

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


def cmd_demo(args: argparse.Namespace) -> int:
    """``stacfetch demo``: a local STAC API with the bundled items, then a workflow against it.

    Example:
        >>> from stacfetch._cli.parser import build_parser
        >>> cmd_demo(build_parser().parse_args(["demo", "--items", "0"]))
        Traceback (most recent call last):
        ...
        stacfetch._cli.common.UsageError: --items: expected a number >= 1, got 0
    """
    from .._ingestor import Ingestor
    from .._model.datetimes import parse_instant
    from .._testing.demo import (
        DEMO_COLLECTIONS,
        demo_items,
        demo_server,
        first_attempts,
        within_window,
    )
    from .._workflow import load_workflow

    if args.items is not None and args.items < 1:
        raise UsageError(f"--items: expected a number >= 1, got {args.items}")
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
        kwargs["progress"] = progress_option(args.progress)
        ing = Ingestor(**kwargs)
        code = execute(ing, output, overwrite=True)  # a fresh demo output every time
    fetched = sum(p.items for p in ing.tracker.entries.values())
    if code == EXIT_OK and args.workflow is None:
        verdict = "every item exactly once" if fetched == len(items) else "MISMATCH"
        print(f"stacfetch demo: served {len(items):,}, fetched {fetched:,}: {verdict}")
        if fetched != len(items):
            code = EXIT_FAILED
    print(f"stacfetch demo: done in {time.monotonic() - started:.1f} s")
    return code
