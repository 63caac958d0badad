"""The exceptions stacfetch raises.

Every error stacfetch raises on purpose derives from :class:`StacfetchError`::

    StacfetchError
    ├── ConfigurationError      bad input, detected before any request is sent
    ├── SourceError             file mode: missing, unreadable or non-STAC files
    └── StacApiError            the server said something we cannot work with
        ├── NotAStacApiError    the URL does not serve a STAC API landing page
        ├── CollectionNotFoundError
        ├── FetchError          a request failed for good (after retries); carries ``request``
        └── SearchRejectedError the server answered 400 to the search itself (bad filter,
                                query, sortby, fields...): raised once, before any chunk runs

:class:`IncompleteIngestError` is raised at the end of a run with ``strict=True`` when
chunks failed; it carries the :class:`~stacfetch.FailureCollector`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CollectionNotFoundError",
    "ConfigurationError",
    "FetchError",
    "IncompleteIngestError",
    "NotAStacApiError",
    "SearchRejectedError",
    "SourceError",
    "StacApiError",
    "StacfetchError",
]


class StacfetchError(Exception):
    """Base class of every error stacfetch raises on purpose.

    Example:
        >>> try:
        ...     raise ConfigurationError("bbox: expected 4 or 6 numbers")
        ... except StacfetchError as exc:
        ...     print(type(exc).__name__)
        ConfigurationError
    """


class ConfigurationError(StacfetchError, ValueError):
    """Invalid configuration or input, raised before any request is sent.

    The message names the field and says what would be valid.

    Example:
        >>> raise ConfigurationError("concurrency: must be >= 1, got 0")
        Traceback (most recent call last):
        ...
        stacfetch._model.errors.ConfigurationError: concurrency: must be >= 1, got 0
    """


class SourceError(StacfetchError):
    """A ``source_file`` (file mode) is missing, unreadable, or holds no STAC items.

    Example:
        >>> SourceError("source_file: no file matches 'data/*.json'").args[0]
        "source_file: no file matches 'data/*.json'"
    """


class StacApiError(StacfetchError):
    """A STAC API answered in a way stacfetch cannot use.

    Example:
        >>> isinstance(NotAStacApiError("https://example.com is not a STAC API"), StacApiError)
        True
    """


class NotAStacApiError(StacApiError):
    """The catalog URL does not serve a STAC API landing page (HTML, 404, no links...)."""


class CollectionNotFoundError(StacApiError, ConfigurationError):
    """The catalog has no collection with the requested id (checked once per entry)."""


class FetchError(StacApiError):
    """A request failed for good, after the retries the policy allows.

    Attributes:
        status_code: last HTTP status code seen, or ``None`` for transport errors.
        request: a redacted description of the request (method, url, body).
        attempts: how many times the request was sent.

    Example:
        >>> err = FetchError("503 Service Unavailable", status_code=503, attempts=4)
        >>> err.status_code, err.attempts
        (503, 4)
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request: dict[str, Any] | None = None,
        attempts: int = 1,
        error_type: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request = request or {}
        self.attempts = attempts
        self.error_type = error_type or type(self).__name__
        self.retryable = retryable


class SearchRejectedError(StacApiError, ConfigurationError):
    """The server rejected the search itself (HTTP 400/422): raised once, before any chunk
    is fetched, with the server's message (``docs/decisions/0008-pystac-client-parity.md``).

    It is also a :class:`ConfigurationError`: the search parameters must change.

    Attributes:
        status_code: the HTTP status (400 or 422).
        server_message: what the server said (its ``description``/``detail``, or the body).
        request: a redacted description of the probe request.

    Example:
        >>> err = SearchRejectedError("filter: the server rejected the search", status_code=400,
        ...                           server_message="Unknown property")
        >>> isinstance(err, ConfigurationError), err.status_code
        (True, 400)
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        server_message: str = "",
        request: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.server_message = server_message
        self.request = request or {}


class IncompleteIngestError(StacfetchError):
    """Raised at the end of a ``strict=True`` run when some chunks failed.

    Attributes:
        failures: the run's :class:`~stacfetch.FailureCollector`.
    """

    def __init__(self, message: str, failures: Any) -> None:
        super().__init__(message)
        self.failures = failures
