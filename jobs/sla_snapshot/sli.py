"""SLI arithmetic of the sla-snapshot job: availability, error rate, error
budget, burn rates and multi-window burn-rate alerts, from per-minute counts.

Must never: import an Azure SDK, read the clock, do I/O, or report an
availability for data that cannot support one (no traffic or too few
requests gives ``None`` with a reason, never 100 %).

Definitions (DOMAIN.md section 4; SLI = good / (good + bad)):

- request-based availability = 1 - 5xx / all requests (the App Service
  ``Requests`` and ``Http5xx`` metrics). Never 5xx / 2xx: 4xx, 3xx and 1xx
  answers are good requests and count in the divisor.
- a minute has traffic when it has at least one request. A minute with traffic
  is bad when its 5xx share exceeds ``bad_minute_ratio`` (strictly greater);
  otherwise good. Minutes with no traffic are counted as ``idle`` and are
  neither good nor bad. time-based availability = good / (good + bad).
  When the metrics disagree (5xx in a minute with fewer requests), the
  requests are raised to the 5xx count: those requests happened and failed.
- error rate = 5xx / all requests.
- error budget (month to date, real month length): allowed minutes =
  (1 - objective) * days_in_month * 1440 (99.9 %: 43.2 min in 30 days,
  44.64 in 31, 40.32 in a 28-day February); consumed = time-based bad minutes
  so far; remaining = allowed - consumed (negative once overspent).
- burn rate over a window = (1 - request-based availability) / (1 - objective)
  = error rate / error budget; ``None`` when the window had no requests. It
  needs request totals only (``request_counts``), never minute states, so the
  part of a long window (1 d, 3 d) that lies before the recent minute-level
  span is read as hourly totals (``MinuteSeries.earlier``, see queries.py). The
  raise of requests to the 5xx count is then made per hour: the same totals
  whenever no minute of that hour had more 5xx than requests (Http5xx counts a
  subset of Requests; only metrics that disagree within an hour can differ).
- alerts (SRE workbook, multi-window): a rule fires when both its long and its
  short window burn at or above the threshold and the long window has at least
  ``min_events`` requests; ``no-data`` when either window has no requests or
  the long window too few; otherwise ``ok``.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

MINUTES_PER_DAY = 1440
# Burn-rate windows, by label, in minutes.
WINDOWS: dict[str, int] = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440,
                           "3d": 4320}
REPORTED_WINDOWS = ("1h", "6h", "1d", "3d")  # burn rates every snapshot carries
LOOKBACK_MINUTES = WINDOWS["3d"]  # the series (minutes, then hourly blocks) reaches this far back


@dataclass(frozen=True)
class AlertRule:
    name: str
    severity: str  # "page" or "ticket"
    long: str  # window label
    short: str
    threshold: float


ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule("page-1h", "page", "1h", "5m", 14.4),
    AlertRule("page-6h", "page", "6h", "30m", 6.0),
    AlertRule("ticket-1d", "ticket", "1d", "2h", 3.0),
    AlertRule("ticket-3d", "ticket", "3d", "6h", 1.0),
)


def _utc_minute(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no UTC offset")
    return moment.astimezone(timezone.utc).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Block:
    """Requests and 5xx totals of ``minutes`` whole minutes from ``start`` (UTC), read
    at a coarser grain than the minute (one hour)."""

    start: datetime
    minutes: int
    requests: int
    server_errors: int

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


@dataclass(frozen=True)
class MinuteSeries:
    """Requests and 5xx per minute, from ``start`` (UTC, whole minute) on; and,
    optionally, ``earlier``: totals of consecutive blocks (hours) ending at
    ``start``, for the part of the long burn windows that needs no minute."""

    start: datetime
    requests: tuple[int, ...]
    server_errors: tuple[int, ...]
    earlier: tuple[Block, ...] = ()

    def __post_init__(self) -> None:
        if len(self.requests) != len(self.server_errors):
            raise ValueError("requests and server_errors must have one value per minute each")
        if _utc_minute(self.start) != self.start:
            raise ValueError("a series starts at a whole minute, in UTC")
        follows = self.start
        for block in reversed(self.earlier):
            if block.end != follows or block.minutes <= 0 or _utc_minute(block.start) != block.start:
                raise ValueError("earlier blocks must be whole minutes, consecutive, ending at start")
            follows = block.start

    @property
    def earliest(self) -> datetime:
        """Where the data begins: the first block's start, else ``start``."""
        return self.earlier[0].start if self.earlier else self.start

    @classmethod
    def from_points(cls, start: datetime, end: datetime,
                    requests: Mapping[datetime, float | None],
                    server_errors: Mapping[datetime, float | None]) -> "MinuteSeries":
        """From metric data points (timestamp -> Total). Missing or null points
        are minutes without requests; points outside [start, end) are ignored."""
        start, end = _utc_minute(start), _utc_minute(end)
        size = max(0, int((end - start).total_seconds() // 60))

        def column(points: Mapping[datetime, float | None]) -> tuple[int, ...]:
            values = [0] * size
            for moment, value in points.items():
                index = int((_utc_minute(moment) - start).total_seconds() // 60)
                if 0 <= index < size and value is not None:
                    values[index] += int(round(value))
            return tuple(values)

        return cls(start, column(requests), column(server_errors))

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=len(self.requests))


@dataclass(frozen=True)
class WindowCounts:
    """What happened in a span of minutes: the raw counts every SLI derives from."""

    minutes: int  # length of the span
    requests: int
    server_errors: int
    traffic_minutes: int  # minutes with at least one request
    bad_minutes: int  # traffic minutes whose 5xx share exceeded the threshold

    @property
    def idle_minutes(self) -> int:
        return self.minutes - self.traffic_minutes

    @property
    def good_minutes(self) -> int:
        return self.traffic_minutes - self.bad_minutes

    @property
    def error_rate(self) -> float | None:
        return self.server_errors / self.requests if self.requests else None

    @property
    def request_availability(self) -> float | None:
        return 1 - self.server_errors / self.requests if self.requests else None

    @property
    def time_availability(self) -> float | None:
        return self.good_minutes / self.traffic_minutes if self.traffic_minutes else None

    def __add__(self, other: "WindowCounts") -> "WindowCounts":
        return WindowCounts(self.minutes + other.minutes, self.requests + other.requests,
                            self.server_errors + other.server_errors,
                            self.traffic_minutes + other.traffic_minutes,
                            self.bad_minutes + other.bad_minutes)


NO_COUNTS = WindowCounts(0, 0, 0, 0, 0)


@dataclass(frozen=True)
class RequestCounts:
    """Request totals of a span of minutes: all a burn rate needs."""

    minutes: int
    requests: int
    server_errors: int

    @property
    def error_rate(self) -> float | None:
        return self.server_errors / self.requests if self.requests else None


def count_window(series: MinuteSeries, start: datetime, end: datetime,
                 bad_minute_ratio: float) -> WindowCounts:
    """Counts over [start, end). Minutes the series does not cover count as idle.
    Minute states need minutes: a window reaching into ``series.earlier`` is an error."""
    start, end = _utc_minute(start), _utc_minute(end)
    if series.earlier and start < series.start and end > series.earliest:
        raise ValueError(f"[{start.isoformat()}, {end.isoformat()}) needs minutes the series "
                         f"holds as hourly totals only (it has minutes from {series.start.isoformat()})")
    length = max(0, int((end - start).total_seconds() // 60))
    first = int((start - series.start).total_seconds() // 60)
    requests = errors = traffic = bad = 0
    for index in range(max(first, 0), min(first + length, len(series.requests))):
        minute_errors = max(series.server_errors[index], 0)
        minute_requests = max(series.requests[index], minute_errors)
        if minute_requests == 0:
            continue
        requests += minute_requests
        errors += minute_errors
        traffic += 1
        if minute_errors / minute_requests > bad_minute_ratio:
            bad += 1
    return WindowCounts(length, requests, errors, traffic, bad)


def invalid_reason(requests: int, min_events: int, what: str = "requests") -> str | None:
    """Why a count cannot support a ratio, or None when it can."""
    if requests <= 0:
        return f"no {what}"
    if requests < min_events:
        return f"too few {what} ({requests} < {min_events})"
    return None


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


@dataclass(frozen=True)
class ErrorBudget:
    """Month-to-date error budget in minutes (time-based)."""

    month: str  # "YYYY-MM"
    days_in_month: int
    objective: float  # ratio, e.g. 0.999
    consumed_minutes: int  # bad minutes so far

    @property
    def allowed_minutes(self) -> float:
        # rounded: (1 - 0.999) * 43200 is 43.1999999999952 in binary floating point
        return round((1 - self.objective) * self.days_in_month * MINUTES_PER_DAY, 6)

    @property
    def remaining_minutes(self) -> float:
        return round(self.allowed_minutes - self.consumed_minutes, 6)

    @property
    def consumed_ratio(self) -> float:
        return round(self.consumed_minutes / self.allowed_minutes, 9)


def error_budget(month: str, objective: float, consumed_minutes: int) -> ErrorBudget:
    """The budget of ``month`` ("YYYY-MM") for an objective given as a ratio."""
    if not 0 < objective < 1:
        raise ValueError(f"objective {objective} must be a ratio strictly between 0 and 1")
    year, number = (int(part) for part in month.split("-"))
    return ErrorBudget(month, days_in_month(year, number), objective, consumed_minutes)


def request_counts(series: MinuteSeries, start: datetime, end: datetime) -> RequestCounts:
    """Request totals over [start, end): per minute where the series has minutes (each
    minute's requests raised to its 5xx count, as ``count_window``), per block before
    that (each block's likewise). Uncovered minutes had no requests. A window edge
    inside a block cannot be counted exactly: an error (the fetch plan aligns them)."""
    start, end = _utc_minute(start), _utc_minute(end)
    length = max(0, int((end - start).total_seconds() // 60))
    requests = errors = 0
    for block in series.earlier:
        if block.end <= start or block.start >= end:
            continue
        if block.start < start or block.end > end:
            raise ValueError(f"[{start.isoformat()}, {end.isoformat()}) cuts the block of "
                             f"{block.minutes} minutes from {block.start.isoformat()}")
        block_errors = max(block.server_errors, 0)
        requests += max(block.requests, block_errors)
        errors += block_errors
    first = int((start - series.start).total_seconds() // 60)
    for index in range(max(first, 0), min(first + length, len(series.requests))):
        minute_errors = max(series.server_errors[index], 0)
        requests += max(series.requests[index], minute_errors)
        errors += minute_errors
    return RequestCounts(length, requests, errors)


def burn_rate(counts: WindowCounts | RequestCounts, objective: float) -> float | None:
    """(1 - SLI) / (1 - objective) over a window; None when it had no requests."""
    if not counts.requests:
        return None
    return round(counts.server_errors / counts.requests / (1 - objective), 9)


def burn_windows(series: MinuteSeries, end: datetime,
                 bad_minute_ratio: float) -> dict[str, RequestCounts]:
    """Request totals of every burn-rate window ending at ``end`` (the period end), by
    label. (``bad_minute_ratio`` is not used: burn rates are request-based.)"""
    return {label: request_counts(series, end - timedelta(minutes=minutes), end)
            for label, minutes in WINDOWS.items()}


@dataclass(frozen=True)
class AlertState:
    rule: AlertRule
    state: str  # "firing", "ok" or "no-data"
    long_burn: float | None
    short_burn: float | None


def alert_states(windows: Mapping[str, WindowCounts | RequestCounts], objective: float,
                 min_events: int) -> list[AlertState]:
    """The state of every multi-window rule, given the counts of every window."""
    states = []
    for rule in ALERT_RULES:
        long, short = windows[rule.long], windows[rule.short]
        long_burn, short_burn = burn_rate(long, objective), burn_rate(short, objective)
        if long_burn is None or short_burn is None or long.requests < min_events:
            state = "no-data"
        elif long_burn >= rule.threshold and short_burn >= rule.threshold:
            state = "firing"
        else:
            state = "ok"
        states.append(AlertState(rule, state, long_burn, short_burn))
    return states


@dataclass(frozen=True)
class CacheCounts:
    """Redis ``allcachehits`` and ``allcachemisses`` totals over a period."""

    hits: int
    misses: int

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_ratio(self) -> float | None:
        return self.hits / self.lookups if self.lookups else None
