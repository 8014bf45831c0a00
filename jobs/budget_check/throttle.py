"""How long to wait after a Cost Management 429, within a total wait cap.

Pure: no clock, no sleeping, no I/O; azure_io sleeps what ``next_wait`` says
and counts what it waited. Must never hammer: without a usable header it
waits ``DEFAULT_WAIT_SECONDS``, and it gives up (the result is then partial)
rather than pass the cap.

Headers honoured (the largest wins): ``Retry-After`` (seconds) and every
``x-ms-ratelimit-microsoft.costmanagement-<bucket>-retry-after`` (qpu,
entity, tenant, ...).
"""
from __future__ import annotations

import re
from typing import Mapping

DEFAULT_WAIT_SECONDS = 10.0
_COST_HEADER = re.compile(r"^x-ms-ratelimit-microsoft\.costmanagement-[\w.-]+-retry-after$", re.I)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The longest wait the response asks for, or None when it names none."""
    waits = []
    for name, value in headers.items():
        if name.lower() == "retry-after" or _COST_HEADER.match(name):
            try:
                seconds = float(str(value).strip())
            except ValueError:
                continue  # an HTTP date: ignored, the cost headers carry seconds
            if seconds >= 0:
                waits.append(seconds)
    return max(waits) if waits else None


def next_wait(headers: Mapping[str, str], waited: float, cap: float) -> float | None:
    """Seconds to wait before retrying, or None when that would pass ``cap``
    (seconds already ``waited`` for this query included): stop, report partial."""
    wait = retry_after_seconds(headers)
    wait = DEFAULT_WAIT_SECONDS if wait is None else wait
    return wait if waited + wait <= cap else None
