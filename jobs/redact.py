"""Keeps secret values out of logs, run reports and HTTP bodies.

A job that handles a secret value calls ``remember(value)`` as soon as it has
it. Every log record passes ``RedactingFilter`` and every report is passed
through ``scrub`` before it is stored or returned: a remembered value that slips
into a message is replaced by ``[REDACTED]``. This is a safety net, not a
licence: jobs still never put values into messages.
"""
from __future__ import annotations

import logging
import threading

MASK = "[REDACTED]"
_MIN_LENGTH = 6  # shorter strings would mask ordinary words
_known: set[str] = set()
_lock = threading.Lock()


def remember(value: str | None) -> None:
    if value and len(value) >= _MIN_LENGTH:
        with _lock:
            _known.add(value)


def scrub(text: str) -> str:
    with _lock:
        values = sorted(_known, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


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
