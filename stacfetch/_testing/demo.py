"""The offline demo: sample items shipped in the package, served by a local STAC API.

``stacfetch/data/demo-items.ndjson.gz`` holds a few thousand realistic items of two collections
over the Alps in 2023 (Sentinel-2 L2A tiles and Landsat Collection 2 Level-2 scenes), made by
``scripts/make_demo_data.py`` with the cases that break naive harvesters: items exactly on
month and day boundaries and their microsecond neighbours, ``datetime: null`` composites with
``start_datetime`` / ``end_datetime``, one timestamp shared by 180 items, and heterogeneous
properties (``eo:cloud_cover`` missing, null or an integer; ``proj:code`` instead of
``proj:epsg``; optional property blocks). Every item says which case it is in
``properties["demo:case"]``.

:func:`demo_server` serves them from a :class:`~stacfetch._testing.server.StacServer` on
127.0.0.1 (no
network needed), for ``stacfetch demo`` and for notebooks::

    from stacfetch._testing.demo import DEMO_COLLECTIONS, demo_server
    server = demo_server(fail_window=("2023-03-01", "2023-03-31"))
    ing = stacfetch.Ingestor(server.url, collections=DEMO_COLLECTIONS)
    gdf = ing.ingest()        # March fails: see ing.failures
    server.heal()
    gdf = ing.retry_failed()  # now complete
"""

from __future__ import annotations

import functools
import gzip
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib import resources
from typing import Any

import orjson

from .._model.datetimes import parse_instant
from .._model.errors import ConfigurationError
from .server import StacServer

__all__ = [
    "DEMO_BBOX",
    "DEMO_COLLECTIONS",
    "DEMO_DATETIME",
    "DEMO_FILE",
    "DemoServer",
    "demo_items",
    "demo_server",
    "first_attempts",
    "overlaps_window",
    "within_window",
]

DEMO_COLLECTIONS: tuple[str, ...] = ("sentinel-2-l2a", "landsat-c2-l2")
"""The collections of the demo items."""
DEMO_DATETIME = "2023"
"""The period the demo items cover (all of 2023)."""
DEMO_BBOX: tuple[float, float, float, float] = (2.5, 37.0, 17.0, 65.0)
"""A bbox holding every demo item."""
DEMO_FILE = "demo-items.ndjson.gz"
"""The data file's name inside ``stacfetch/data``."""


@functools.lru_cache(maxsize=1)
def _demo_bytes() -> bytes:
    ref = resources.files("stacfetch").joinpath("data").joinpath(DEMO_FILE)
    try:
        return gzip.decompress(ref.read_bytes())
    except FileNotFoundError:  # pragma: no cover - a broken installation
        raise ConfigurationError(
            f"the demo data file stacfetch/data/{DEMO_FILE} is missing from this installation; "
            "reinstall stacfetch (or run scripts/make_demo_data.py in a source checkout)"
        ) from None


def demo_items(n: int | None = None) -> list[dict[str, Any]]:
    """The bundled demo items (a new list of new dicts on every call).

    ``n`` picks how many: fewer than bundled gives an evenly spread subset (both collections,
    all the awkward cases in proportion); more repeats the items with suffixed ids
    (``<id>~1``, ``<id>~2``...), same datetimes and footprints.

    Example:
        >>> items = demo_items()
        >>> sorted({item["collection"] for item in items}) == sorted(DEMO_COLLECTIONS)
        True
        >>> len(items) > 2000
        True
        >>> sum(item["properties"]["datetime"] is None for item in items) > 0
        True
        >>> len(demo_items(100)), len(demo_items(len(items) + 5)) - len(items)
        (100, 5)
    """
    items = [orjson.loads(line) for line in _demo_bytes().splitlines() if line]
    if n is None or n == len(items):
        return items
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigurationError(f"n: expected a number of items >= 1, got {n!r}")
    if n < len(items):
        step = len(items) / n
        return [items[int(i * step)] for i in range(n)]
    out = list(items)
    copy = 0
    while len(out) < n:
        copy += 1
        for item in items[: n - len(out)]:
            clone = orjson.loads(orjson.dumps(item))
            clone["id"] = f"{item['id']}~{copy}"
            out.append(clone)
    return out


class DemoServer(StacServer):
    """A :class:`~stacfetch._testing.server.StacServer` that may be used as a context manager
    after it was started (``with demo_server() as server:`` works).

    Example:
        >>> with demo_server() as server:
        ...     server.url.startswith("http://127.0.0.1:")
        True
    """

    def __enter__(self) -> DemoServer:
        if not self.url:
            self.start()
        return self


def overlaps_window(start: datetime, end: datetime) -> Callable[[dict[str, Any]], bool]:
    """A :meth:`StacServer.fail_when` predicate: searches whose datetime overlaps the window.

    A search without a datetime covers all time, so it overlaps too.

    Example:
        >>> from datetime import timezone
        >>> hit = overlaps_window(datetime(2023, 3, 1, tzinfo=timezone.utc),
        ...                       datetime(2023, 3, 31, tzinfo=timezone.utc))
        >>> hit({"datetime": None}), hit({"datetime": (None, datetime(2023, 2, 1,
        ...     tzinfo=timezone.utc))})
        (True, False)
    """

    def predicate(search: dict[str, Any]) -> bool:
        window = search.get("datetime")
        if window is None:
            return True
        lo, hi = window
        return (lo is None or lo <= end) and (hi is None or hi >= start)

    return predicate


def within_window(start: datetime, end: datetime) -> Callable[[dict[str, Any]], bool]:
    """A :meth:`StacServer.fail_when` predicate: searches whose datetime lies inside the window.

    Unlike :func:`overlaps_window` it spares searches over longer periods (such as a count
    probe over a whole collection), so only the chunks inside the window fail.

    Example:
        >>> from datetime import timezone
        >>> utc = timezone.utc
        >>> hit = within_window(datetime(2023, 5, 1, tzinfo=utc), datetime(2023, 8, 1, tzinfo=utc))
        >>> hit({"datetime": (datetime(2023, 6, 1, tzinfo=utc), datetime(2023, 6, 5, tzinfo=utc))})
        True
        >>> hit({"datetime": (datetime(2023, 1, 1, tzinfo=utc), None)}), hit({"datetime": None})
        (False, False)
    """

    def predicate(search: dict[str, Any]) -> bool:
        window = search.get("datetime")
        if window is None or window[0] is None or window[1] is None:
            return False
        return bool(start <= window[0] and window[1] <= end)

    return predicate


def first_attempts(
    predicate: Callable[[dict[str, Any]], bool], times: int = 2
) -> Callable[[dict[str, Any]], bool]:
    """Wrap a :meth:`StacServer.fail_when` predicate so that each matching search fails only
    its first ``times`` attempts: transient errors, which retries overcome, whatever the timing.

    Example:
        >>> flaky = first_attempts(lambda search: True, times=2)
        >>> [flaky({"datetime": None, "token": None}) for _ in range(3)]
        [True, True, False]
    """
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    def wrapped(search: dict[str, Any]) -> bool:
        if not predicate(search):
            return False
        key = repr(sorted(search.items()))
        with lock:
            attempts[key] = attempts.get(key, 0) + 1
            return attempts[key] <= times

    return wrapped


def demo_server(
    fail_window: tuple[str, str] | None = None,
    *,
    items: Iterable[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> DemoServer:
    """Start a local STAC API (127.0.0.1, a free port) serving the bundled demo items.

    ``fail_window=(start, end)``: every search whose datetime overlaps ``[start, end]``
    (anything :func:`stacfetch.parse_datetime` accepts on each side; a partial end such as
    ``"2023-03"`` means its last instant) answers 503 until ``server.heal()``. ``items``
    replaces the bundled items (e.g. ``demo_items(500)``). Other keyword
    arguments go to :class:`~stacfetch._testing.server.StacServer` (``page_delay``, ``item_delay``,
    ``max_concurrent``, ``default_limit``, ``max_limit``, ``counts``, ``port``...). The server
    runs on a daemon thread; call ``stop()`` (or use ``with``) when done.

    Example:
        >>> import stacfetch
        >>> server = demo_server(fail_window=("2023-03", "2023-03"))
        >>> ing = stacfetch.Ingestor(server.url, collections=DEMO_COLLECTIONS,
        ...                          progress=False, retry={"max_retries": 0})
        >>> gdf = ing.ingest()
        >>> len(ing.failures) > 0
        True
        >>> server.heal()
        >>> gdf = ing.retry_failed()
        >>> len(ing.failures), len(gdf) == len(demo_items())
        (0, True)
        >>> server.stop()
    """
    rule = None
    if fail_window is not None:
        if (
            not isinstance(fail_window, (tuple, list))
            or len(fail_window) != 2
            or not all(isinstance(v, (str, datetime)) for v in fail_window)
        ):
            raise ConfigurationError(
                f"fail_window: expected (start, end) datetime strings, got {fail_window!r}"
            )
        start = parse_instant(fail_window[0], field="fail_window")
        end = parse_instant(fail_window[1], end=True, field="fail_window")
        if start > end:
            raise ConfigurationError(f"fail_window: start {start} is after end {end}")
        rule = overlaps_window(start, end)
    server = DemoServer(demo_items() if items is None else items, **kwargs)
    if rule is not None:
        server.fail_when(rule)
    server.start()
    return server
