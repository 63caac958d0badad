"""An Ingestor at a glance in Jupyter: its entries, filters, run state and counts (HTML)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from .._model.failures import FailureCollector
from .._model.progress import ProgressTracker
from .._model.types import Entry
from .summary import RunSummary

__all__ = ["ingestor_html"]

_CELL = "padding:2px 8px;text-align:left"


def _state(entry: Entry, tracker: ProgressTracker, failed: set[str]) -> str:
    tracked = tracker.entries.get(entry.key)
    if tracked is None:
        return "not started"
    if tracked.finished is None:
        return "running"
    if tracked.error or entry.key in failed:
        return "failed"
    return "done"


def ingestor_html(
    entries: Sequence[Entry],
    tracker: ProgressTracker,
    failures: FailureCollector,
    filters: Mapping[str, Any],
) -> str:
    """The HTML of an Ingestor's ``_repr_html_``: one row per entry, with its state.

    Example:
        >>> html_text = ingestor_html([Entry("https://x/stac", "c1")], ProgressTracker(),
        ...                           FailureCollector(), {"datetime": "2024-06"})
        >>> "not started" in html_text and "datetime=" in html_text
        True
    """
    summary = RunSummary.of(tracker, failures)
    failed = {r.entry_key for r in failures}
    rows = []
    for e in entries:
        tracked = tracker.entries.get(e.key)
        items = f"{tracked.items:,}" if tracked is not None else "–"
        cells = (e.label, e.source_file or e.catalog_url or "", items, _state(e, tracker, failed))
        rows.append(
            "<tr>" + "".join(f"<td style='{_CELL}'>{html.escape(c)}</td>" for c in cells) + "</tr>"
        )
    shown = ", ".join(f"{k}={v!r}" for k, v in filters.items()) or "none"
    head = "".join(f"<th style='{_CELL}'>{h}</th>" for h in ("entry", "from", "items", "state"))
    noun = "entry" if len(entries) == 1 else "entries"
    return (
        f"<div class='stacfetch-ingestor'><div><b>Ingestor</b> · {len(entries)} "
        f"{noun} · {html.escape(summary.state)} · {summary.items:,} items · "
        f"{summary.failed_chunks:,} failed chunks</div>"
        f"<div>filters: <code>{html.escape(shown)}</code></div>"
        f"<table style='border-collapse:collapse;font-size:90%'><thead><tr>{head}</tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
