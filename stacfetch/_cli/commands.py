"""The ``ingest`` and ``run`` commands: options (or a workflow file) into an Ingestor run."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

from .common import UsageError, progress_option
from .execute import execute

__all__ = ["cmd_ingest", "cmd_run", "ingest_kwargs"]


def cmd_ingest(args: argparse.Namespace) -> int:
    """``stacfetch ingest URL -c ...``: build the Ingestor from the options and run it.

    Example:
        >>> from stacfetch._cli.parser import build_parser
        >>> cmd_ingest(build_parser().parse_args(["ingest", "https://x.org", "-c", " "]))
        Traceback (most recent call last):
        ...
        stacfetch._cli.common.UsageError: give at least one collection: -c COLLECTION (repeatable)
    """
    from .._ingestor import Ingestor

    ing = Ingestor(args.url, **ingest_kwargs(args))
    return execute(ing, args.output, overwrite=args.overwrite, dask=args.dask)


def ingest_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Ingestor keyword arguments from the ``ingest`` options (parsing only; it validates).

    Example:
        >>> from stacfetch._cli.parser import build_parser
        >>> args = build_parser().parse_args(["ingest", "https://x.org", "-c", "a,b", "-c", "c"])
        >>> ingest_kwargs(args)["collections"]
        ['a', 'b', 'c']
    """
    collections = [c.strip() for value in args.collection or [] for c in value.split(",")]
    collections = [c for c in collections if c]
    if not collections:
        raise UsageError("give at least one collection: -c COLLECTION (repeatable)")
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
        "progress": progress_option(args.progress),
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
        raise UsageError(f"{option}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option}: expected a JSON object, got {type(value).__name__}")
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
            raise UsageError(
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
        raise UsageError(
            f"--intersects: the FeatureCollection holds {len(geoms)} geometries; give one "
            "geometry (or only polygons, which are combined)"
        )
    if geo.get("type") == "Feature":
        geometry = geo.get("geometry")
        if not isinstance(geometry, dict):
            raise UsageError("--intersects: the Feature has no geometry")
        return dict(geometry)
    return geo


def _headers(values: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header: expected 'Name: value', got {value!r}")
        headers[name.strip()] = text.strip()
    return headers


def cmd_run(args: argparse.Namespace) -> int:
    """``stacfetch run WORKFLOW``: load the workflow file, run it (options override the file).

    Example:
        >>> from stacfetch._cli.parser import build_parser
        >>> cmd_run(build_parser().parse_args(["run", "no-such-workflow.yaml"]))
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: workflow file not found: no-such-workflow.yaml
    """
    from .._ingestor import Ingestor
    from .._workflow import load_workflow

    spec = load_workflow(args.workflow)
    kwargs = spec.ingestor_kwargs()
    if args.progress is not None:
        kwargs["progress"] = progress_option(args.progress)
    elif kwargs["progress"] in ("auto", "widgets", "notebook"):
        kwargs["progress"] = "auto"  # a terminal command: bars on a terminal, never widgets
    ing = Ingestor(**kwargs, strict=args.strict)
    if spec.name:
        print(f"stacfetch: running workflow {spec.name!r} ({len(ing.entries)} entries)")
    return execute(ing, args.output or spec.output, overwrite=args.overwrite, dask=args.dask)
