"""The monthly HTML report as a browser shows it: a month is snapshotted through
the job (sandbox + Azurite), the report the first run of the next month wrote is
read back from Azurite and loaded in headless Chromium (Debian's ``chromium``).
The DOM Chromium rendered must hold the three charts with one point per valid
day in every series, and the page must log nothing to the console and load
nothing but itself."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.sla_snapshot.estate import Estate, by_status, estate_world, month_boundary, site_id

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                         else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian package `chromium`, "
                             "/usr/bin/chromium): run `sudo bash scripts/system-deps.sh`")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing may leave this machine
         "--enable-logging=stderr", "--v=0",
         "--vmodule=file_url_loader_factory=1")  # one log line per file the page loads
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\] (.*)$")
FILE_LOAD = re.compile(r"FileURLLoader::Start: (\S+)")


class Rendered:
    """What Chromium made of a page: its DOM after load, console messages, files loaded."""

    def __init__(self, page: Path, profile: Path):
        url = page.resolve().as_uri()
        done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        self.dom = done.stdout
        log = done.stderr.splitlines()
        self.console = [m.group(1) for m in map(CONSOLE.search, log) if m]
        self.loads = [m.group(1) for m in map(FILE_LOAD.search, log) if m]
        self.url = url
        self.tree = Tree(self.dom)


class Tree(HTMLParser):
    """Elements (tag, attributes) in document order, with the chart and series each is in."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], str | None, str | None]] = []
        self.chart: str | None = None
        self.series: str | None = None
        self.scripts: dict[str, str] = {}
        self._script: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "figure":
            self.chart = attrs.get("data-chart")
        if tag == "g" and "data-series" in attrs:
            self.series = attrs["data-series"]
        self.elements.append((tag, attrs, self.chart, self.series))
        if tag == "script":
            self._script = attrs.get("id", "")

    def handle_endtag(self, tag):
        if tag == "g":
            self.series = None
        if tag == "figure":
            self.chart = None
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self.scripts[self._script] = self.scripts.get(self._script, "") + data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a, _, _ in self.elements
                if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def circles(self, chart: str, series: str) -> int:
        return sum(1 for t, _, c, s in self.elements if t == "circle" and (c, s) == (chart, series))


def test_the_harness_sees_console_errors_and_stray_loads(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                    '<img src="missing.png"><script>console.error("broken on purpose")</script>'
                    "</body></html>")
    rendered = Rendered(page, tmp_path / "profile")
    assert any("broken on purpose" in line for line in rendered.console)
    assert rendered.loads == [rendered.url, (tmp_path / "missing.png").as_uri()]


def test_the_monthly_report_renders_its_charts_in_chromium(app_env, world, monkeypatch, tmp_path):
    boundary = month_boundary()
    month = (boundary - timedelta(days=1)).strftime("%Y-%m")
    data = estate_world()
    data["settings"]["OPS_SLA_SNAPSHOT__TARGETS"] = ";".join(
        t for t in data["settings"]["OPS_SLA_SNAPSHOT__TARGETS"].split(";")
        if t.split("|")[0] in (site_id("app-shop"), site_id("app-legacy")))
    estate = Estate(app_env, world, monkeypatch, data)
    for days in (3, 2, 1):  # an hour around noon on the month's last three days
        report = estate.run(boundary - timedelta(days=days) + timedelta(hours=12, minutes=5))
        assert report["status"] == "succeeded", by_status(report)
    report = estate.run(boundary + timedelta(minutes=5))  # the first run of the new month
    assert report["status"] == "succeeded", by_status(report)

    for app, latency_points in (("app-shop", 3), ("app-legacy", 0)):
        final = estate.read_json(f"monthly/{app}/{month}.json")
        daily = final["summary"]["daily"]
        assert len(daily) == 3 and all(d["valid"] for d in daily)
        page = tmp_path / f"{app}-{month}.html"
        page.write_bytes(estate.read(f"monthly/{app}/{month}.html"))
        rendered = Rendered(page, tmp_path / f"profile-{app}")

        assert rendered.console == [], rendered.console
        assert rendered.loads == [rendered.url]  # nothing but the page itself
        tree = rendered.tree
        for _, attrs, _, _ in tree.elements:
            for name in ("src", "href"):
                assert attrs.get(name, "data:").startswith(("data:", "#")), attrs

        expected = {"availability": {"request_based": 3, "time_based": 3},
                    "latency": {"p50": latency_points, "p95": latency_points,
                                "p99": latency_points},
                    "error-budget": {"consumed": 3}}
        targets = {"availability": ["objective"], "latency": ["p95_target", "p99_target"],
                   "error-budget": ["allowed", "even_burn"]}
        for chart, series in expected.items():
            [figure] = tree.find("figure", id=f"chart-{chart}")
            assert figure["data-chart"] == chart
            assert figure["data-series"].split(",") == list(series)
            assert figure["data-targets"].split(",") == targets[chart]
            for name, points in series.items():
                [group] = tree.find("g", data_series=name)
                assert group["data-points"] == str(points)
                assert tree.circles(chart, name) == points
            for name in targets[chart]:
                assert tree.find("line", data_target=name)
        assert bool(tree.find("text", **{"class": "no-data"})) is (latency_points == 0)
        days = [int(d["date"][8:]) for d in daily]
        assert sorted({int(c["data-day"]) for c in tree.find("circle")}) == days
        consumed = [c for t, c, chart, s in tree.elements if t == "circle" and s == "consumed"]
        assert [float(c["data-value"]) for c in consumed] == [d["budget_consumed_minutes"]
                                                             for d in daily]
        embedded = json.loads(tree.scripts["sla-report-data"])
        assert embedded["month"] == month
        assert ({k: v["status"] for k, v in embedded["verdicts"].items()}
                == {k: v["status"] for k, v in final["verdicts"].items()})
        assert tree.find("table", id="summary")
