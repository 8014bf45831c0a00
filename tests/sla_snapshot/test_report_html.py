"""The monthly HTML page: self-contained (opens offline), three charts with
machine-checkable series and targets, and every text escaped."""
import json
import re
from html.parser import HTMLParser

import pytest

from jobs.sla_snapshot.latency import Latency
from jobs.sla_snapshot.report_html import render_report
from jobs.sla_snapshot.rollup import final_report, rollup_from_snapshots
from jobs.sla_snapshot.sli import CacheCounts
from jobs.sla_snapshot.snapshot import Period, build_snapshot
from jobs.sla_snapshot.rollup import counts_before
from tests.sla_snapshot.helpers import series, settings, utc


class Page(HTMLParser):
    """Elements with their attributes, and the text, of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.series_points: dict[tuple[str, str], int] = {}
        self.chart = None
        self.current_series = None
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag == "figure":
            self.chart = attrs.get("data-chart")
        if tag == "g" and "data-series" in attrs:
            self.current_series = attrs["data-series"]
            self.series_points[(self.chart, self.current_series)] = 0
        if tag == "circle" and self.current_series:
            self.series_points[(self.chart, self.current_series)] += 1
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "g":
            self.current_series = None
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)

    def find(self, tag, **attrs):
        return [a for t, a in self.elements
                if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def month_report(name="shop", days=30, thin_days=(), slow_days=()):
    s = settings(targets=f"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/"
                         f"providers/Microsoft.Web/sites/{name}|production||"
                         "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/"
                         "providers/Microsoft.Cache/Redis/c")
    target = s.targets[0]
    snapshots = []
    for day in range(1, days + 1):
        period = Period("hour", utc(2026, 11, day, 12))
        requests = 1 if day in thin_days else 1000
        bucket = 55 if day in slow_days else 40
        latency = Latency(count=requests * 60, within_p95_target=requests * 60,
                          within_p99_target=requests * 60, histogram={bucket: requests * 60})
        snapshots.append(build_snapshot(
            target, period, series(period.end, minutes=60, requests=requests,
                                   errors=None if day in thin_days else {(day % 4, 0): 100}),
            latency, CacheCounts(900, 100), s, counts_before(None, period)))
    rollup, _ = rollup_from_snapshots(snapshots)
    return final_report(rollup)


@pytest.fixture(scope="module")
def page_text():
    return render_report(month_report(thin_days=(7, 8), slow_days=(20,)))


def test_three_charts_with_their_series_and_targets(page_text):
    page = Page(page_text)
    charts = {a["data-chart"]: a for a in page.find("figure")}
    assert set(charts) == {"availability", "latency", "error-budget"}
    assert charts["availability"]["data-series"] == "request_based,time_based"
    assert charts["availability"]["data-targets"] == "objective"
    assert charts["latency"]["data-series"] == "p50,p95,p99"
    assert charts["latency"]["data-targets"] == "p95_target,p99_target"
    assert charts["error-budget"]["data-series"] == "consumed"
    assert charts["error-budget"]["data-targets"] == "allowed,even_burn"
    assert {a["id"] for a in page.find("figure")} == {
        "chart-availability", "chart-latency", "chart-error-budget"}


def test_each_series_plots_one_point_per_day_with_valid_data(page_text):
    page = Page(page_text)
    counted = page.series_points
    # days 7 and 8 had 60 requests: too few, so no availability or latency point
    assert counted[("availability", "request_based")] == 28
    assert counted[("availability", "time_based")] == 28
    assert counted[("latency", "p95")] == 28
    assert counted[("error-budget", "consumed")] == 30  # bad minutes count on every day
    groups = [a for t, a in page.elements if t == "g" and "data-points" in a]
    assert sorted(int(a["data-points"]) for a in groups) == sorted(counted.values())


def test_targets_are_marked_with_their_values(page_text):
    page = Page(page_text)
    targets = {a["data-target"]: float(a["data-value"]) for a in page.find("line")
               if "data-target" in a}
    assert targets == {"objective": 99.9, "p95_target": 500.0, "p99_target": 1000.0,
                       "allowed": 43.2, "even_burn": 43.2}


def test_the_page_opens_offline_and_runs_no_script(page_text):
    page = Page(page_text)
    references = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page_text, re.I)
    assert references == ["data:,"]  # the inline empty icon, nothing fetched
    assert not re.search(r"@import|url\(", page_text, re.I)
    assert re.findall(r"https?://[^\s\"']+", page_text) == ["http://www.w3.org/2000/svg"] * 3
    assert [a.get("type") for a in page.find("script")] == ["application/json"]
    data = json.loads(page.scripts[0])
    assert data["month"] == "2026-11" and len(data["summary"]["daily"]) == 30


def test_the_summary_shows_the_verdicts(page_text):
    page = Page(page_text)
    assert {a["data-verdict"] for a in page.find("td") if a.get("data-verdict")} >= {"met"}
    assert "Error budget" in page_text and "2026-11-07, 2026-11-08" in page_text


def test_app_names_and_report_text_are_escaped():
    report = month_report(days=3)
    report["app"]["name"] = 'shop"><script>alert(1)</script>'
    report["app"]["id"] = "/x/<img onerror=alert(2)>"
    text = render_report(report)
    assert "<script>alert(1)" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "\\u003c/script\\u003e" in text  # inside the JSON block, too
    page = Page(text)
    assert [a.get("type") for a in page.find("script")] == ["application/json"]
    assert json.loads(page.scripts[0])["app"]["name"] == report["app"]["name"]


def test_a_month_without_valid_data_says_so_instead_of_drawing_100_percent():
    text = render_report(month_report(days=1, thin_days=(1,)))
    page = Page(text)
    assert page.series_points[("availability", "request_based")] == 0
    assert "no valid data this month" in text
    assert [a["data-verdict"] for a in page.find("td") if a.get("data-verdict")][0] == "unknown"


def test_the_same_report_renders_the_same_bytes():
    report = month_report(days=5)
    assert render_report(report) == render_report(month_report(days=5))
