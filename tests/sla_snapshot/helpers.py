"""Known series and targets for the sla-snapshot tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from jobs.sla_snapshot.config import SlaSnapshotSettings
from jobs.sla_snapshot.sli import MinuteSeries

SUB = "00000000-0000-0000-0000-000000000001"
WORKSPACE = "11111111-1111-1111-1111-111111111111"


def app_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Web/sites/{name}"


def redis_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Cache/Redis/{name}"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def settings(**overrides) -> SlaSnapshotSettings:
    values = {"targets": f"{app_id('shop')}|production|{WORKSPACE}|{redis_id('shop-cache')}"}
    values.update(overrides)
    return SlaSnapshotSettings(**values)


def series(end: datetime, minutes: int = 4320, requests: int = 1000,
           errors: dict[tuple[int, int], int] | None = None,
           idle: list[tuple[int, int]] = ()) -> MinuteSeries:
    """``minutes`` minutes up to ``end`` with ``requests`` per minute and no 5xx,
    except: ``errors`` {(from, to): 5xx per minute} and ``idle`` [(from, to)]
    (no requests), both in minutes before ``end`` (from > to: (60, 0) is the
    last hour)."""
    start = end - timedelta(minutes=minutes)
    req = [requests] * minutes
    err = [0] * minutes
    for (ago_from, ago_to), count in (errors or {}).items():
        for i in range(minutes - ago_from, minutes - ago_to):
            err[i] = count
    for ago_from, ago_to in idle:
        for i in range(minutes - ago_from, minutes - ago_to):
            req[i] = err[i] = 0
    return MinuteSeries(start, tuple(req), tuple(err))
