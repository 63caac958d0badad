"""The chunk timeline of an entry: where in time (and space) its chunks are, and their state.

Built from an :class:`~stacfetch._model.events.EntryProgress` (its ``chunks``), with no dependency
beyond the standard library: an SVG strip for notebooks (:func:`timeline_svg`), one line of
text for terminals (:func:`timeline_text`).

The x axis is the entry's time range: ``EntryProgress.interval`` when the engine sent it,
else the span of the chunks whose interval is known. Every chunk with a bounded piece on
that axis is a ``<rect class="stacfetch-seg">`` carrying ``data-state``, ``data-interval``
(the chunk's STAC ``datetime`` parameter), ``data-chunk``, ``data-items`` and
``data-attempts``, with a ``<title>`` for the hover text. Split chunks are drawn first, so
their children cover them. Once chunks carry more than one tile (``bbox``), a mini-map of the
tiles follows the strip (``<rect class="stacfetch-tile" data-bbox=...>``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime, timezone

from .._model.progress import CHUNK_STATES, ChunkState, EntryProgress

__all__ = [
    "STATE_COLOURS",
    "parse_interval",
    "timeline_html",
    "timeline_svg",
    "timeline_text",
]

STATE_COLOURS = {
    "pending": "#cfd8dc",
    "running": "#42a5f5",
    "done": "#66bb6a",
    "split": "#ffb74d",
    "failed": "#e53935",
}
"""Segment colours by chunk state (the failed ones red, like the failed bars)."""

_CHARS = {"pending": ".", "running": ">", "done": "#", "split": "#", "failed": "x"}
_RANK = {"done": 0, "split": 0, "pending": 1, "running": 2, "failed": 3}
"""Which state a text cell shows when several chunks share it (the worst)."""

_Range = tuple[float | None, float | None]


def _instant(text: str) -> float | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def parse_interval(text: str | None) -> _Range:
    """A STAC ``datetime`` parameter as (start, end) UNIX seconds; ``None`` for an open end.

    Example:
        >>> parse_interval("2024-01-01T00:00:00Z/2024-01-02T00:00:00Z")
        (1704067200.0, 1704153600.0)
        >>> parse_interval("../2024-01-01T00:00:00Z"), parse_interval(None)
        ((None, 1704067200.0), (None, None))
    """
    if not text:
        return (None, None)
    if "/" not in text:
        t = _instant(text)
        return (t, t)
    start, _, end = text.partition("/")
    return (_instant(start), _instant(end))


def _axis(p: EntryProgress) -> tuple[float, float] | None:
    """The entry's time range: its own interval, completed by its chunks' known ends."""
    start, end = parse_interval(p.interval)
    ends = [parse_interval(c.interval) for c in p.chunks.values()]
    starts = [s for s, _ in ends if s is not None] + [e for _, e in ends if e is not None]
    if start is None and starts:
        start = min(starts)
    if end is None and starts:
        end = max(starts)
    if start is None or end is None:
        return None
    if end <= start:  # one instant: a day around it
        start, end = start - 43200, end + 43200
    return (start, end)


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d")


def _ordered(chunks: Iterable[ChunkState]) -> list[ChunkState]:
    """Split chunks first (their children are drawn over them), then the others."""
    return sorted(chunks, key=lambda c: c.state != "split")


def _hover(c: ChunkState) -> str:
    items = f"{c.items:,} item{'' if c.items == 1 else 's'}"
    attempts = f"{c.attempts} attempt{'' if c.attempts == 1 else 's'}"
    parts = [c.interval or "(whole search)", c.state, items, attempts]
    if c.bbox is not None:
        parts.insert(1, "bbox " + ",".join(f"{v:g}" for v in c.bbox))
    return " · ".join(parts)


def _attrs(c: ChunkState) -> str:
    attrs = {
        "data-state": c.state,
        "data-interval": c.interval or "",
        "data-chunk": c.chunk_id,
        "data-items": str(c.items),
        "data-attempts": str(c.attempts),
    }
    if c.bbox is not None:
        attrs["data-bbox"] = ",".join(f"{v:g}" for v in c.bbox)
    return " ".join(f'{k}="{html.escape(v)}"' for k, v in attrs.items())


def counts(p: EntryProgress) -> dict[str, int]:
    """Chunks per state, in :data:`~stacfetch._model.events.CHUNK_STATES` order (zeros left out).

    Example:
        >>> from stacfetch._model.progress import ChunkState
        >>> p = EntryProgress("u#c", "c")
        >>> p.chunks = {"a": ChunkState("a", state="done"), "b": ChunkState("b", state="failed")}
        >>> counts(p)
        {'done': 1, 'failed': 1}
    """
    found = {s: 0 for s in CHUNK_STATES}
    for c in p.chunks.values():
        found[c.state] = found.get(c.state, 0) + 1
    return {s: n for s, n in found.items() if n}


def tiles(p: EntryProgress) -> list[ChunkState]:
    """The chunks with a tile, when the entry has more than one distinct tile (else none)."""
    tiled = [c for c in p.chunks.values() if c.bbox is not None]
    return tiled if len({c.bbox for c in tiled}) > 1 else []


def timeline_svg(p: EntryProgress, *, width: int = 640, height: int = 14) -> str:
    """The entry's chunks as an SVG strip over its time range (empty when nothing is known).

    Example:
        >>> from stacfetch._model.progress import ChunkState
        >>> p = EntryProgress("u#c", "c")
        >>> p.chunks = {
        ...     "a": ChunkState("a", "2024-01-01T00:00:00Z/2024-02-01T00:00:00Z", state="done"),
        ...     "b": ChunkState("b", "2024-02-01T00:00:00Z/2024-03-01T00:00:00Z", state="failed"),
        ... }
        >>> svg = timeline_svg(p)
        >>> svg.count('class="stacfetch-seg"'), 'data-state="failed"' in svg
        (2, True)
    """
    axis = _axis(p)
    if axis is None:
        return ""
    t0, t1 = axis
    scale = width / (t1 - t0)
    rects = []
    for c in _ordered(p.chunks.values()):
        start, end = parse_interval(c.interval)
        if start is None and end is None:
            continue
        x0 = (max(start, t0) if start is not None else t0) - t0
        x1 = (min(end, t1) if end is not None else t1) - t0
        x = max(0.0, x0 * scale)
        w = max(1.0, (x1 - x0) * scale)
        rects.append(
            f'<rect class="stacfetch-seg" {_attrs(c)} x="{x:.2f}" y="0" width="{w:.2f}" '
            f'height="{height}" fill="{STATE_COLOURS.get(c.state, "#999")}" '
            f'stroke="#fff" stroke-width="0.5"><title>{html.escape(_hover(c))}</title></rect>'
        )
    axis_h = height + 12
    labels = (
        f'<text x="0" y="{axis_h}" font-size="10" fill="#555">{_day(t0)}</text>'
        f'<text x="{width}" y="{axis_h}" font-size="10" fill="#555" '
        f'text-anchor="end">{_day(t1)}</text>'
    )
    return (
        f'<svg class="stacfetch-timeline-svg" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{axis_h + 2}" viewBox="0 0 {width} {axis_h + 2}" '
        f'data-start="{_day(t0)}" data-end="{_day(t1)}">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f5f5f5"/>'
        f"{''.join(rects)}{labels}</svg>"
    )


def tiles_svg(p: EntryProgress, *, width: int = 160, height: int = 80) -> str:
    """A mini-map of the entry's tiles (spatial chunks), coloured by state; empty without.

    Example:
        >>> from stacfetch._model.progress import ChunkState
        >>> p = EntryProgress("u#c", "c")
        >>> p.chunks = {
        ...     "a": ChunkState("a", bbox=(0.0, 0.0, 1.0, 1.0), state="done"),
        ...     "b": ChunkState("b", bbox=(1.0, 0.0, 2.0, 1.0), state="failed"),
        ... }
        >>> tiles_svg(p).count('class="stacfetch-tile"')
        2
    """
    tiled = tiles(p)
    if not tiled:
        return ""
    boxes = [c.bbox for c in tiled if c.bbox is not None]
    west = min(b[0] for b in boxes)
    south = min(b[1] for b in boxes)
    east = max(b[2] for b in boxes)
    north = max(b[3] for b in boxes)
    sx = width / max(east - west, 1e-9)
    sy = height / max(north - south, 1e-9)
    rects = []
    for c in _ordered(tiled):
        assert c.bbox is not None
        w, s, e, n = c.bbox
        rects.append(
            f'<rect class="stacfetch-tile" {_attrs(c)} x="{(w - west) * sx:.2f}" '
            f'y="{(north - n) * sy:.2f}" width="{max(1.0, (e - w) * sx):.2f}" '
            f'height="{max(1.0, (n - s) * sy):.2f}" fill="{STATE_COLOURS.get(c.state, "#999")}" '
            f'stroke="#fff" stroke-width="0.5"><title>{html.escape(_hover(c))}</title></rect>'
        )
    return (
        f'<svg class="stacfetch-tiles-svg" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f5f5f5"/>'
        f"{''.join(rects)}</svg>"
    )


def _legend(p: EntryProgress) -> str:
    found = counts(p)
    if not found:
        return ""
    parts = [
        f'<span data-state="{s}"><span style="display:inline-block;width:9px;height:9px;'
        f'background:{STATE_COLOURS[s]};margin:0 3px 0 8px"></span>{n:,} {s}</span>'
        for s, n in found.items()
    ]
    if found.get("failed"):
        parts.append(
            '<span class="stacfetch-timeline-hint" style="margin-left:8px;color:#777">'
            "· hover a segment for its interval; “Retry failed” in the table re-runs them</span>"
        )
    style = "font-size:11px;line-height:14px;margin-top:1px"
    return f'<div class="stacfetch-timeline-legend" style="{style}">{"".join(parts)}</div>'


def timeline_html(p: EntryProgress, *, width: int = 640) -> str:
    """The timeline strip, the tile mini-map (if any) and a legend with counts per state.

    Empty while nothing is known of the entry's chunks.

    Example:
        >>> timeline_html(EntryProgress("u#c", "c"))
        ''
    """
    if not p.chunks:
        return ""
    strip = timeline_svg(p, width=width)
    if not strip:
        style = "font-size:11px;line-height:14px;color:#777"
        strip = f'<span style="{style}">(chunk intervals not known)</span>'
    space = tiles_svg(p)
    if space:
        strip = (
            f'<div style="display:flex;gap:12px;align-items:flex-start">'
            f"<div>{strip}</div><div>{space}</div></div>"
        )
    return f'<div class="stacfetch-timeline" style="line-height:0">{strip}{_legend(p)}</div>'


def timeline_text(p: EntryProgress, *, width: int = 40) -> str:
    """The timeline as one line of text: ``#`` done, ``>`` running, ``.`` pending, ``x`` failed.

    Empty when no chunk interval is known. A cell shows the worst state of its chunks.

    Example:
        >>> from stacfetch._model.progress import ChunkState
        >>> p = EntryProgress("u#c", "c")
        >>> p.chunks = {
        ...     "a": ChunkState("a", "2024-01-01T00:00:00Z/2024-03-01T00:00:00Z", state="done"),
        ...     "b": ChunkState("b", "2024-03-01T00:00:00Z/2024-04-01T00:00:00Z", state="failed"),
        ... }
        >>> timeline_text(p, width=10)
        '2024-01-01 |######xxxx| 2024-04-01'
    """
    axis = _axis(p)
    if axis is None:
        return ""
    t0, t1 = axis
    cells: list[str | None] = [None] * width
    step = (t1 - t0) / width
    for c in _ordered(p.chunks.values()):
        start, end = parse_interval(c.interval)
        if start is None and end is None:
            continue
        a = max(start, t0) if start is not None else t0
        b = min(end, t1) if end is not None else t1
        first = min(width - 1, max(0, int((a - t0) / step)))
        last = min(width - 1, max(first, int((b - t0) / step - 1e-9)))
        for i in range(first, last + 1):
            old = cells[i]
            if c.state == "split" and old is not None:
                continue
            if old is None or old == "split" or _RANK[c.state] >= _RANK[old]:
                cells[i] = c.state
    line = "".join(_CHARS[s] if s else " " for s in cells)
    return f"{_day(t0)} |{line}| {_day(t1)}"
