"""Searches of the in-memory STAC server: parse the parameters, find the matching items.

:func:`parse_search` turns GET query or POST body parameters into a :class:`Search` (or a
:class:`BadRequest`); an :class:`ItemStore` holds every item, by id and per collection in an
:class:`~stacfetch._testing.records.Index`, and yields the matches of a search in sort order.
"""

from __future__ import annotations

import base64
import dataclasses
import heapq
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson

from .records import EPOCH, US, Box, Index, Key, Record, instant, to_box

__all__ = ["BadRequest", "ItemStore", "Search", "in_time", "interval", "parse_search"]


class BadRequest(Exception):
    """A request the server refuses, with the HTTP status to answer.

    Example:
        >>> exc = BadRequest(404, "Collection x does not exist.")
        >>> exc.status, str(exc)
        (404, 'Collection x does not exist.')
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Search:
    """A parsed search; ``fail_when`` predicates see the first eight fields as a dict.

    Example:
        >>> s = parse_search({"ids": ["x"], "limit": 5}, "POST", (10, 100))
        >>> sorted(s.public())
        ['bbox', 'collections', 'datetime', 'desc', 'ids', 'limit', 'method', 'token']
    """

    method: str
    collections: list[str] | None
    ids: list[str] | None
    bbox: Box | None
    datetime: tuple[datetime | None, datetime | None] | None
    limit: int
    token: str | None
    desc: bool
    lo: int | None = None
    hi: int | None = None
    after: Key | None = None
    shape: Any = None
    offset: int = 0
    sorted_by_user: bool = False

    def public(self) -> dict[str, Any]:
        """The first eight fields by name, as ``fail_when`` predicates see them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)[:8]}


def parse_search(params: dict[str, Any], method: str, limits: tuple[int, int]) -> Search:
    """Search parameters (GET query or POST body) -> a :class:`Search`, or :class:`BadRequest`.

    ``limits`` is (default limit, max limit): the limit is capped silently at the second.

    Example:
        >>> s = parse_search({"collections": "a,b", "limit": "500"}, "GET", (10, 100))
        >>> s.collections, s.limit, s.desc
        (['a', 'b'], 100, True)
        >>> parse_search({"q": "x"}, "GET", (10, 100))
        Traceback (most recent call last):
        ...
        stacfetch._testing.search.BadRequest: q is not supported by this server
    """

    def listed(name: str) -> list[Any] | None:
        value = params.get(name)
        value = [v for v in value.split(",") if v] if isinstance(value, str) else value
        if value is not None and not isinstance(value, list):
            raise BadRequest(400, f"{name}: expected a list, got {value!r}")
        return value

    for key in ("filter", "query", "q"):
        if params.get(key) is not None:
            raise BadRequest(400, f"{key} is not supported by this server")
    geometry = params.get("intersects")
    if isinstance(geometry, str):
        geometry = orjson.loads(geometry)
    shape = None
    if geometry is not None:
        import shapely.geometry

        try:
            shape = shapely.geometry.shape(geometry)
        except Exception:
            raise BadRequest(400, f"invalid intersects geometry {geometry!r}") from None
        if params.get("bbox"):
            raise BadRequest(400, "bbox and intersects are mutually exclusive")
    try:
        bbox = listed("bbox")
        box = to_box(bbox) if bbox else None
        limit = int(limits[0] if params.get("limit") in (None, "") else params["limit"])
        lo, hi = interval(params.get("datetime"))
        token = params.get("token")
        after: Key | None = None
        offset = 0
        if token and str(token).startswith("o"):
            offset = int(str(token)[1:])
        elif token:
            t, i, c = orjson.loads(base64.urlsafe_b64decode(token))
            after = (int(t), str(i), str(c))
    except (TypeError, ValueError):
        raise BadRequest(400, f"invalid bbox, limit, datetime or token in {params!r}") from None
    if limit < 1 or (lo is not None and hi is not None and lo > hi):
        raise BadRequest(400, f"invalid limit or datetime in {params!r}")
    sortby = params.get("sortby") or "-datetime"
    if isinstance(sortby, list) and sortby and isinstance(sortby[0], dict):
        sortby = ("-" if sortby[0].get("direction") == "desc" else "+") + str(sortby[0]["field"])
    if not isinstance(sortby, str) or sortby.split(",")[0].lstrip(" +-") not in (
        "datetime",
        "properties.datetime",
    ):
        raise BadRequest(400, f"only sortby datetime is supported, not {sortby!r}")
    span = None
    if lo is not None or hi is not None:
        span = (to_datetime(lo), to_datetime(hi))
    collections, ids, desc = listed("collections"), listed("ids"), sortby.startswith("-")
    return Search(
        method,
        collections,
        ids,
        box,
        span,
        min(limit, limits[1]),
        token,
        desc,
        lo,
        hi,
        after,
        shape,
        offset,
        params.get("sortby") is not None,
    )


def to_datetime(value: int | None) -> datetime | None:
    """µs since the epoch -> an aware UTC datetime (None stays None).

    Example:
        >>> to_datetime(1_500_000).isoformat(), to_datetime(None)
        ('1970-01-01T00:00:01.500000+00:00', None)
    """
    return None if value is None else EPOCH + value * US


def interval(value: Any) -> tuple[int | None, int | None]:
    """``a/b``, ``../b``, ``a/..``, ``/b``, ``a/`` or an instant -> (lo, hi) in µs.

    Example:
        >>> interval("1970-01-01T00:00:01Z/.."), interval("1970-01-01T00:00:01Z"), interval(None)
        ((1000000, None), (1000000, 1000000), (None, None))
    """
    if not value:
        return None, None
    text = str(value)
    parts = text.split("/") if "/" in text else [text, text]
    lo, hi = (None if p in ("", "..") else instant(p) for p in parts)
    if lo is None and hi is None:
        raise ValueError(text)
    return lo, hi


def in_time(r: Record, s: Search, after: Key | None) -> bool:
    """Is ``r`` within the datetime interval of ``s`` and beyond the key ``after``?

    Example:
        >>> r = Record({"id": "x", "collection": "c",
        ...             "properties": {"datetime": "1970-01-01T00:00:01Z"}})
        >>> s = parse_search({"datetime": "../1970-01-01T00:00:02Z"}, "GET", (10, 100))
        >>> in_time(r, s, None), in_time(r, s, (0, "a", "c"))
        (True, False)
    """
    if (s.hi is not None and r.key[0] > s.hi) or (s.lo is not None and r.end < s.lo):
        return False
    return after is None or (r.key < after if s.desc else r.key > after)


class ItemStore:
    """Every item as a :class:`~stacfetch._testing.records.Record`: by (collection, id), per
    collection (as given and indexed), and those a buggy datetime filter misses.

    Example:
        >>> items = [{"id": i, "collection": "c", "properties": {"datetime": t}}
        ...          for i, t in (("a", "1970-01-01T00:00:01Z"), ("b", "1970-01-01T00:00:02Z"))]
        >>> store = ItemStore(items)
        >>> s = parse_search({"collections": ["c"]}, "POST", (10, 100))
        >>> [r.key[1] for r in store.matches(s, None)], [r.key[1] for r in store.ordered(s, "id")]
        (['b', 'a'], ['a', 'b'])
    """

    def __init__(
        self,
        items: Iterable[dict[str, Any]],
        datetime_filter_misses: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        by_coll: dict[str, list[Record]] = {}
        self.by_id: dict[tuple[str, str], Record] = {}
        self.misses: set[tuple[str, str]] = set()
        for seq, item in enumerate(items):
            rec = Record(item)
            rec.seq = seq
            if datetime_filter_misses is not None and datetime_filter_misses(item):
                self.misses.add((rec.key[2], rec.key[1]))
            by_coll.setdefault(rec.key[2], []).append(rec)
            self.by_id[(rec.key[2], rec.key[1])] = rec
        self.by_collection = by_coll
        self.index = {cid: Index(recs) for cid, recs in by_coll.items()}

    def matches(self, s: Search, after: Key | None) -> Iterator[Record]:
        """The items matching ``s`` in sort order, after the key ``after``."""
        recs: Iterable[Record]
        if s.ids is not None:
            found = (self.by_id.get((c, i)) for c in s.collections or self.index for i in s.ids)
            recs = sorted(
                (r for r in found if r and in_time(r, s, after)),
                key=lambda r: r.key,
                reverse=s.desc,
            )
        else:
            cids = [c for c in s.collections or self.index if c in self.index]
            walks = [w for c in cids for w in self.index[c].walk(s.lo, s.hi, after, s.desc)]
            recs = heapq.merge(*walks, key=lambda r: r.key, reverse=s.desc)
        box = s.bbox
        if box is not None:
            recs = (r for r in recs if r.hits(box))
        if s.shape is not None:
            shape = s.shape
            recs = (r for r in recs if (g := r.geometry()) is not None and g.intersects(shape))
        if self.misses and s.datetime is not None:
            misses = self.misses
            recs = (r for r in recs if (r.key[2], r.key[1]) not in misses)
        return iter(recs)

    def ordered(self, s: Search, order: str) -> list[Record]:
        """Every match of ``s`` in the server's default ``order`` (not the sort key's)."""
        recs = list(self.matches(s, None))
        if order == "datetime-asc":
            recs.reverse()
        elif order == "id":
            recs.sort(key=lambda r: (r.key[1], r.key[2]))
        elif order == "insertion":
            recs.sort(key=lambda r: r.seq)
        elif order == "desc-nulls-last":
            recs.sort(key=lambda r: r.ranged)
        return recs
