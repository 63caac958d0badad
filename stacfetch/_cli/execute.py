"""Running an Ingestor for a command: to GeoParquet or a GeoDataFrame, summaries, exit code."""

from __future__ import annotations

import os
from typing import Any

from .._model.errors import IncompleteIngestError
from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, error
from .describe import describe_frame, describe_output

__all__ = ["execute"]


def execute(
    ing: Any,
    output: str | os.PathLike[str] | None,
    *,
    overwrite: bool = False,
    dask: str | None = None,
) -> int:
    """Run ``ing`` to GeoParquet (``output``) or a GeoDataFrame; print the summaries.

    Returns the exit code: 0, 1 when chunks failed, 2 for ``dask`` without ``output``.

    Example:
        >>> from stacfetch import Ingestor
        >>> ing = Ingestor("https://stac.example.com", collections=["a"], progress=False)
        >>> execute(ing, None, dask="tcp://scheduler:8786")
        2
    """
    from .._display.terminal import format_summary

    path: Any = None
    frame: Any = None
    try:
        if dask and not output:
            error("--dask needs -o/--output: the workers write the GeoParquet parts there")
            return EXIT_USAGE
        if output:
            extra = {"client": dask} if dask else {}
            path = ing.to_parquet(output, overwrite=overwrite, **extra)
        else:
            frame = ing.ingest()
    except IncompleteIngestError:
        print(format_summary(ing.tracker, ing.failures))
        if output:
            error(
                f"{_failed(ing)}; {output} is incomplete (--strict); run the same command "
                "again to fetch only what is missing"
            )
        else:
            error(f"{_failed(ing)} (--strict: no result)")
        return EXIT_FAILED
    print(format_summary(ing.tracker, ing.failures))
    if path is not None:
        fetched = sum(p.items for p in ing.tracker.entries.values())
        print(describe_output(path, fetched))
    elif frame is not None:
        print(describe_frame(frame))
    if ing.failures:
        hint = "; run the same command again to fetch only what is missing" if output else ""
        error(f"{_failed(ing)}; the result is incomplete{hint}")
        return EXIT_FAILED
    return EXIT_OK


def _failed(ing: Any) -> str:
    n = len(ing.failures)
    return f"{n} {'chunk' if n == 1 else 'chunks'} failed"
