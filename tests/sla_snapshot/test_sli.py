"""SLI arithmetic on known series: request- and time-based availability, idle
minutes, invalid data, error budget by real month length, burn rates over each
window and the multi-window alert states."""
import pytest

from jobs.sla_snapshot.sli import (ALERT_RULES, CacheCounts, MinuteSeries, WindowCounts,
                                   alert_states, burn_rate, burn_windows, count_window,
                                   error_budget, invalid_reason)
from tests.sla_snapshot.helpers import series, utc

END = utc(2026, 11, 27, 18)
HOUR_START = utc(2026, 11, 27, 17)


def counts(requests, errors, ratio=0.05):
    """One hour, given per-minute lists."""
    s = MinuteSeries(HOUR_START, tuple(requests), tuple(errors))
    return count_window(s, HOUR_START, END, ratio)


# --- request-based availability: all requests are the divisor, never 2xx only -------------

@pytest.mark.parametrize("requests, server_errors, two_xx, expected", [
    # 100 4xx answers: good requests, in the divisor. The seed said 1 - 100/800 = 87.5 %.
    (1000, 100, 800, 0.9),
    # redirect-heavy app: 600 3xx, 10 5xx. The seed said 1 - 10/390 = 97.4 %.
    (1000, 10, 390, 0.99),
    # every request failed: 0 %, not a division by zero on 2xx.
    (500, 500, 0, 0.0),
])
def test_request_availability_divides_5xx_by_all_requests(requests, server_errors, two_xx,
                                                          expected):
    per_minute = [0] * 60
    per_minute[0] = requests
    errors = [0] * 60
    errors[0] = server_errors
    c = counts(per_minute, errors)
    assert c.request_availability == pytest.approx(expected)
    seed_formula = 1 - server_errors / two_xx if two_xx else None
    assert seed_formula != pytest.approx(expected)  # the bug this replaces
    assert c.error_rate == pytest.approx(server_errors / requests)


# --- time-based availability and minutes without traffic ------------------------------------

@pytest.mark.parametrize("case, requests, errors, traffic, bad, time_based", [
    ("all good", [100] * 60, [0] * 60, 60, 0, 1.0),
    ("one bad minute of 60", [100] * 60, [50] + [0] * 59, 60, 1, 59 / 60),
    # idle minutes are excluded, never counted as good: 29 of 30 traffic minutes good
    ("half idle", [100] * 30 + [0] * 30, [20] + [0] * 59, 30, 1, 29 / 30),
    # 5 % of a minute failing is not above the 5 % threshold; 6 % is
    ("at the threshold", [100] * 60, [5] * 60, 60, 0, 1.0),
    ("above the threshold", [100] * 60, [6] * 60, 60, 60, 0.0),
    # a lone failed request makes its minute bad
    ("one request, failed", [1] + [0] * 59, [1] + [0] * 59, 1, 1, 0.0),
    ("no traffic at all", [0] * 60, [0] * 60, 0, 0, None),
])
def test_time_availability_counts_idle_minutes_apart(case, requests, errors, traffic, bad,
                                                     time_based):
    c = counts(requests, errors)
    assert (c.traffic_minutes, c.bad_minutes, c.idle_minutes) == (traffic, bad, 60 - traffic)
    assert c.time_availability == (pytest.approx(time_based) if time_based is not None else None)


def test_5xx_reported_in_a_minute_without_requests_counts_as_failed_requests():
    c = counts([0] * 60, [3] + [0] * 59)
    assert (c.requests, c.server_errors, c.bad_minutes) == (3, 3, 1)
    assert c.request_availability == 0.0


def test_minutes_outside_the_series_count_as_idle():
    s = MinuteSeries(utc(2026, 11, 27, 17, 30), (100,) * 30, (0,) * 30)
    c = count_window(s, HOUR_START, END, 0.05)
    assert (c.minutes, c.traffic_minutes, c.idle_minutes, c.requests) == (60, 30, 30, 3000)


def test_series_from_metric_points_treats_null_and_missing_as_no_traffic():
    start, end = HOUR_START, END
    requests = {utc(2026, 11, 27, 17, 0): 10.0, utc(2026, 11, 27, 17, 1): None,
                utc(2026, 11, 27, 18, 0): 99.0}  # outside [start, end): ignored
    errors = {utc(2026, 11, 27, 17, 0): 1.0}
    s = MinuteSeries.from_points(start, end, requests, errors)
    assert len(s.requests) == 60 and s.end == end
    assert (s.requests[0], s.requests[1], sum(s.requests), s.server_errors[0]) == (10, 0, 10, 1)


# --- validity: no data or too few events is invalid, never 100 % ------------------------------

@pytest.mark.parametrize("requests, min_events, reason", [
    (0, 100, "no requests"),
    (99, 100, "too few requests (99 < 100)"),
    (100, 100, None),
])
def test_too_few_requests_is_invalid_with_a_reason(requests, min_events, reason):
    assert invalid_reason(requests, min_events) == reason


def test_a_window_without_requests_has_no_availability_rather_than_100_percent():
    c = counts([0] * 60, [0] * 60)
    assert c.request_availability is None and c.time_availability is None
    assert c.error_rate is None


@pytest.mark.parametrize("hits, misses, ratio", [(800, 200, 0.8), (0, 10, 0.0), (0, 0, None)])
def test_cache_hit_ratio_is_hits_over_lookups(hits, misses, ratio):
    assert CacheCounts(hits, misses).hit_ratio == ratio


# --- error budget: real month length ---------------------------------------------------------

@pytest.mark.parametrize("month, objective, days, allowed", [
    ("2026-11", 0.999, 30, 43.2),
    ("2026-12", 0.999, 31, 44.64),
    ("2026-02", 0.999, 28, 40.32),
    ("2028-02", 0.999, 29, 41.76),  # leap year
    ("2026-11", 0.995, 30, 216.0),
    ("2026-12", 0.99, 31, 446.4),
])
def test_allowed_downtime_uses_the_real_month_length(month, objective, days, allowed):
    budget = error_budget(month, objective, consumed_minutes=0)
    assert budget.days_in_month == days
    assert budget.allowed_minutes == allowed


@pytest.mark.parametrize("consumed, remaining, ratio", [
    (0, 43.2, 0.0), (10, 33.2, 10 / 43.2), (43, 0.2, 43 / 43.2), (50, -6.8, 50 / 43.2)])
def test_budget_consumed_and_remaining(consumed, remaining, ratio):
    budget = error_budget("2026-11", 0.999, consumed)
    assert budget.remaining_minutes == pytest.approx(remaining)
    assert budget.consumed_ratio == pytest.approx(ratio)


def test_an_objective_of_100_percent_is_refused_it_leaves_no_budget():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        error_budget("2026-11", 1.0, 0)


# --- burn rates over each window --------------------------------------------------------------

# 1000 requests a minute for three days; the last 5 minutes fail at 5 % (50 a minute):
# 250 failed requests. Burn = (failed / requests) / 0.001.
@pytest.mark.parametrize("window, minutes, burn", [
    ("5m", 5, 50.0),
    ("30m", 30, 250 / 30_000 / 0.001),
    ("1h", 60, 250 / 60_000 / 0.001),
    ("2h", 120, 250 / 120_000 / 0.001),
    ("6h", 360, 250 / 360_000 / 0.001),
    ("1d", 1440, 250 / 1_440_000 / 0.001),
    ("3d", 4320, 250 / 4_320_000 / 0.001),
])
def test_burn_rate_of_each_window_is_error_rate_over_budget(window, minutes, burn):
    windows = burn_windows(series(END, errors={(5, 0): 50}), END, 0.05)
    assert windows[window].minutes == minutes
    assert burn_rate(windows[window], 0.999) == pytest.approx(burn)


def test_burn_rate_is_none_for_a_window_without_requests():
    assert burn_rate(WindowCounts(60, 0, 0, 0, 0), 0.999) is None


def test_a_burn_rate_of_exactly_the_threshold_counts():
    # 144 failures of 10 000 at 99.9 % is 14.4x despite binary floating point
    assert burn_rate(WindowCounts(60, 10_000, 144, 60, 0), 0.999) == 14.4


# --- multi-window alert states (SRE workbook) --------------------------------------------------

def firing(s, objective=0.999, min_events=100):
    states = alert_states(burn_windows(s, END, 0.05), objective, min_events)
    return {a.rule.name: a.state for a in states}


@pytest.mark.parametrize("case, errors, expected_firing", [
    ("clean", {}, set()),
    # 2 % for the last hour: 20x over 1h and 5m; 3.3x over 6h
    ("fast burn", {(60, 0): 20}, {"page-1h"}),
    # 0.7 % for 6 hours: 7x over 6h and 30m; 1.75x over 1d
    ("6h burn", {(360, 0): 7}, {"page-6h"}),
    # 0.4 % for a day: 4x over 1d and 2h; 1.33x over 3d and 4x over 6h, so the 3d ticket too
    ("1d burn", {(1440, 0): 4}, {"ticket-1d", "ticket-3d"}),
    # 0.15 % for three days: 1.5x over 3d and 6h, 1.5x over 1d (< 3)
    ("slow burn", {(4320, 0): 1.5}, {"ticket-3d"}),
    # 3 % for 55 minutes, then recovered: 1h burns 27.5x but the 5m window confirms nothing
    ("recovered", {(60, 5): 30}, set()),
    # 6 % for the last 5 minutes only: 5m burns 60x, 1h only 5x
    ("blip", {(5, 0): 60}, set()),
])
def test_each_rule_fires_only_when_long_and_short_windows_both_burn(case, errors,
                                                                    expected_firing):
    per_minute = 2000 if case == "slow burn" else 1000
    scaled = {k: int(v * per_minute / 1000) for k, v in errors.items()}
    states = firing(series(END, requests=per_minute, errors=scaled))
    assert {name for name, state in states.items() if state == "firing"} == expected_firing
    assert set(states.values()) <= {"firing", "ok"}


def test_rules_follow_the_sre_workbook():
    assert [(r.name, r.long, r.short, r.threshold) for r in ALERT_RULES] == [
        ("page-1h", "1h", "5m", 14.4), ("page-6h", "6h", "30m", 6.0),
        ("ticket-1d", "1d", "2h", 3.0), ("ticket-3d", "3d", "6h", 1.0)]


def test_no_traffic_gives_no_data_not_ok():
    assert set(firing(series(END, requests=0)).values()) == {"no-data"}


def test_an_idle_short_window_cannot_confirm_an_alert():
    # failures for the hour but no traffic in the last 5 minutes
    s = series(END, errors={(60, 5): 100}, idle=[(5, 0)])
    assert firing(s)["page-1h"] == "no-data"


def test_too_few_requests_in_the_long_window_never_pages():
    # 1 request a minute, every one failing: 60 events in the hour, fewer than 100
    s = series(END, requests=1, errors={(60, 0): 1})
    assert firing(s)["page-1h"] == "no-data"
    assert firing(s, min_events=50)["page-1h"] == "firing"
