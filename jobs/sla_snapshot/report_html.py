"""The monthly SLA page of the sla-snapshot job: one self-contained HTML file
per app and month, from a final report or a month-to-date rollup.

Three charts, drawn here as inline SVG (no script runs; nothing is fetched,
so the page opens offline): availability per day (request- and time-based,
objective marked), latency p50/p95/p99 per day (targets marked) and the
error budget consumed through the month (allowed budget and an even burn
marked). Each chart is a ``<figure data-chart=... data-series=...
data-targets=...>``; each series a ``<g class="series" data-series=NAME
data-points=N>`` holding one ``<circle>`` per day with data; each target a
``<line class="target" data-target=NAME data-value=V>``. The figures also sit
in ``<script type="application/json" id="sla-report-data">`` for tools.

Must never: reference anything outside the page, run a script, read the clock,
or put unescaped text (app names come from settings) into the page.
"""
from __future__ import annotations

import html
import json
from typing import Any, Iterable

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36
COLOURS = {"request_based": "#1f77b4", "time_based": "#ff7f0e", "p50": "#2ca02c",
           "p95": "#1f77b4", "p99": "#d62728", "consumed": "#9467bd"}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.met{color:#1a7f37}.missed{color:#cf222e;font-weight:bold}.unknown{color:#777}
svg{background:#fafafa;border:1px solid #ddd}.grid{stroke:#e3e3e3}.axis{fill:#555;font-size:11px}
.target{stroke:#cf222e;stroke-dasharray:6 4}.even{stroke:#888;stroke-dasharray:2 4}
.series path{fill:none;stroke-width:2}.legend{font-size:12px}.no-data{fill:#777;font-size:14px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(ratio: float | None, digits: int = 3) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.{digits}f} %"


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


class _Chart:
    """One SVG line chart over the days of a month."""

    def __init__(self, name: str, title: str, unit: str, days: int) -> None:
        self.name, self.title, self.unit, self.days = name, title, unit, days
        self.series: list[tuple[str, str, list[tuple[int, float]]]] = []
        self.targets: list[tuple[str, str, float]] = []
        self.even: tuple[str, float] | None = None  # (label, value at month end)

    def add_series(self, key: str, label: str, points: Iterable[tuple[int, float | None]]) -> None:
        self.series.append((key, label, [(d, v) for d, v in points if v is not None]))

    def add_target(self, key: str, label: str, value: float) -> None:
        self.targets.append((key, label, value))

    def _range(self) -> tuple[float, float]:
        values = [v for _, _, pts in self.series for _, v in pts] + [t for _, _, t in self.targets]
        if self.even:
            values.append(self.even[1])
        if self.name == "availability":
            low = min(values) if values else 99.0
            low = max(0.0, low - max(100 - low, 0.01) * 0.2)
            return low, 100.0
        return 0.0, (max(values) * 1.1 if values and max(values) > 0 else 1.0)

    def render(self) -> str:
        low, high = self._range()
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

        def x(day: float) -> float:
            return LEFT + (day - 1) / max(self.days - 1, 1) * plot_w

        def y(value: float) -> float:
            return TOP + (high - value) / ((high - low) or 1) * plot_h

        parts = []
        for i in range(5):
            value = low + (high - low) * i / 4
            parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" '
                         f'y2="{y(value):.1f}"/><text class="axis" x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
                         f'text-anchor="end">{_e(_tick(value, self.unit))}</text>')
        for day in sorted({1, self.days, *range(5, self.days + 1, 5)}):
            parts.append(f'<text class="axis" x="{x(day):.1f}" y="{HEIGHT - BOTTOM + 16}" '
                         f'text-anchor="middle">{day}</text>')
        for key, label, value in self.targets:
            parts.append(f'<line class="target" data-target="{_e(key)}" data-value="{value:g}" '
                         f'x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}">'
                         f'<title>{_e(label)}: {_e(_tick(value, self.unit))}</title></line>')
        if self.even:
            label, value = self.even
            parts.append(f'<line class="even" data-target="even_burn" data-value="{value:g}" '
                         f'x1="{x(1):.1f}" y1="{y(value / self.days):.1f}" x2="{x(self.days):.1f}" '
                         f'y2="{y(value):.1f}"><title>{_e(label)}</title></line>')
        for key, label, points in self.series:
            colour = COLOURS.get(key, "#333")
            segments, previous = [], None
            for day, value in points:
                segments.append(f'{"L" if previous == day - 1 else "M"}{x(day):.1f},{y(value):.1f}')
                previous = day
            dots = "".join(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}" '
                           f'data-day="{d}" data-value="{v:g}"><title>day {d}: '
                           f'{_e(_tick(v, self.unit, 3))}</title></circle>' for d, v in points)
            path = f'<path stroke="{colour}" d="{" ".join(segments)}"/>' if segments else ""
            parts.append(f'<g class="series" data-series="{_e(key)}" data-points="{len(points)}">'
                         f'<title>{_e(label)}</title>{path}{dots}</g>')
        if not any(points for _, _, points in self.series):
            parts.append(f'<text class="no-data" x="{WIDTH / 2}" y="{HEIGHT / 2}" '
                         'text-anchor="middle">no valid data this month</text>')
        legend = " ".join(f'<span style="color:{COLOURS.get(k, "#333")}">&#9632; {_e(label)}</span>'
                          for k, label, _ in self.series)
        marks = " ".join(f'<span class="legend">- - {_e(label)}</span>'
                         for _, label, _ in self.targets)
        series_keys = ",".join(k for k, _, _ in self.series)
        target_keys = ",".join([k for k, _, _ in self.targets] + (["even_burn"] if self.even else []))
        return (f'<figure class="chart" id="chart-{_e(self.name)}" data-chart="{_e(self.name)}" '
                f'data-series="{_e(series_keys)}" data-targets="{_e(target_keys)}">'
                f'<figcaption>{_e(self.title)}</figcaption>'
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
                f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_e(self.title)}">'
                f'{"".join(parts)}</svg><div class="legend">{legend} {marks}</div></figure>')


def _tick(value: float, unit: str, digits: int | None = None) -> str:
    if unit == "%":
        return f"{value:.{3 if digits is None else digits}f} %"
    return f"{value:,.{0 if digits is None else 1}f} {unit}"


def _day_number(date: str) -> int:
    return int(date[8:10])


def render_report(report: dict[str, Any]) -> str:
    """The HTML page of a final report (kind sla-monthly) or a rollup (month to date)."""
    app, summary, goals = report["app"], report["summary"], report["objectives"]
    days, month = report["days_in_month"], report["month"]
    daily = summary["daily"]
    final = report.get("kind") == "sla-monthly"
    title = (f"SLA {'report' if final else 'month to date'} {month}: "
             f"{app['name']} ({app['environment']})")

    availability = _Chart("availability", "Availability per day (%)", "%", days)
    for key, label in (("request_based", "request-based"), ("time_based", "time-based")):
        availability.add_series(key, label, [
            (_day_number(d["date"]), d["availability"][key] * 100
             if d["availability"][key] is not None else None) for d in daily])
    availability.add_target("objective", f"objective {goals['availability'] * 100:g} %",
                            goals["availability"] * 100)

    latency = _Chart("latency", "Latency per day (ms, approximate)", "ms", days)
    for key in ("p50", "p95", "p99"):
        latency.add_series(key, key, [(_day_number(d["date"]),
                                       d["latency_ms"][key] if d["latency_ms"] else None)
                                      for d in daily])
    latency.add_target("p95_target", f"p95 target {goals['latency_p95_ms']:g} ms",
                       goals["latency_p95_ms"])
    latency.add_target("p99_target", f"p99 target {goals['latency_p99_ms']:g} ms",
                       goals["latency_p99_ms"])

    budget_info = summary["error_budget"]
    budget = _Chart("error-budget", "Error budget consumed (bad minutes, cumulative)", "min", days)
    budget.add_series("consumed", "consumed", [(_day_number(d["date"]), d["budget_consumed_minutes"])
                                               for d in daily])
    budget.add_target("allowed", f"allowed {budget_info['allowed_minutes']:.2f} min",
                      budget_info["allowed_minutes"])
    budget.even = ("even burn", budget_info["allowed_minutes"])

    data = {"app": app, "month": month, "kind": report.get("kind"), "objectives": goals,
            "summary": summary, "verdicts": report.get("verdicts")}
    data_json = json.dumps(data, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e")
    body = [f"<h1>{_e(title)}</h1>", _summary_table(report),
            availability.render(), latency.render(), budget.render(), _notes(report)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            # an inline empty icon: browsers fetch /favicon.ico otherwise and log a 404
            '<link rel="icon" href="data:,">'
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
            + "".join(body)
            + f'<script type="application/json" id="sla-report-data">{data_json}</script>'
            + "</body></html>\n")


def _summary_table(report: dict[str, Any]) -> str:
    summary, goals, app = report["summary"], report["objectives"], report["app"]
    budget, latency, cache = summary["error_budget"], summary["latency_ms"], summary["cache"]
    verdicts = report.get("verdicts") or {}
    coverage = budget["covered_minutes"] / (report["days_in_month"] * 1440)
    rows = [
        ("App", f"{app['name']} ({app['environment']})", None),
        ("Resource", app["id"], None),
        ("Availability (request-based)", f"{_pct(summary['availability']['request_based'])} "
         f"(objective {goals['availability'] * 100:g} %)", verdicts.get("availability")),
        ("Availability (time-based)", _pct(summary["availability"]["time_based"]), None),
        ("Requests / 5xx", f"{summary['requests']['total']:,} / {summary['requests']['server_errors']:,}",
         None),
        ("Error budget", f"allowed {budget['allowed_minutes']:.2f} min, consumed "
         f"{budget['consumed_minutes']} min, remaining {budget['remaining_minutes']:.2f} min",
         verdicts.get("error_budget")),
        ("Coverage", f"{_pct(coverage, 1)} of the month has snapshots", None),
    ]
    if latency is not None:
        rows.append(("Latency p50 / p95 / p99 (approx.)",
                     f"{_num(latency['p50'], ' ms')} / {_num(latency['p95'], ' ms')} / "
                     f"{_num(latency['p99'], ' ms')}", None))
        for name in ("p95", "p99"):
            rows.append((f"Requests within the {name} target ({goals[f'latency_{name}_ms']:g} ms)",
                         _pct(latency[f"within_{name}_ratio"], 2), verdicts.get(f"latency_{name}")))
    if cache is not None:
        rows.append(("Cache hit ratio", f"{_pct(cache['hit_ratio'], 1)} (target "
                     f"{goals['cache_hit_ratio'] * 100:g} %)", verdicts.get("cache_hit_ratio")))
    cells = []
    for label, value, verdict in rows:
        status = verdict["status"] if verdict else ""
        cells.append(f"<tr><th>{_e(label)}</th><td>{_e(value)}</td>"
                     f'<td class="{_e(status)}" data-verdict="{_e(status)}">{_e(status)}</td></tr>')
    return f'<table id="summary">{"".join(cells)}</table>'


def _notes(report: dict[str, Any]) -> str:
    invalid = [d["date"] for d in report["summary"]["daily"] if not d["valid"]]
    notes = ["Availability: request-based = 1 - 5xx / all requests; time-based = good minutes / "
             "minutes with traffic (idle minutes excluded). Days with too few requests are not "
             "plotted.",
             "Latency percentiles per day come from a histogram (within about 6 %); the p95/p99 "
             "verdicts use exact counts of requests within each target."]
    if invalid:
        notes.append("Days without enough data: " + ", ".join(invalid) + ".")
    return "<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"
