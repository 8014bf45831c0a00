"""The dev-hours schedule: its grammar, and the on/off transitions it makes.

What this module must never do: read the clock, do I/O, or relabel a time
zone. Every instant is computed by converting local wall time with zoneinfo.

Grammar (one tag value, or the default schedule). Case and spaces around
``; , - =`` are free; everything else is strict, and any fault raises
ScheduleError naming the token and what was expected::

    schedule  := clause ( ";" clause )*          empty clauses are ignored
    clause    := days windows                    on-windows:  Mon-Fri 08:00-19:00
               | "on="  days times               start only:  on=Mon-Fri 07:30
               | "off=" days times               stop only:   off=Mon-Fri 19:00
               | "tz=" IANA-zone                 e.g. tz=America/New_York (default: the setting)
               | "holidays=" CC[-SUB] | "holidays=none"
    days      := dayset ( "," dayset )*
    dayset    := DAY | DAY "-" DAY | "daily" | "weekdays" | "weekends"
    DAY       := mon tue wed thu fri sat sun, or the full name (monday ...)
    windows   := TIME "-" TIME ( "," TIME "-" TIME )*
    times     := TIME ( "," TIME )*
    TIME      := H:MM or HH:MM, 00:00..23:59; 24:00 only as a window end

Examples: ``Mon-Fri 08:00-12:00,13:00-19:00; Sat 10:00-14:00; tz=Europe/Berlin``,
``off=Mon-Fri 19:00`` (only ever stops), ``on=Mon-Fri 07:30; off=daily 20:00``,
``Fri 22:00-02:00`` (on Friday 22:00, off Saturday 02:00).

Meaning:

- A window is on-time that starts on the named day; an end before the start
  (``22:00-02:00``) is on the next day, and 24:00 is the coming midnight. A
  day range may wrap (``Fri-Mon``). Windows that overlap or touch are merged, so
  ``daily 00:00-24:00`` is always on and makes no transition at all.
- ``on=``/``off=`` clauses are bare transitions; a schedule uses windows or
  bare transitions, never both. An ``on`` and an ``off`` at the same day and
  time is an error.
- Holidays are off days: on a holiday (local date) no window starts and no
  ``on`` happens; an ``off`` on a holiday still happens, as does the end of a
  window that started the day before. The calendar is the ``holidays``
  package for a country or country-subdivision (``GB``, ``US-NY``), plus
  explicit dates; ``holidays=`` replaces the configured country and
  ``holidays=none`` ignores every holiday, explicit dates included.
- Daylight saving time, per local wall time:
  * a time that does not exist (spring-forward gap) happens at the instant it
    names with the offset in force before the gap, i.e. shifted forward by the
    gap's length: 02:30 on a 02:00->03:00 night happens at 03:30, and 02:10 on
    Lord Howe's 02:00->02:30 night at 02:40; a window left empty by that
    shift is dropped;
  * a time that occurs twice (fall-back) happens once, at its first
    occurrence (fold=0).
- Transitions at the same instant collapse into the one with the later wall
  time (it was written to happen last).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

Kind = Literal["on", "off"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_SETS = {"daily": tuple(range(7)), "weekdays": tuple(range(5)), "weekends": (5, 6)}
LOOKBACK = timedelta(days=14)  # long enough for a long weekend plus a run of holidays
_DAY_MINUTES = 24 * 60


class ScheduleError(ValueError):
    """A schedule that does not follow the grammar; the message names the fault."""


@dataclass(frozen=True)
class Window:
    """On from ``start`` to ``end`` (minutes after local midnight) on each of ``days``
    (0=Monday); ``end <= start`` ends on the next day."""

    days: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Point:
    """A bare transition: ``kind`` at ``minute`` after local midnight on each of ``days``."""

    kind: Kind
    days: tuple[int, ...]
    minute: int


@dataclass(frozen=True)
class Schedule:
    text: str
    zone: str  # canonical IANA name
    windows: tuple[Window, ...] = ()
    points: tuple[Point, ...] = ()
    holiday_calendar: str | None = None  # "GB", "US-NY"
    holiday_dates: frozenset[date] = field(default_factory=frozenset)

    @property
    def kinds(self) -> frozenset[str]:
        """Which transitions the schedule can make: {'on','off'}, {'off'} (stop only)..."""
        if self.windows:
            return frozenset({"on", "off"})
        return frozenset(p.kind for p in self.points)

    def is_holiday(self, day: date) -> bool:
        if day in self.holiday_dates:
            return True
        return bool(self.holiday_calendar) and day in holiday_calendar_dates(self.holiday_calendar,
                                                                             day.year)


@dataclass(frozen=True)
class Transition:
    kind: Kind
    at: datetime  # UTC
    local: datetime  # the same instant in the schedule's zone
    wall: datetime  # naive local time as scheduled (differs from ``local`` in a DST gap)

    @property
    def id(self) -> str:
        """Stable name of this transition, as recorded in the job state."""
        return f"{self.kind}@{self.at.strftime('%Y-%m-%dT%H:%MZ')}"

    def describe(self) -> str:
        """'off at Fri 2026-11-27 19:00 Europe/Berlin (18:00 UTC)'."""
        zone = self.local.tzinfo.key if isinstance(self.local.tzinfo, ZoneInfo) else str(self.local.tzinfo)
        utc = self.at.strftime("%H:%M") if self.at.date() == self.local.date() \
            else self.at.strftime("%a %Y-%m-%d %H:%M")
        text = f"{self.kind} at {self.local.strftime('%a %Y-%m-%d %H:%M')} {zone} ({utc} UTC)"
        if self.local.replace(tzinfo=None) != self.wall:
            text += f"; scheduled {self.wall.strftime('%H:%M')}, which does not exist that day (DST)"
        return text


# -- parsing -----------------------------------------------------------------

def parse_schedule(text: str, *, zone: str = "UTC", holiday_calendar: str | None = None,
                   holiday_dates: Iterable[date] = ()) -> Schedule:
    """Parse a schedule; ``zone`` and the holiday arguments are the defaults a
    ``tz=`` or ``holidays=`` clause replaces. Raises ScheduleError."""
    return _parse(text, zone, holiday_calendar, frozenset(holiday_dates))


@lru_cache(maxsize=1024)
def _parse(text: str, zone: str, calendar: str | None, dates: frozenset[date]) -> Schedule:
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("empty schedule (expected e.g. 'Mon-Fri 08:00-19:00')")
    windows: list[Window] = []
    points: list[Point] = []
    tz_given = holidays_given = None
    for raw in text.split(";"):
        clause = raw.strip()
        if not clause:
            continue
        setting = re.match(r"^([A-Za-z]+)\s*=\s*(.*)$", clause, re.S)
        if not setting:
            windows.extend(_window_clause(clause))
            continue
        key, value = setting.group(1).lower(), setting.group(2).strip()
        if key == "tz":
            if tz_given is not None:
                raise ScheduleError(f"tz= given twice ('{tz_given}' and '{value}')")
            tz_given = value
            zone = canonical_zone(value)
        elif key == "holidays":
            if holidays_given is not None:
                raise ScheduleError(f"holidays= given twice ('{holidays_given}' and '{value}')")
            holidays_given = value
            if value.lower() == "none":
                calendar, dates = None, frozenset()
            else:
                calendar = canonical_calendar(value)
        elif key in ("on", "off"):
            points.extend(_point_clause(key, value, clause))
        else:
            raise ScheduleError(f"unknown setting '{setting.group(1)}=' in '{clause}' "
                                "(expected tz=, holidays=, on= or off=)")
    zone = canonical_zone(zone)
    if windows and points:
        raise ScheduleError("mixes windows (e.g. 'Mon-Fri 08:00-19:00') with on=/off= clauses; "
                            "use one style")
    if not windows and not points:
        raise ScheduleError(f"'{text.strip()}' has no hours (expected e.g. 'Mon-Fri 08:00-19:00' "
                            "or 'off=Mon-Fri 19:00')")
    seen: dict[tuple[int, int], str] = {}
    for p in points:
        for d in p.days:
            other = seen.setdefault((d, p.minute), p.kind)
            if other != p.kind:
                raise ScheduleError(f"on and off at the same time ({DAY_NAMES[d].title()} "
                                    f"{_hhmm(p.minute)})")
    return Schedule(text=text.strip(), zone=zone, windows=tuple(windows), points=tuple(points),
                    holiday_calendar=calendar, holiday_dates=dates)


_TOKEN = re.compile(r"\s*(?:(?P<time>\d+(?::\d*)?)|(?P<word>[A-Za-z]+)|(?P<punct>[-,])|(?P<bad>\S))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind is None:
            continue
        value = m.group(kind)
        if kind == "bad":
            raise ScheduleError(f"unexpected '{value}' in '{text.strip()}' "
                                "(expected days, HH:MM times, '-' or ',')")
        out.append((kind, value))
    return out


class _Reader:
    def __init__(self, clause: str, text: str):
        self.clause = clause
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at_punct(self, char: str) -> bool:
        return self.peek() == ("punct", char)

    def fail(self, expected: str) -> ScheduleError:
        tok = self.peek()
        got = f"'{tok[1]}'" if tok else "the end"
        return ScheduleError(f"expected {expected} but found {got} in '{self.clause}'")

    def days(self) -> tuple[int, ...]:
        days: list[int] = []
        while True:
            days.extend(self.dayset())
            if not (self.at_punct(",") and self.peek(1) and self.peek(1)[0] == "word"):
                break
            self.take()
        return tuple(sorted(set(days)))

    def dayset(self) -> tuple[int, ...]:
        tok = self.peek()
        if tok is None or tok[0] != "word":
            if tok and tok[0] == "time":
                raise ScheduleError(f"missing days before '{tok[1]}' in '{self.clause}' "
                                    "(expected e.g. 'Mon-Fri 08:00-19:00')")
            raise self.fail("a day (Mon..Sun, Mon-Fri, daily, weekdays, weekends)")
        word = self.take()[1]
        if word.lower() in _DAY_SETS:
            return _DAY_SETS[word.lower()]
        first = _day(word, self.clause)
        if not self.at_punct("-"):
            return (first,)
        self.take()
        tok = self.peek()
        if tok is None or tok[0] != "word":
            raise self.fail(f"a day to end the range '{word}-'")
        last = _day(self.take()[1], self.clause)
        return tuple((first + k) % 7 for k in range((last - first) % 7 + 1))

    def time(self, what: str, allow_24: bool = False) -> int:
        tok = self.peek()
        if tok is None or tok[0] != "time":
            raise self.fail(what)
        return _minute(self.take()[1], self.clause, allow_24)

    def end(self) -> None:
        tok = self.peek()
        if tok is None:
            return
        if tok == ("punct", ",") and self.peek(1) and self.peek(1)[0] == "word":
            raise ScheduleError(f"use ';' between day groups in '{self.clause}' "
                                "(e.g. 'Mon-Fri 08:00-19:00; Sat 10:00-14:00')")
        raise self.fail("',' or ';' or the end of the schedule")


def _window_clause(clause: str) -> list[Window]:
    r = _Reader(clause, clause)
    days = r.days()
    if r.peek() is None:
        raise ScheduleError(f"'{clause}' has no hours (expected e.g. 'Mon-Fri 08:00-19:00')")
    windows = []
    while True:
        start = r.time("a start time HH:MM")
        if not r.at_punct("-"):
            raise ScheduleError(f"window starting {_hhmm(start)} has no end in '{clause}' "
                                "(expected HH:MM-HH:MM)")
        r.take()
        end = r.time("an end time HH:MM", allow_24=True)
        if end == start:
            raise ScheduleError(f"window {_hhmm(start)}-{_hhmm(end)} is empty in '{clause}' "
                                "(for all day write 00:00-24:00)")
        windows.append(Window(days, start, end))
        if r.at_punct(",") and r.peek(1) and r.peek(1)[0] == "time":
            r.take()
            continue
        r.end()
        return windows


def _point_clause(kind: str, value: str, clause: str) -> list[Point]:
    r = _Reader(clause, value)
    days = r.days()
    points = [Point(kind, days, r.time(f"a time HH:MM for {kind}="))]  # type: ignore[arg-type]
    while r.at_punct(",") and r.peek(1) and r.peek(1)[0] == "time":
        r.take()
        points.append(Point(kind, days, r.time("a time HH:MM")))  # type: ignore[arg-type]
    r.end()
    return points


def _day(word: str, clause: str) -> int:
    if word.lower() in DAY_NAMES:
        return DAY_NAMES.index(word.lower())
    if word.lower() in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(word.lower())
    raise ScheduleError(f"unknown day '{word}' in '{clause}' (expected Mon..Sun, a range like "
                        "Mon-Fri, daily, weekdays or weekends)")


def _minute(text: str, clause: str, allow_24: bool) -> int:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if not m:
        raise ScheduleError(f"'{text}' is not a time in '{clause}' (expected HH:MM, e.g. 08:00)")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if allow_24 and hours == 24 and minutes == 0:
        return _DAY_MINUTES
    if hours > 23 or minutes > 59:
        raise ScheduleError(f"'{text}' is not a valid time in '{clause}' (00:00 to 23:59"
                            + (", or 24:00 to end a window)" if allow_24 else ")"))
    return hours * 60 + minutes


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@lru_cache(maxsize=1)
def _zones_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def canonical_zone(name: str) -> str:
    """The IANA name as zoneinfo spells it ('europe/berlin' -> 'Europe/Berlin');
    ScheduleError when there is no such zone."""
    cleaned = (name or "").strip()
    known = _zones_by_lower_name()
    if cleaned.lower() in known:
        return known[cleaned.lower()]
    if not known and cleaned:  # no zone list on this machine: ask zoneinfo itself
        try:
            ZoneInfo(cleaned)
            return cleaned
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ScheduleError(f"unknown time zone '{cleaned}' (expected an IANA name such as "
                        "Europe/London or America/New_York)")


def canonical_calendar(value: str) -> str:
    """'gb' -> 'GB', 'us-ny' -> 'US-NY'; ScheduleError when the holidays package
    has no such country or subdivision."""
    import holidays

    text = (value or "").strip()
    country, _, subdiv = text.partition("-")
    country = country.strip().upper()
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ScheduleError(f"unknown holiday country '{text}' (expected an ISO 3166 code "
                            "such as GB, or a country-subdivision such as US-NY)")
    if not subdiv.strip():
        return country
    by_lower = {s.lower(): s for s in supported[country]}
    found = by_lower.get(subdiv.strip().lower())
    if found is None:
        raise ScheduleError(f"unknown subdivision '{subdiv.strip()}' of holiday country {country} "
                            f"(known: {', '.join(supported[country][:12])}"
                            + (", ..." if len(supported[country]) > 12 else "") + ")")
    return f"{country}-{found}"


@lru_cache(maxsize=256)
def holiday_calendar_dates(calendar: str, year: int) -> frozenset[date]:
    """Public holidays of a 'CC' or 'CC-SUB' calendar in one year."""
    import holidays

    country, _, subdiv = calendar.partition("-")
    return frozenset(holidays.country_holidays(country, subdiv=subdiv or None, years=year))


# -- transitions ---------------------------------------------------------------

def transitions(schedule: Schedule, start: datetime, end: datetime) -> list[Transition]:
    """Every transition with ``start < at <= end`` (aware datetimes), oldest first."""
    _require_aware(start, end)
    zone = ZoneInfo(schedule.zone)
    first = start.astimezone(zone).date() - timedelta(days=2)
    last = end.astimezone(zone).date() + timedelta(days=2)
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    walls: list[tuple[datetime, Kind]] = []
    if schedule.windows:
        intervals = []
        for day in days:
            if schedule.is_holiday(day):
                continue
            midnight = datetime.combine(day, time())
            for w in schedule.windows:
                if day.weekday() in w.days:
                    length = (w.end - w.start) % _DAY_MINUTES or _DAY_MINUTES
                    begin = midnight + timedelta(minutes=w.start)
                    intervals.append((begin, begin + timedelta(minutes=length)))
        for on, off in _merge(intervals):
            if _to_utc(on, zone) < _to_utc(off, zone):
                walls += [(on, "on"), (off, "off")]
    else:
        for day in days:
            holiday = schedule.is_holiday(day)
            midnight = datetime.combine(day, time())
            for p in schedule.points:
                if day.weekday() in p.days and not (p.kind == "on" and holiday):
                    walls.append((midnight + timedelta(minutes=p.minute), p.kind))
    lo, hi = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    found: dict[datetime, Transition] = {}
    for wall, kind in sorted(walls):
        at = _to_utc(wall, zone)
        if lo < at <= hi:
            found[at] = Transition(kind, at, at.astimezone(zone), wall)  # later wall time wins
    return [found[at] for at in sorted(found)]


def latest_transition(schedule: Schedule, now: datetime,
                      lookback: timedelta = LOOKBACK) -> Transition | None:
    """The latest transition at or before ``now``, looking back ``lookback``."""
    found = transitions(schedule, now - lookback, now)
    return found[-1] if found else None


def next_transitions(schedule: Schedule, now: datetime, days: float = 7) -> list[Transition]:
    """Transitions after ``now``, up to ``days`` days ahead."""
    return transitions(schedule, now, now + timedelta(days=days))


def end_of_local_day(day: date, zone: str) -> datetime:
    """The UTC instant a local date ends (next local midnight), by the DST rule above."""
    return _to_utc(datetime.combine(day + timedelta(days=1), time()), ZoneInfo(zone))


def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for begin, finish in sorted(intervals):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], finish)
        else:
            merged.append([begin, finish])
    return [(a, b) for a, b in merged]


def _to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    # fold=0: a gap time takes the offset before the gap (shifted forward by the
    # gap's length); a repeated time is its first occurrence.
    return wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)


def _require_aware(*values: datetime) -> None:
    for value in values:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no UTC offset")
