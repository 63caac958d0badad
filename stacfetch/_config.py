"""Configuration: the seed's pydantic schema, extended, with loose input normalised.

``IngestConfig.concurrency`` accepts both spellings the seed uses: an int (the number of
parallel workers) or an object ``{"workers": 16, "chunk_size": 5000}`` where ``chunk_size`` is
the target number of items per chunk (``None`` = chosen from the page limit and the counts).

Any invalid value raises :class:`~stacfetch.ConfigurationError` (not pydantic's
``ValidationError``) naming the field and what would be valid, before any request is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ._datetimes import parse_datetime
from ._errors import ConfigurationError
from ._types import Interval

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LIMIT",
    "ConcurrencyConfig",
    "IngestConfig",
    "IngestFilters",
    "RetryConfig",
    "WorkflowContext",
]

DEFAULT_CONCURRENCY = 10
"""Parallel requests per matrix entry (the seed's default)."""
DEFAULT_LIMIT = 1000
"""Items per page asked of the server (servers may cap it: pgstac at 10000)."""
MAX_CONCURRENCY = 256


def _format_validation_error(model: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or model
        msg = re.sub(r"invalid [A-Za-z]+: ", "", err["msg"].removeprefix("Value error, "))
        lines.append(
            f"{loc}: {msg} (got {err.get('input')!r})" if "got" not in msg else f"{loc}: {msg}"
        )
    return f"invalid {model}: " + "; ".join(lines)


class _Model(BaseModel):
    """Base: forbid unknown fields, raise ConfigurationError instead of ValidationError."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(_format_validation_error(type(self).__name__, exc)) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Validate ``obj`` (a dict or an instance), raising ConfigurationError when invalid."""
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise ConfigurationError(_format_validation_error(cls.__name__, exc)) from None


def _strict_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer, got {type(value).__name__} {value!r}")
    return value


class ConcurrencyConfig(_Model):
    """Internal parallelism: ``workers`` parallel requests, chunks of about ``chunk_size`` items.

    Example:
        >>> ConcurrencyConfig(workers=16, chunk_size=5000).workers
        16
    """

    workers: int = DEFAULT_CONCURRENCY
    chunk_size: int | None = None

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> int:
        number = _strict_int(value, "workers")
        if not 1 <= number <= MAX_CONCURRENCY:
            raise ValueError(f"workers must be between 1 and {MAX_CONCURRENCY}, got {number}")
        return number

    @field_validator("chunk_size", mode="before")
    @classmethod
    def _chunk_size(cls, value: Any) -> int | None:
        if value is None:
            return None
        number = _strict_int(value, "chunk_size")
        if number < 1:
            raise ValueError(f"chunk_size must be >= 1 item, got {number}")
        return number


class RetryConfig(_Model):
    """Retry and timeout policy.

    429 answers back off exponentially with jitter, honouring ``Retry-After`` up to
    ``backoff_max``; 5xx, dropped connections, timeouts and invalid JSON are retried
    ``max_retries`` times, then the chunk fails.

    Example:
        >>> RetryConfig(max_retries=3).backoff_delay(2, jitter=False)
        1.0
    """

    max_retries: int = Field(default=5, ge=0, le=100)
    backoff_base: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for a response (read timeout)."""
    connect_timeout: float = Field(default=15.0, gt=0)

    def backoff_delay(self, attempt: int, *, jitter: bool = True, rng: Any = None) -> float:
        """Delay before retry number ``attempt`` (1-based): base·2^(attempt-1), capped, jittered.

        With jitter the delay is drawn uniformly from [delay/2, delay] ("equal jitter").
        """
        import random

        delay: float = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempt - 1))
        if jitter:
            delay = (rng or random).uniform(delay / 2, delay)
        return delay


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class IngestFilters(_Model):
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

        ``method`` (when set) is not a body key: :func:`stacfetch._search.build_search_request`
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


class IngestConfig(_Model):
    """The Ingest Module's configuration (catalog, collection, filters, paging), extended.

    ``collection_id`` and ``catalog_url`` override what the matrix context provides;
    ``source_file`` switches to file mode. ``limit`` is the page size asked of the server.

    Example:
        >>> cfg = IngestConfig(collection_id="sentinel-2-l2a", concurrency={"chunk_size": 2000})
        >>> cfg.concurrency.workers, cfg.concurrency.chunk_size
        (10, 2000)
        >>> IngestConfig(concurrency=16).concurrency.workers
        16
    """

    collection_id: str | None = None
    catalog_url: str | None = None
    source_file: str | None = None
    concurrency: ConcurrencyConfig = Field(default_factory=ConcurrencyConfig)
    limit: int = DEFAULT_LIMIT
    filters: IngestFilters = Field(default_factory=IngestFilters)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    max_items: int | None = None
    """Stop after this many items per entry (None: all). The result is then a sample."""

    _known_fields: ClassVar[tuple[str, ...]] = ()

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> Any:
        if value is None:
            return ConcurrencyConfig()
        if isinstance(value, bool):
            raise ValueError("concurrency must be an integer >= 1 or {'workers', 'chunk_size'}")
        if isinstance(value, int):
            return {"workers": value}
        if isinstance(value, (ConcurrencyConfig, Mapping)):
            return value
        raise ValueError(
            f"concurrency must be an integer >= 1 or an object "
            f"{{'workers': int, 'chunk_size': int}}, got {type(value).__name__}"
        )

    @field_validator("filters", mode="before")
    @classmethod
    def _filters(cls, value: Any) -> Any:
        return IngestFilters() if value is None else value

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: Any) -> int:
        number = _strict_int(value, "limit")
        if not 1 <= number <= 10000:
            raise ValueError(f"limit (page size) must be between 1 and 10000, got {number}")
        return number

    @field_validator("max_items", mode="before")
    @classmethod
    def _max_items(cls, value: Any) -> int | None:
        if value is None:
            return None
        number = _strict_int(value, "max_items")
        if number < 1:
            raise ValueError(f"max_items must be >= 1, got {number}")
        return number

    @field_validator("collection_id", "source_file", mode="before")
    @classmethod
    def _nonempty(cls, value: Any) -> Any:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("catalog_url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        if value is None:
            return None
        return validate_url(value)


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


def validate_url(value: Any, field: str = "catalog_url") -> str:
    """Check that ``value`` is an http(s) URL and return it without a trailing slash.

    Example:
        >>> validate_url("https://earth-search.aws.element84.com/v1/")
        'https://earth-search.aws.element84.com/v1'
    """
    from urllib.parse import urlsplit

    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{field} must be an http(s) URL string")
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 (validates the port)
    except ValueError:
        raise ConfigurationError(f"{field} {value!r} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{field} must be an http:// or https:// URL, got {value!r}")
    return value.strip().rstrip("/")


class WorkflowContext(_Model):
    """What a workflow's matrix strategy injects into a module: ``data`` holds the target.

    Example:
        >>> ctx = WorkflowContext(data={"collection_id": "landsat-c2-l2",
        ...                             "catalog_url": "https://example.com/stac"})
        >>> ctx.data["collection_id"]
        'landsat-c2-l2'
    """

    model_config = ConfigDict(extra="allow")
    data: dict[str, Any] = Field(default_factory=dict)
