"""Keep credentials out of every log record written while a run goes on, whoever writes it.

pystac-client's ``stac_api_io`` logger prints each discovery request with its headers at DEBUG;
httpx, httpcore and urllib3 print URLs (query-string keys included). :func:`redacting_logs`
installs a :class:`SecretFilter` for the duration of a run on the loggers that emit such
records (so the record is cleaned before any handler sees it) and on the root logger's
handlers (a safety net for everything that propagates). It replaces:

- every configured header value (``headers={"Authorization": "Bearer ..."}``: the whole value
  and, for ``Bearer``/``Basic`` schemes, the credential after it),
- the value after any secret-looking header or key name (``Authorization: ...``,
  ``'x-api-key': '...'``, ``"subscription-key"=...``),
- the values of secret-looking URL query parameters (``?api_key=...``, ``&sig=...``; the
  paging ``token`` is a cursor and stays),

with ``***``. The message is formatted first (``record.getMessage()``), so secrets passed as
``%s`` arguments are caught too; a formatted traceback (``exc_text``) is cleaned as well.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping

from .http import REDACTED, SECRET_NAMES

__all__ = ["WATCHED_LOGGERS", "SecretFilter", "redact_text", "redacting_logs", "secrets_of"]

WATCHED_LOGGERS = (
    "",
    "stacfetch",
    "pystac_client",
    "pystac_client.stac_api_io",
    "pystac_client.client",
    "pystac",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "urllib3",
    "urllib3.connectionpool",
    "requests",
)
"""Loggers a run's filter is installed on (plus every existing logger below these names)."""

_HEADER_NAMES = (
    r"authorization|proxy-authorization|x-api-key|api[-_]?key|apikey|subscription[-_]key|"
    r"ocp-apim-subscription-key|x-auth-token|x-access-token|access[-_]token|cookie|set-cookie|"
    r"private-token|x-amz-security-token|password|secret"
)
# 'Authorization': 'Bearer x'  /  "authorization": "x"  /  Authorization: Bearer x  /  key=x
_NAMED = re.compile(
    rf"""(?P<name>["']?(?:{_HEADER_NAMES})["']?\s*[:=]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|(?:(?:Bearer|Basic|Token|Digest)\s+)?[^\s,;&}'"\]]+)""",
    re.IGNORECASE,
)
_QUERY = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&\s#'\"]+)=(?P<value>[^&\s#'\"]*)")
_SCHEME = re.compile(r"^(Bearer|Basic|Token|Digest)\s+(.+)$", re.IGNORECASE)


def _named(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('name')}{quote}{REDACTED}{quote}"


def _query(match: re.Match[str]) -> str:
    name = match.group("name")
    if not SECRET_NAMES.search(name.lower()):
        return match.group(0)
    return f"{match.group('lead')}{name}={REDACTED}"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secret values, secret-looking header values and secret query
    parameters replaced by ``***``.

    Example:
        >>> redact_text("GET https://x/s?api_key=k1&token=next:2 Headers: "
        ...             "{'Authorization': 'Bearer abc123'}")
        "GET https://x/s?api_key=***&token=next:2 Headers: {'Authorization': '***'}"
        >>> redact_text("sent s3cr3t-value", ["s3cr3t-value"])
        'sent ***'
    """
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    text = _NAMED.sub(_named, text)
    return _QUERY.sub(_query, text)


def secrets_of(headers: Mapping[str, str] | None) -> list[str]:
    """The strings to hide for a run's ``headers``: each value, and the credential after a
    ``Bearer``/``Basic`` scheme; longest first, very short values (< 4 characters) left out.

    Example:
        >>> secrets_of({"Authorization": "Bearer abc123", "Accept": "*/*"})
        ['Bearer abc123', 'abc123']
    """
    out: set[str] = set()
    for value in (headers or {}).values():
        value = str(value).strip()
        if len(value) >= 4:
            out.add(value)
        scheme = _SCHEME.match(value)
        if scheme and len(scheme.group(2)) >= 4:
            out.add(scheme.group(2).strip())
    return sorted(out, key=lambda s: (-len(s), s))


class SecretFilter(logging.Filter):
    """A logging filter that rewrites records so that no secret reaches a handler.

    Example:
        >>> f = SecretFilter(["tok-123"])
        >>> rec = logging.LogRecord("x", logging.DEBUG, "", 0, "auth %s", ("tok-123",), None)
        >>> f.filter(rec), rec.getMessage()
        (True, 'auth ***')
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=lambda s: (-len(s), s))

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format: leave it to logging's own error handling
            return True
        cleaned = redact_text(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, self.secrets)
        return True


def _loggers() -> list[logging.Logger]:
    names = set(WATCHED_LOGGERS)
    prefixes = tuple(n + "." for n in WATCHED_LOGGERS if n)
    names.update(n for n in list(logging.root.manager.loggerDict) if n.startswith(prefixes))
    return [logging.getLogger(n) if n else logging.getLogger() for n in sorted(names)]


@contextlib.contextmanager
def redacting_logs(headers: Mapping[str, str] | None = None) -> Iterator[SecretFilter]:
    """Install a :class:`SecretFilter` (knowing ``headers``' values) for the ``with`` block.

    Example:
        >>> with redacting_logs({"Authorization": "Bearer abc123"}):
        ...     logging.getLogger("pystac_client.stac_api_io").debug("Headers: Bearer abc123")
    """
    flt = SecretFilter(secrets_of(headers))
    targets: list[logging.Filterer] = [*_loggers(), *logging.getLogger().handlers]
    for target in targets:
        target.addFilter(flt)
    try:
        yield flt
    finally:
        for target in targets:
            target.removeFilter(flt)
