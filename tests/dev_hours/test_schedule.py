"""The dev-hours schedule grammar and its transitions, converted for real with
zoneinfo (never relabelled): DST gaps and repeats, zones whose date differs
from UTC's, holidays."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from jobs.dev_hours.schedule import (ScheduleError, latest_transition, next_transitions,
                                     parse_schedule, transitions)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def between(schedule: str, start: str, end: str, **defaults) -> list[tuple[str, str]]:
    s = parse_schedule(schedule, **defaults)
    return [(t.kind, t.at.strftime("%Y-%m-%dT%H:%M")) for t in transitions(s, utc(start), utc(end))]


# -- grammar -------------------------------------------------------------------

@pytest.mark.parametrize("text, zone, windows, points", [
    ("Mon-Fri 08:00-19:00", "Europe/London", [((0, 1, 2, 3, 4), 480, 1140)], []),
    ("  mon - fri   08:00 - 19:00 ; ", "Europe/London", [((0, 1, 2, 3, 4), 480, 1140)], []),
    ("MON-FRI 08:00-19:00;TZ = america/new_york", "America/New_York",
     [((0, 1, 2, 3, 4), 480, 1140)], []),
    ("Sat,Sun 10:00-14:00", "Europe/London", [((5, 6), 600, 840)], []),
    ("weekends 10:00-14:00", "Europe/London", [((5, 6), 600, 840)], []),
    ("daily 00:00-24:00", "Europe/London", [((0, 1, 2, 3, 4, 5, 6), 0, 1440)], []),
    ("Fri-Mon 10:00-11:00", "Europe/London", [((0, 4, 5, 6), 600, 660)], []),
    ("monday,Wednesday 8:00-9:30", "Europe/London", [((0, 2), 480, 570)], []),
    ("Fri 22:00-02:00", "Europe/London", [((4,), 1320, 120)], []),
    ("Mon-Fri 08:00-12:00,13:00-19:00; Sat 10:00-14:00; tz=Europe/Berlin", "Europe/Berlin",
     [((0, 1, 2, 3, 4), 480, 720), ((0, 1, 2, 3, 4), 780, 1140), ((5,), 600, 840)], []),
    ("off=Mon-Fri 19:00", "Europe/London", [], [("off", (0, 1, 2, 3, 4), 1140)]),
    ("on = weekdays 07:30 ; OFF=daily 20:00,23:30", "Europe/London", [],
     [("on", (0, 1, 2, 3, 4), 450), ("off", (0, 1, 2, 3, 4, 5, 6), 1200),
      ("off", (0, 1, 2, 3, 4, 5, 6), 1410)]),
])
def test_valid_schedules_parse_whatever_the_spacing_and_case(text, zone, windows, points):
    s = parse_schedule(text, zone="Europe/London")
    assert s.zone == zone
    assert [(w.days, w.start, w.end) for w in s.windows] == windows
    assert [(p.kind, p.days, p.minute) for p in s.points] == points


@pytest.mark.parametrize("text, kinds", [
    ("Mon-Fri 08:00-19:00", {"on", "off"}),
    ("off=Mon-Fri 19:00", {"off"}),
    ("on=Mon-Fri 07:30", {"on"}),
])
def test_stop_only_and_start_only_schedules_say_so(text, kinds):
    assert parse_schedule(text).kinds == kinds


@pytest.mark.parametrize("text, calendar, dates", [
    ("Mon-Fri 08:00-19:00; holidays=us-ny", "US-NY", {date(2026, 12, 24)}),
    ("Mon-Fri 08:00-19:00; holidays=gb", "GB", {date(2026, 12, 24)}),
    ("Mon-Fri 08:00-19:00", "DE-BY", {date(2026, 12, 24)}),  # the configured defaults
    ("Mon-Fri 08:00-19:00; holidays=none", None, set()),  # ignores configured dates too
])
def test_holiday_clause_replaces_the_configured_calendar(text, calendar, dates):
    s = parse_schedule(text, holiday_calendar="DE-BY", holiday_dates=[date(2026, 12, 24)])
    assert s.holiday_calendar == calendar
    assert set(s.holiday_dates) == dates


@pytest.mark.parametrize("text, message", [
    ("", "empty schedule"),
    ("   ;  ", "has no hours"),
    ("Mon-Fri 8-19", "'8' is not a time"),
    ("Mon-Fri 08:00", "window starting 08:00 has no end"),
    ("Mnday 08:00-19:00", "unknown day 'Mnday'"),
    ("Mon-Fri 25:00-26:00", "'25:00' is not a valid time"),
    ("Mon-Fri 08:60-19:00", "'08:60' is not a valid time"),
    ("Mon 24:00-05:00", "'24:00' is not a valid time"),
    ("Mon-Fri 08:00-19:00, Sat 10:00-14:00", "use ';' between day groups"),
    ("08:00-19:00", "missing days before '08:00'"),
    ("Mon- 08:00-19:00", "a day to end the range 'Mon-'"),
    ("Mon-Fri", "'Mon-Fri' has no hours"),
    ("Mon-Fri 08:00-08:00", "window 08:00-08:00 is empty"),
    ("Mon-Fri 08:00-19:00 later", "found 'later'"),
    ("off=(M-F,19);on=(M-F,7)", "unexpected '('"),  # Cloud Custodian syntax is refused, not guessed
    ("Mon-Fri 08:00-19:00; tz=Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("Mon-Fri 08:00-19:00; tz=", "unknown time zone ''"),
    ("Mon-Fri 08:00-19:00; tz=UTC; tz=Europe/Berlin", "tz= given twice"),
    ("Mon-Fri 08:00-19:00; holidays=XX", "unknown holiday country 'XX'"),
    ("Mon-Fri 08:00-19:00; holidays=US-ZZ", "unknown subdivision 'ZZ' of holiday country US"),
    ("Mon-Fri 08:00-19:00; off=Fri 17:00", "mixes windows"),
    ("tz=Europe/Berlin", "has no hours"),
    ("colour=blue", "unknown setting 'colour='"),
    ("on=Mon 08:00; off=Mon-Fri 08:00", "on and off at the same time (Mon 08:00)"),
    ("off=Mon-Fri", "expected a time HH:MM for off="),
])
def test_malformed_schedules_name_the_fault(text, message):
    with pytest.raises(ScheduleError) as err:
        parse_schedule(text)
    assert message in str(err.value)


# -- transitions: real conversions -------------------------------------------------

@pytest.mark.parametrize("schedule, start, end, expected", [
    pytest.param("Mon-Fri 08:00-19:00; tz=Europe/Berlin", "2026-11-27T00:00", "2026-11-30T23:59",
                 [("on", "2026-11-27T07:00"), ("off", "2026-11-27T18:00"),
                  ("on", "2026-11-30T07:00"), ("off", "2026-11-30T18:00")],
                 id="berlin-winter-is-utc+1"),
    pytest.param("Mon-Fri 08:00-19:00; tz=Europe/Berlin", "2026-06-05T00:00", "2026-06-05T23:59",
                 [("on", "2026-06-05T06:00"), ("off", "2026-06-05T17:00")],
                 id="berlin-summer-is-utc+2"),
    pytest.param("daily 02:30-06:00; tz=Europe/Berlin", "2026-03-28T12:00", "2026-03-29T12:00",
                 [("on", "2026-03-29T01:30"), ("off", "2026-03-29T04:00")],
                 id="berlin-spring-forward-02:30-happens-at-03:30"),
    pytest.param("daily 02:30-06:00; tz=America/New_York", "2026-03-07T12:00", "2026-03-08T12:00",
                 [("on", "2026-03-08T07:30"), ("off", "2026-03-08T10:00")],
                 id="new-york-spring-forward-02:30-happens-at-03:30"),
    pytest.param("daily 01:30-05:00; tz=America/New_York", "2026-10-31T12:00", "2026-11-01T12:00",
                 [("on", "2026-11-01T05:30"), ("off", "2026-11-01T10:00")],
                 id="new-york-fall-back-01:30-happens-once-first-occurrence"),
    pytest.param("off=daily 02:30; tz=Europe/Berlin", "2026-10-24T12:00", "2026-10-25T12:00",
                 [("off", "2026-10-25T00:30")],
                 id="berlin-fall-back-02:30-happens-once-first-occurrence"),
    pytest.param("on=daily 02:15; tz=Australia/Lord_Howe", "2026-10-03T00:00", "2026-10-04T00:00",
                 [("on", "2026-10-03T15:45")],
                 id="lord-howe-half-hour-gap-02:15-happens-at-02:45"),
    pytest.param("off=daily 01:45; tz=Australia/Lord_Howe", "2026-04-04T00:00", "2026-04-05T00:00",
                 [("off", "2026-04-04T14:45")],
                 id="lord-howe-half-hour-repeat-first-occurrence"),
    pytest.param("Sun 02:30-03:15; tz=Europe/Berlin", "2026-03-28T00:00", "2026-03-30T00:00", [],
                 id="window-emptied-by-the-gap-is-dropped"),
    pytest.param("off=Sun 02:30; on=Sun 03:30; tz=Europe/Berlin", "2026-03-28T00:00",
                 "2026-03-30T00:00", [("on", "2026-03-29T01:30")],
                 id="same-instant-after-gap-later-wall-time-wins"),
    pytest.param("Mon-Fri 08:00-17:00; tz=Pacific/Auckland", "2026-11-29T00:00", "2026-11-30T00:00",
                 [("on", "2026-11-29T19:00")], id="auckland-monday-morning-is-sunday-utc"),
    pytest.param("Mon-Fri 08:00-17:00; tz=Pacific/Kiritimati", "2026-11-29T00:00",
                 "2026-11-30T00:00", [("on", "2026-11-29T18:00")],
                 id="kiritimati-utc+14-monday-is-sunday-utc"),
    pytest.param("Fri 22:00-02:00; tz=UTC", "2026-11-27T00:00", "2026-11-29T00:00",
                 [("on", "2026-11-27T22:00"), ("off", "2026-11-28T02:00")],
                 id="window-crossing-midnight-ends-next-day"),
    pytest.param("Mon 08:00-12:00,11:00-19:00; tz=UTC", "2026-11-30T00:00", "2026-12-01T00:00",
                 [("on", "2026-11-30T08:00"), ("off", "2026-11-30T19:00")],
                 id="overlapping-windows-merge"),
    pytest.param("Mon 20:00-24:00; Tue 00:00-06:00; tz=UTC", "2026-11-30T00:00",
                 "2026-12-02T00:00", [("on", "2026-11-30T20:00"), ("off", "2026-12-01T06:00")],
                 id="touching-windows-make-no-midnight-blip"),
    pytest.param("daily 00:00-24:00; tz=UTC", "2026-11-01T00:00", "2026-12-01T00:00", [],
                 id="always-on-makes-no-transition"),
    pytest.param("off=Mon-Fri 19:00; tz=Europe/London", "2026-11-30T00:00", "2026-12-07T00:00",
                 [("off", f"2026-{d}T19:00") for d in ("11-30", "12-01", "12-02", "12-03", "12-04")],
                 id="stop-only-never-starts"),
])
def test_transitions_convert_local_time_for_real(schedule, start, end, expected):
    assert between(schedule, start, end) == expected


def test_a_time_in_the_gap_says_when_it_really_happens():
    s = parse_schedule("on=daily 02:30; tz=Europe/Berlin")
    (t,) = transitions(s, utc("2026-03-28T12:00"), utc("2026-03-29T12:00"))
    assert t.local.strftime("%H:%M %z") == "03:30 +0200"
    assert "scheduled 02:30, which does not exist that day (DST)" in t.describe()


def test_description_shows_local_time_zone_and_utc_even_across_dates():
    s = parse_schedule("Mon-Fri 08:00-17:00; tz=Pacific/Auckland")
    t = latest_transition(s, utc("2026-11-29T19:05"))
    assert t.describe() == "on at Mon 2026-11-30 08:00 Pacific/Auckland (Sun 2026-11-29 19:00 UTC)"


def test_the_default_zone_is_used_when_no_tz_is_given():
    london = parse_schedule("Mon-Fri 08:00-19:00", zone="Europe/London")
    tokyo = parse_schedule("Mon-Fri 08:00-19:00", zone="Asia/Tokyo")
    monday = utc("2026-11-30T00:00")

    def first_on(s):
        return next(t.at for t in next_transitions(s, monday, 2) if t.kind == "on")
    assert first_on(london) == utc("2026-11-30T08:00")
    assert first_on(tokyo) == utc("2026-11-30T23:00")  # Tuesday 08:00 in Tokyo


# -- holidays ----------------------------------------------------------------------

WEEKDAYS_LONDON = "Mon-Fri 08:00-19:00; tz=Europe/London"


@pytest.mark.parametrize("schedule, defaults, expected", [
    pytest.param(WEEKDAYS_LONDON + "; holidays=GB", {},
                 [("off", "2026-12-24T19:00"), ("on", "2026-12-29T08:00"), ("off", "2026-12-29T19:00")],
                 id="christmas-and-observed-boxing-day-are-off"),
    pytest.param(WEEKDAYS_LONDON, {"holiday_calendar": "GB", "holiday_dates": [date(2026, 12, 29)]},
                 [("off", "2026-12-24T19:00")], id="configured-calendar-plus-explicit-date"),
    pytest.param(WEEKDAYS_LONDON + "; holidays=none", {"holiday_calendar": "GB"},
                 [("off", "2026-12-24T19:00"), ("on", "2026-12-25T08:00"), ("off", "2026-12-25T19:00"),
                  ("on", "2026-12-28T08:00"), ("off", "2026-12-28T19:00"), ("on", "2026-12-29T08:00"),
                  ("off", "2026-12-29T19:00")], id="holidays-none-ignores-them"),
    pytest.param("on=daily 08:00; off=daily 19:00; holidays=GB; tz=Europe/London", {},
                 [("off", "2026-12-24T19:00"), ("off", "2026-12-25T19:00"), ("off", "2026-12-26T19:00"),
                  ("on", "2026-12-27T08:00"), ("off", "2026-12-27T19:00"), ("off", "2026-12-28T19:00"),
                  ("on", "2026-12-29T08:00"), ("off", "2026-12-29T19:00")],
                 id="an-off-on-a-holiday-still-happens"),
    pytest.param("Thu 22:00-02:00; Fri 22:00-02:00; holidays=GB; tz=Europe/London", {},
                 [("on", "2026-12-24T22:00"), ("off", "2026-12-25T02:00")],
                 id="window-into-a-holiday-still-ends-window-on-a-holiday-never-starts"),
])
def test_holidays_are_off_days(schedule, defaults, expected):
    assert between(schedule, "2026-12-24T12:00", "2026-12-30T00:00", **defaults) == expected


@pytest.mark.parametrize("calendar, starts_on_lincolns_birthday", [("US", True), ("US-NY", False)])
def test_holiday_subdivisions_have_their_own_days(calendar, starts_on_lincolns_birthday):
    got = between(f"Mon-Fri 09:00-17:00; tz=America/New_York; holidays={calendar}",
                  "2026-02-12T00:00", "2026-02-13T00:00")
    assert (("on", "2026-02-12T14:00") in got) is starts_on_lincolns_birthday


# -- latest / next -------------------------------------------------------------------

@pytest.mark.parametrize("now, expected", [
    pytest.param("2026-11-27T18:00", ("off", "2026-11-27T18:00"), id="at-the-instant-counts"),
    pytest.param("2026-11-27T17:59", ("on", "2026-11-27T07:00"), id="a-minute-before"),
    pytest.param("2026-11-30T06:59", ("off", "2026-11-27T18:00"), id="over-the-weekend"),
])
def test_latest_transition_is_at_or_before_now(now, expected):
    t = latest_transition(parse_schedule("Mon-Fri 08:00-19:00; tz=Europe/Berlin"), utc(now))
    assert (t.kind, t.at.strftime("%Y-%m-%dT%H:%M")) == expected


def test_latest_transition_reaches_back_over_a_long_holiday_run():
    # Off on Wed 23 Dec, then Christmas, Boxing Day, the weekend, the observed
    # bank holiday and explicit shutdown days up to New Year.
    s = parse_schedule("Mon-Fri 08:00-19:00; tz=Europe/London; holidays=GB",
                       holiday_dates=[date(2026, 12, 24), date(2026, 12, 29), date(2026, 12, 30),
                                      date(2026, 12, 31)])
    t = latest_transition(s, utc("2027-01-01T12:00"))
    assert (t.kind, t.at) == ("off", utc("2026-12-23T19:00"))


def test_no_transition_in_the_lookback_gives_none():
    s = parse_schedule("Mon-Fri 08:00-19:00; tz=UTC",
                       holiday_dates=[date(2026, 11, 1) + timedelta(days=k) for k in range(30)])
    assert latest_transition(s, utc("2026-11-25T12:00")) is None


def test_next_transitions_cover_the_requested_days_only():
    s = parse_schedule("Mon-Fri 08:00-19:00; tz=Europe/Berlin")
    # after Fri 19:00 local (now, excluded) up to Mon 19:00 local (included)
    got = next_transitions(s, utc("2026-11-27T18:00"), days=3)
    assert [(t.kind, t.local.strftime("%a %H:%M")) for t in got] == [("on", "Mon 08:00"),
                                                                      ("off", "Mon 19:00")]


def test_naive_instants_are_refused():
    s = parse_schedule("Mon-Fri 08:00-19:00")
    with pytest.raises(ValueError, match="no UTC offset"):
        transitions(s, datetime(2026, 11, 27), datetime(2026, 11, 28))
