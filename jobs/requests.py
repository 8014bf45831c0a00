"""Turning manual-run requests (HTTP query/body, CLI flags) into run arguments.

Shared by the HTTP API and the CLI so both accept and refuse the same things,
with the same messages. Pure: no I/O.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

MAX_BODY_BYTES = 64 * 1024
NOW_TOLERANCE = timedelta(minutes=5)  # how far a real run's `now` may be from the clock (skew, slow requests)
MAX_BODY_DEPTH = 32  # every value a run takes is a scalar; deeper is hostile (and str() of it recurses)
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
_OPTION_VALUE = re.compile(r"(?!.*\.\.)[A-Za-z0-9._:@+=-]{1,256}")  # fullmatch: `$` allows a final newline


class BadRequest(ValueError):
    """The request is malformed; the message says what and how to fix it."""

    status = 400


class TooLarge(BadRequest):
    status = 413


class MethodNotAllowed(BadRequest):
    status = 405


class Forbidden(BadRequest):
    status = 403


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise BadRequest(f"{name} must be true or false, got {shown(value)}")


def parse_now(value: Any) -> datetime | None:
    """An ISO-8601 instant with a UTC offset (``Z`` or ``+01:00``)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64 or not value.isprintable():
        raise BadRequest(f"now must be an ISO-8601 date and time with offset, got {shown(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"now must be an ISO-8601 date and time with offset, e.g. "
                         f"2026-11-27T18:00:00Z; got {shown(value)}") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"now must include a UTC offset (Z or +hh:mm), got {shown(value)}")
    if not 2000 <= parsed.year <= 2200:
        raise BadRequest(f"now is out of range: {shown(value)}")
    return parsed


def check_now(now: datetime | None, *, dry_run: bool, clock: datetime) -> None:
    """A real run changes the world at the real time: a far-off ``now`` would leave lasting
    damage (a budget starting months ahead, a month's final report written early, grace
    periods ending in 2199). So ``now`` is for what-if dry runs, or within NOW_TOLERANCE."""
    if now is None or dry_run or abs(now - clock) <= NOW_TOLERANCE:
        return
    raise BadRequest(f"now {now.isoformat()} is {_distance(now - clock)} the clock "
                     f"({clock.replace(microsecond=0).isoformat()}): a real run takes now only within "
                     f"{NOW_TOLERANCE.seconds // 60} minutes of the clock; leave now out, or make it "
                     f"a dry run")


def _distance(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    amount = f"{seconds / 86400:.0f} days" if seconds >= 2 * 86400 else f"{seconds / 60:.0f} minutes"
    return f"{amount} {'ahead of' if delta.total_seconds() > 0 else 'behind'}"


def parse_option(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _OPTION_VALUE.fullmatch(value):
        raise BadRequest(f"option {shown(name)} must be a short plain string "
                         f"(letters, digits, ._:@+=-), got {shown(value)}")
    return value


def parse_body(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, object_pairs_hook=_unique_keys)
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest(f"request body is nested too deeply (at most {MAX_BODY_DEPTH} levels)") from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if _depth(body) > MAX_BODY_DEPTH:
        raise BadRequest(f"request body is nested too deeply (at most {MAX_BODY_DEPTH} levels)")
    return body


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys repeat must repeat the same value: parsers disagree on
    which one wins, so {"dry_run": true, "dry_run": false} is refused, never a real run."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj and obj[key] != value:
            raise BadRequest(f"{shown(key)} is given twice with different values")
        obj[key] = value
    return obj


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > MAX_BODY_DEPTH:
                break
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def run_arguments(query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """dry_run (default True), now and options from a query and a JSON body.
    A value given in both places must agree."""
    merged: dict[str, Any] = {}
    for source in (query, body):
        for key, value in source.items():
            if key == "code":  # the function key, read by the host
                continue
            if key in merged and merged[key] != value and str(merged[key]).lower() != str(value).lower():
                raise BadRequest(f"{shown(key)} is given twice with different values")
            merged[key] = value
    dry_run = parse_bool("dry_run", merged.pop("dry_run", True))
    now = parse_now(merged.pop("now", None))
    options = {str(k): parse_option(str(k), v) for k, v in merged.items()}
    return {"dry_run": dry_run, "now": now, "options": options}


def shown(value: Any) -> str:
    """A value as an error message quotes it: repr, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
