"""Search filters: what every matrix entry's search is narrowed by (datetime, bbox,
intersects, query, CQL2 filter, ids, sortby, fields, method), validated before any request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import field_validator, model_validator

from .datetimes import parse_datetime
from .errors import ConfigurationError
from .types import Interval
from .validation import StrictModel

__all__ = ["IngestFilters", "check_cql2", "normalize_fields"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class IngestFilters(StrictModel):
    """Filters of a STAC API item search (the seed's, plus intersects, CQL2 filter, sortby).

    Loose input is normalised: ``bbox`` as any 4- or 6-number sequence, ``datetime`` as
    anything :func:`stacfetch.parse_datetime` accepts (kept as the canonical string),
    ``ids`` / ``collections`` as a list or comma-separated string, ``intersects`` as GeoJSON
    or any object with ``__geo_interface__``, ``filter`` as CQL2-JSON (dict) or CQL2-text (str),
    ``sortby`` as ``"-datetime,+id"`` or a list.

    Example:
        >>> f = IngestFilters(bbox=(5, 45, 10, 48), datetime="2024-03")
        >>> f.bbox, f.datetime
        ([5.0, 45.0, 10.0, 48.0], '2024-03-01T00:00:00Z/2024-03-31T23:59:59.999999Z')
    """

    bbox: list[float] | None = None
    datetime: str | None = None
    query: dict[str, Any] | None = None
    ids: list[str] | None = None
    collections: list[str] | None = None
    intersects: dict[str, Any] | None = None
    filter: dict[str, Any] | str | None = None
    filter_lang: Literal["cql2-json", "cql2-text"] | None = None
    sortby: list[dict[str, str]] | None = None
    fields: dict[str, list[str]] | None = None
    method: Literal["GET", "POST"] | None = None

    @field_validator("bbox", mode="before")
    @classmethod
    def _bbox(cls, value: Any) -> list[float] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
            try:
                value = [float(v) for v in value]
            except ValueError:
                raise ValueError("bbox must be numbers 'west,south,east,north'") from None
        if not hasattr(value, "__len__") or isinstance(value, Mapping):
            raise ValueError("bbox must be a sequence [west, south, east, north]")
        items = list(value)
        if len(items) not in (4, 6):
            raise ValueError(
                f"bbox must have 4 numbers [west, south, east, north] (or 6 with heights), "
                f"got {len(items)}"
            )
        if not all(_is_number(v) for v in items):
            raise ValueError("bbox values must all be numbers")
        nums = [float(v) for v in items]
        half = len(nums) // 2
        west, south, east, north = nums[0], nums[1], nums[half], nums[half + 1]
        for name, lat in (("south", south), ("north", north)):
            if not -90 <= lat <= 90:
                raise ValueError(f"bbox {name} latitude must be within [-90, 90], got {lat}")
        for name, lon in (("west", west), ("east", east)):
            if not -180 <= lon <= 180:
                raise ValueError(f"bbox {name} longitude must be within [-180, 180], got {lon}")
        if south > north:
            raise ValueError(
                f"bbox south ({south}) is greater than north ({north}); the order is "
                "[west, south, east, north]"
            )
        return nums

    @field_validator("datetime", mode="before")
    @classmethod
    def _datetime(cls, value: Any) -> str | None:
        try:
            interval = parse_datetime(value, field="datetime")
        except ConfigurationError as exc:
            raise ValueError(str(exc).removeprefix("datetime: ")) from None
        return None if interval is None else interval.to_param()

    @field_validator("ids", "collections", mode="before")
    @classmethod
    def _str_list(cls, value: Any) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise ValueError("must be a list of strings or a comma-separated string")
        if not all(isinstance(v, str) and v for v in value):
            raise ValueError("every value must be a non-empty string")
        if not value:
            raise ValueError("must not be empty; leave it out (None) instead")
        return list(value)

    @field_validator("intersects", mode="before")
    @classmethod
    def _intersects(cls, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if hasattr(value, "__geo_interface__"):
            value = dict(value.__geo_interface__)
        if isinstance(value, str):
            import orjson

            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise ValueError("intersects string must be GeoJSON") from None
        if not isinstance(value, Mapping) or "type" not in value:
            raise ValueError("intersects must be a GeoJSON geometry (a dict with 'type')")
        if value["type"] in ("Feature",):
            value = value.get("geometry") or {}
        if value.get("type") not in (
            "Point",
            "MultiPoint",
            "LineString",
            "MultiLineString",
            "Polygon",
            "MultiPolygon",
            "GeometryCollection",
        ):
            raise ValueError(f"intersects has unknown GeoJSON geometry type {value.get('type')!r}")
        if "coordinates" not in value and "geometries" not in value:
            raise ValueError("intersects geometry has no 'coordinates'")
        return dict(value)

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, value: Any) -> dict[str, Any] | str | None:
        if value is None:
            return None
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("filter must not be an empty string")
            check_cql2(value)
            return value
        if isinstance(value, Mapping):
            if "op" not in value:
                raise ValueError("a CQL2-JSON filter must be an object with an 'op' key")
            check_cql2(dict(value))
            return dict(value)
        raise ValueError(
            f"filter must be CQL2-JSON (a dict) or CQL2-text (a string), got {type(value).__name__}"
        )

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> dict[str, list[str]] | None:
        return None if value is None else normalize_fields(value)

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value.strip().upper() not in ("GET", "POST"):
            raise ValueError(f"method must be 'GET' or 'POST', got {value!r}")
        return value.strip().upper()

    @field_validator("sortby", mode="before")
    @classmethod
    def _sortby(cls, value: Any) -> list[dict[str, str]] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError("sortby must be '-datetime,+id' or a list of fields/objects")
        out = []
        for part in value:
            if isinstance(part, str):
                direction = "desc" if part.startswith("-") else "asc"
                out.append({"field": part.lstrip("+-"), "direction": direction})
            elif isinstance(part, Mapping) and "field" in part:
                direction = str(part.get("direction", "asc")).lower()
                if direction not in ("asc", "desc"):
                    raise ValueError(f"sortby direction must be 'asc' or 'desc', got {direction!r}")
                out.append({"field": str(part["field"]), "direction": direction})
            else:
                raise ValueError(f"sortby entry {part!r} must be a string or {{'field': ...}}")
        return out

    @model_validator(mode="after")
    def _consistent(self) -> IngestFilters:
        if self.bbox is not None and self.intersects is not None:
            raise ValueError("bbox and intersects: give one or the other, not both")
        if self.filter is not None and self.filter_lang is None:
            lang = "cql2-text" if isinstance(self.filter, str) else "cql2-json"
            object.__setattr__(self, "filter_lang", lang)
        if self.filter_lang == "cql2-json" and isinstance(self.filter, str):
            raise ValueError("filter_lang is 'cql2-json' but filter is a string (CQL2-text)")
        if self.filter_lang == "cql2-text" and isinstance(self.filter, dict):
            raise ValueError("filter_lang is 'cql2-text' but filter is a dict (CQL2-JSON)")
        return self

    @property
    def interval(self) -> Interval | None:
        """The datetime filter as a closed :class:`~stacfetch.Interval` (None: no filter)."""
        return parse_datetime(self.datetime)

    def search_filters(self) -> dict[str, Any]:
        """Filters other than ``datetime`` and ``collections``, as STAC API POST body keys.

        ``method`` (when set) is not a body key:
        :func:`stacfetch._engine.search.build_search_request`
        takes it out and sends the search with that HTTP method.
        """
        out: dict[str, Any] = {}
        for key in ("bbox", "intersects", "query", "ids", "filter", "sortby", "fields", "method"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.filter is not None:
            out["filter-lang"] = self.filter_lang
        return out


def check_cql2(value: str | dict[str, Any]) -> None:
    """Parse and validate a CQL2 filter (text or JSON) with the ``cql2`` library.

    Raises ValueError with the parser's message (pydantic turns it into a
    :class:`~stacfetch.ConfigurationError` naming the ``filter`` field).

    Example:
        >>> check_cql2("eo:cloud_cover < 50")
        >>> check_cql2("eo:cloud_cover <<< 50")
        Traceback (most recent call last):
        ...
        ValueError: invalid CQL2-text: ...
    """
    import cql2

    kind = "CQL2-text" if isinstance(value, str) else "CQL2-JSON"
    try:
        expr = cql2.parse_text(value) if isinstance(value, str) else cql2.Expr(value)
        expr.validate()
    except Exception as exc:
        message = " ".join(str(exc).split())
        raise ValueError(f"invalid {kind}: {message[:300]}") from None


_KEEP_FIELDS = ("id", "collection")
"""Fields stacfetch needs in every item (exactly-once dedup by (collection, id))."""


def normalize_fields(value: Any) -> dict[str, list[str]]:
    """The fields-extension value ``{"include": [...], "exclude": [...]}`` of pystac-client's
    forms: a list of names with optional ``+``/``-`` prefixes, a comma-separated string, or a
    dict. ``id`` and ``collection`` are never excluded (exactly-once needs them).

    Example:
        >>> normalize_fields(["id", "properties.eo:cloud_cover", "-assets"])
        {'include': ['id', 'properties.eo:cloud_cover', 'collection'], 'exclude': ['assets']}
        >>> normalize_fields({"exclude": ["geometry"]})
        {'include': [], 'exclude': ['geometry']}
    """
    include: list[str] = []
    exclude: list[str] = []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Mapping):
        unknown = set(value) - {"include", "exclude"}
        if unknown:
            raise ValueError(f"fields may only have 'include' and 'exclude', not {sorted(unknown)}")
        for key, target in (("include", include), ("exclude", exclude)):
            names = value.get(key) or []
            if isinstance(names, str) or not isinstance(names, (list, tuple)):
                raise ValueError(f"fields.{key} must be a list of field names")
            target.extend(names)
    elif isinstance(value, (list, tuple)):
        for name in value:
            if not isinstance(name, str):
                raise ValueError(f"fields entries must be strings, got {name!r}")
            (exclude if name.startswith("-") else include).append(name.lstrip("+-"))
    else:
        raise ValueError(
            "fields must be a list like ['id', '-assets'], a string 'id,-assets' or "
            "{'include': [...], 'exclude': [...]}"
        )
    if not all(isinstance(n, str) and n.strip() for n in [*include, *exclude]):
        raise ValueError("fields names must be non-empty strings")
    exclude = [n for n in dict.fromkeys(exclude) if n not in _KEEP_FIELDS]
    include = list(dict.fromkeys(include))
    if include:
        include += [n for n in _KEEP_FIELDS if n not in include]
    return {"include": include, "exclude": exclude}
