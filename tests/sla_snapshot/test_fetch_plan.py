"""The fetch plan of the app metrics (queries.app_metric_fetches): per minute only
where minutes matter (the period and the short burn windows), hourly totals for the
rest of the 1 d and 3 d windows. On a known minute series it gives the very snapshot
(same bytes) that the whole three days read per minute give, through the real read
code (azure_io reading Azure-shaped getBatch answers) as well as by hand."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from jobs.sla_snapshot import azure_io
from jobs.sla_snapshot.latency import Latency
from jobs.sla_snapshot.queries import app_metric_fetches, app_metrics_timespan
from jobs.sla_snapshot.sli import (NO_COUNTS, Block, CacheCounts, MinuteSeries, burn_windows,
                                   count_window, request_counts)
from jobs.sla_snapshot.snapshot import Period, build_snapshot, canonical_json
from tests.sla_snapshot.helpers import app_id, settings, utc

SETTINGS = settings()
SHOP = SETTINGS.targets[0]
HOUR = Period("hour", utc(2026, 11, 27, 17))
DAY = Period("day", utc(2026, 11, 26))
LATENCY = Latency(count=5000, p50=80.0, p95=420.0, p99=950.0, within_p95_target=4800,
                  within_p99_target=4960, histogram={38: 4000, 52: 960, 60: 40})
MINUTE = timedelta(minutes=1)


def known_series(end: datetime, seed: int = 7) -> MinuteSeries:
    """Three days per minute: a daily traffic shape with idle nights, noise, error
    bursts of every length (some across hour edges, some inside the short windows),
    and a few minutes where every request failed."""
    rng = random.Random(seed)
    start = end - timedelta(days=3)
    requests, errors = [], []
    for i in range(4320):
        hour = ((start + i * MINUTE).hour + 1) % 24
        base = 0 if hour < 5 and rng.random() < 0.7 else int(40 + 200 * (hour >= 8) * rng.random())
        requests.append(base)
        errors.append(min(base, int(base * rng.choice((0, 0, 0, 0.001, 0.01)))))
    for burst_start, length, share in ((130, 47, 0.3), (1500, 200, 0.05), (2900, 61, 0.6),
                                       (3959, 5, 1.0), (4025, 12, 0.08), (4290, 25, 0.5),
                                       (4316, 4, 0.02)):
        for i in range(burst_start, min(burst_start + length, 4320)):
            errors[i] = min(requests[i], int(round(requests[i] * share)))
    return MinuteSeries(start, tuple(requests), tuple(errors))


def as_fetched(full: MinuteSeries, period: Period) -> MinuteSeries:
    """The same data as the fetch plan reads it: totals per grain, from the minutes."""
    *coarse, (start, end, _) = app_metric_fetches(period.start, period.end)
    offset = int((start - full.start).total_seconds() // 60)
    blocks = []
    for block_start, block_end, grain in coarse:
        first = int((block_start - full.start).total_seconds() // 60)
        count = int((block_end - block_start).total_seconds() // 60) // grain
        for n in range(count):
            i = first + n * grain
            blocks.append(Block(block_start + n * grain * MINUTE, grain,
                                sum(full.requests[i:i + grain]), sum(full.server_errors[i:i + grain])))
    return MinuteSeries(start, full.requests[offset:], full.server_errors[offset:], tuple(blocks))


def snapshot_bytes(series: MinuteSeries, period: Period, s=SETTINGS) -> bytes:
    return canonical_json(build_snapshot(SHOP, period, series, LATENCY, CacheCounts(900, 100), s,
                                         NO_COUNTS))


# --- the plan ------------------------------------------------------------------------------------

def test_an_hour_reads_six_hours_of_minutes_and_the_rest_of_three_days_by_the_hour():
    end = HOUR.end
    assert app_metric_fetches(HOUR.start, end) == [
        (end - timedelta(days=3), end - timedelta(hours=6), 60), (end - timedelta(hours=6), end, 1)]


def test_a_day_reads_its_own_minutes_and_two_days_by_the_hour():
    end = DAY.end
    assert app_metric_fetches(DAY.start, end) == [
        (end - timedelta(days=3), end - timedelta(days=1), 60), (DAY.start, end, 1)]


def test_the_plan_covers_the_longest_window_without_gap_or_overlap():
    for period in (HOUR, DAY):
        fetches = app_metric_fetches(period.start, period.end)
        assert (fetches[0][0], fetches[-1][1]) == app_metrics_timespan(period.end)
        assert all(a[1] == b[0] for a, b in zip(fetches, fetches[1:]))
        assert all(start.minute == 0 and end.minute == 0 for start, end, _ in fetches)


def test_a_period_that_does_not_end_on_the_hour_is_refused():
    with pytest.raises(ValueError):
        app_metric_fetches(utc(2026, 11, 27, 17, 30), utc(2026, 11, 27, 18, 30))


# --- same data, same snapshot ------------------------------------------------------------------

@pytest.mark.parametrize("period", [HOUR, DAY, Period("hour", utc(2026, 11, 27, 23))],
                         ids=["hour", "day", "last-hour-of-day"])
@pytest.mark.parametrize("seed", [1, 7, 42])
def test_the_fetch_plan_gives_the_snapshot_of_the_minute_level_computation(period, seed):
    full = known_series(period.end, seed)
    fetched = as_fetched(full, period)
    assert len(fetched.requests) + len(fetched.earlier) <= len(full.requests) / 2  # far fewer points
    assert snapshot_bytes(fetched, period) == snapshot_bytes(full, period)
    for label, counts in burn_windows(fetched, period.end, 0.05).items():
        whole = count_window(full, period.end - timedelta(minutes=counts.minutes), period.end, 0.05)
        assert (counts.requests, counts.server_errors) == (whole.requests, whole.server_errors), label


def test_alerts_fire_the_same_on_both():
    full = known_series(HOUR.end, 3)
    errors = list(full.server_errors)
    for i in range(4320 - 1440, 4320):  # a day at 0.5 %: ticket-1d and ticket-3d fire
        errors[i] = max(errors[i], full.requests[i] // 200)
    full = MinuteSeries(full.start, full.requests, tuple(errors))
    fetched = json.loads(snapshot_bytes(as_fetched(full, HOUR), HOUR))
    assert {r for r, a in fetched["alerts"].items() if a["state"] == "firing"} >= {"ticket-1d"}
    assert fetched == json.loads(snapshot_bytes(full, HOUR))


# --- through the read code: Azure-shaped answers of each grain ----------------------------------

class FakeMetrics:
    """Answers getBatch like Azure Monitor: Total per interval from starttime, from the
    minute data of each resource; records what was asked."""

    def __init__(self, data: dict[str, MinuteSeries]):
        self.data, self.asked = data, []

    def send_request(self, request, stream=False):
        assert stream, "the read code streams the body and parses it once"
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        ids = json.loads(request.content)["resourceids"]
        self.asked.append((query["interval"], query["starttime"], query["endtime"], len(ids)))
        grain = {"PT1M": 1, "PT5M": 5, "PT1H": 60}[query["interval"]]
        start = datetime.fromisoformat(query["starttime"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(query["endtime"].replace("Z", "+00:00"))
        values = []
        for rid in ids:
            full = self.data[rid]
            first = int((start - full.start).total_seconds() // 60)
            count = int((end - start).total_seconds() // 60) // grain
            metrics = []
            for name, column in (("Requests", full.requests), ("Http5xx", full.server_errors)):
                data = []
                for n in range(count):
                    point = {"timeStamp": (start + n * grain * MINUTE).strftime("%Y-%m-%dT%H:%M:%SZ")}
                    chunk = column[first + n * grain:first + (n + 1) * grain]
                    if any(chunk):  # Azure leaves out the total of an interval without data
                        point["total"] = float(sum(chunk))
                    data.append(point)
                metrics.append({"name": {"value": name}, "errorCode": "Success",
                                "timeseries": [{"metadatavalues": [], "data": data}]})
            values.append({"resourceid": rid, "value": metrics})
        return _Answer({"values": values})


class _Answer:
    status_code = 200

    def __init__(self, body):
        self.body = body

    def read(self):
        return json.dumps(self.body).encode()

    def close(self):
        pass


@pytest.mark.parametrize("period", [HOUR, DAY], ids=["hour", "day"])
def test_the_read_code_gives_the_same_snapshot_as_three_days_of_minutes(period):
    ids = [app_id(f"app-{i}").lower() for i in range(3)]
    data = {rid: known_series(period.end, n) for n, rid in enumerate(ids)}
    client = FakeMetrics(data)
    found = azure_io._app_series(client, ids, app_metric_fetches(period.start, period.end))
    minutes = 360 if period.kind == "hour" else 1440
    assert [a[0] for a in client.asked] == ["PT1H", "PT1M"]  # two calls for the batch
    assert client.asked[1][1:] == ((period.end - timedelta(minutes=minutes)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"), period.end.strftime("%Y-%m-%dT%H:%M:%S.000Z"), 3)
    for rid in ids:
        assert len(found[rid].requests) == minutes and len(found[rid].earlier) == 72 - minutes // 60
        assert snapshot_bytes(found[rid], period) == snapshot_bytes(data[rid], period)


def test_an_app_missing_from_either_read_gets_no_series():
    ids = [app_id("a").lower(), app_id("b").lower()]
    data = {rid: known_series(HOUR.end, 1) for rid in ids}

    class Forgetful(FakeMetrics):
        def send_request(self, request, stream=False):
            answer = super().send_request(request, stream)
            if "PT1H" in request.url:  # b is missing from the hourly read
                answer.body["values"] = answer.body["values"][:1]
            return answer

    found = azure_io._app_series(Forgetful(data), ids, app_metric_fetches(HOUR.start, HOUR.end))
    assert list(found) == [ids[0]]


# --- the edges ------------------------------------------------------------------------------------

def test_minute_states_are_never_taken_from_hourly_totals():
    fetched = as_fetched(known_series(HOUR.end), HOUR)
    with pytest.raises(ValueError, match="hourly totals"):
        count_window(fetched, HOUR.end - timedelta(days=1), HOUR.end, 0.05)


def test_a_window_edge_inside_an_hour_block_is_refused_not_guessed():
    fetched = as_fetched(known_series(HOUR.end), HOUR)
    with pytest.raises(ValueError, match="cuts the block"):
        request_counts(fetched, HOUR.end - timedelta(hours=30, minutes=30), HOUR.end)


def test_more_5xx_than_requests_in_a_minute_is_raised_per_minute_then_per_hour():
    """Http5xx counts a subset of Requests, so a minute with more 5xx than requests
    means the metrics disagree. Inside the minute span the requests are raised to the
    5xx count per minute, as before; in the hourly part per hour, which gives the same
    totals unless the hour as a whole still had more requests (documented in sli.py)."""
    full = known_series(HOUR.end, 5)
    requests, errors = list(full.requests), list(full.server_errors)
    requests[4300], errors[4300] = 0, 30      # in the minute span: exact
    requests[100], errors[100] = 0, 30        # in an hour block...
    requests[101], errors[101] = 100, 0       # ...that had more requests than 5xx all in all
    full = MinuteSeries(full.start, tuple(requests), tuple(errors))
    fetched = as_fetched(full, HOUR)
    short = request_counts(fetched, HOUR.end - timedelta(hours=6), HOUR.end)
    assert short == request_counts(full, HOUR.end - timedelta(hours=6), HOUR.end)
    long_fetched = request_counts(fetched, HOUR.end - timedelta(days=3), HOUR.end)
    long_full = request_counts(full, HOUR.end - timedelta(days=3), HOUR.end)
    assert long_fetched.server_errors == long_full.server_errors
    assert long_full.requests - long_fetched.requests == 30  # that hour had more requests than 5xx
