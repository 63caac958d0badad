"""The validation base of every config model: unknown fields are refused and errors raise
:class:`~stacfetch.ConfigurationError` naming the field (never pydantic's ``ValidationError``)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigurationError

__all__ = ["StrictModel", "strict_int", "validate_url"]


def _format_validation_error(model: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or model
        msg = re.sub(r"invalid [A-Za-z]+: ", "", err["msg"].removeprefix("Value error, "))
        lines.append(
            f"{loc}: {msg} (got {err.get('input')!r})" if "got" not in msg else f"{loc}: {msg}"
        )
    return f"invalid {model}: " + "; ".join(lines)


class StrictModel(BaseModel):
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


def strict_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer, got {type(value).__name__} {value!r}")
    return value


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
