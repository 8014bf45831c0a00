"""Keeps secret values out of logs, run reports and HTTP bodies.

A job that handles a secret value calls ``remember(value)`` as soon as it has
it. Every log record passes ``RedactingFilter`` and every report is passed
through ``scrub_data`` before it is stored or returned: a remembered value that
slips into a message is replaced by ``[REDACTED]``, also in its URL-encoded,
base64 and JSON-escaped forms. Scrub before truncating (a cut secret no longer
matches) and scrub strings, not serialized JSON (escaping changes the text). This
is a safety net, not a licence: jobs still never put values into messages.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
_MIN_LENGTH = 6  # shorter strings would mask ordinary words
_known: set[str] = set()
_lock = threading.Lock()


def remember(value: str | None) -> None:
    if value and len(value) >= _MIN_LENGTH:
        with _lock:
            _known.update(f for f in _forms(value) if len(f) >= _MIN_LENGTH)


def _forms(value: str) -> set[str]:
    """The value as it may appear in a URL, a header, a token or JSON text."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value),
             json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    for encoded in (base64.b64encode(value.encode()), base64.urlsafe_b64encode(value.encode())):
        forms.update({encoded.decode(), encoded.decode().rstrip("=")})
    return forms


def scrub(text: str, limit: int | None = None) -> str:
    """``text`` with every remembered value masked, then cut to ``limit`` characters."""
    with _lock:
        values = sorted(_known, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text if limit is None else text[:limit]


def scrub_data(data: Any) -> Any:
    """A JSON-like value with every string in it (keys too) scrubbed."""
    if isinstance(data, str):
        return scrub(data)
    if isinstance(data, dict):
        return {scrub_data(k): scrub_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [scrub_data(item) for item in data]
    return data


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _known:
            message = record.getMessage()
            cleaned = scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and record.exc_info[1] is not None:
                text = scrub(logging.Formatter().formatException(record.exc_info))
                record.exc_info, record.exc_text = None, text
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of the root logger (idempotent)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
