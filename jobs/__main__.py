"""The CLI over the same registry and runner as the timers and the HTTP API.

    python -m jobs list
    python -m jobs config
    python -m jobs run NAME [--apply] [--now ISO-8601] [--json] [--force NAME] [--option K=V]
    python -m jobs plan NAME [--days 7] [--now ISO-8601] [--json]
    python -m jobs latest NAME

A run is a dry run unless --apply is given (--dry-run, the default, is still
accepted); a real run takes --now only within a few minutes of the clock.

Exit codes: 0 no action failed, 1 an action or the run failed, 2 usage or
settings error, 3 the job is already running.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from typing import Any, Callable

from jobs import registry
from jobs.requests import NOW_TOLERANCE

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RUNNING = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; keep its message short
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m jobs", description="Run the ops jobs by hand.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="the jobs and their schedules")
    sub.add_parser("config", help="the effective settings, secrets masked")
    run = sub.add_parser("run", help="run a job now (a dry run unless --apply)")
    run.add_argument("name", choices=list(registry.JOBS))
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--apply", action="store_true", help="make the changes (default: a dry run)")
    mode.add_argument("--dry-run", action="store_true",
                      help="plan and report, change nothing (the default; kept for old scripts)")
    run.add_argument("--now", help="pretend it is this instant (ISO-8601 with offset); with --apply, "
                                   f"only within {NOW_TOLERANCE.seconds // 60} minutes of the clock")
    run.add_argument("--json", action="store_true", help="print the run report as JSON")
    run.add_argument("--force", metavar="NAME", help="secret-rotation: rotate this secret now")
    run.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="a job option (repeatable)")
    plan = sub.add_parser("plan", help="what a run would do now, and the next transitions")
    plan.add_argument("name", choices=list(registry.JOBS))
    plan.add_argument("--days", type=int, default=7, help="how far ahead to show (1-60)")
    plan.add_argument("--now", help="pretend it is this instant (ISO-8601 with offset)")
    plan.add_argument("--json", action="store_true")
    latest = sub.add_parser("latest", help="the last run report of a job")
    latest.add_argument("name", choices=list(registry.JOBS))
    return p


def main(argv: list[str] | None = None, clock: Callable[[], datetime] | None = None) -> int:
    """``clock``: what a real run's --now is checked against (tests pin it)."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from jobs.requests import BadRequest
    from jobs.runner import BadOptions, utcnow
    from jobs.settings import SettingsError
    from jobs.store import AlreadyRunning
    args.clock = clock or utcnow
    try:
        return COMMANDS[args.command](args)
    except (SettingsError, BadRequest, BadOptions, registry.UnknownJob) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AlreadyRunning as exc:
        print(f"not started: {exc}", file=sys.stderr)
        return EXIT_RUNNING


def cmd_list(args) -> int:
    from jobs import service
    try:
        rows = service.list_jobs()
    except Exception:  # noqa: BLE001 - listing works without settings too
        rows = service.list_jobs(with_last_run=False)
    for row in rows:
        last = row.get("last_run") or {}
        print(f"{row['name']:<16} {row['schedule']:<18} last: {last.get('status', '-'):<10} "
              f"{row['description']}")
    return EXIT_OK


def cmd_config(args) -> int:
    from jobs.settings import load_settings
    settings = load_settings()
    print(json.dumps(settings.masked(), indent=2))
    return EXIT_OK


def _run_args(args) -> dict[str, Any]:
    from jobs.requests import BadRequest, check_now, parse_now, parse_option
    options: dict[str, str] = {}
    given = [tuple(item.partition("=")) for item in args.option]
    if args.force is not None:  # `--force ""` is a bad value, not "no force"
        given.append(("force", "=", args.force))
    for key, sep, value in given:
        if not sep or not key:
            raise BadRequest(f"--option takes KEY=VALUE, got {key + sep + value!r}")
        value = parse_option(key, value)
        if options.get(key, value) != value:  # as over HTTP: the same option twice must agree
            raise BadRequest(f"{key!r} is given twice with different values")
        options[key] = value
    dry_run, now = not args.apply, parse_now(args.now)
    check_now(now, dry_run=dry_run, clock=args.clock())
    return {"dry_run": dry_run, "now": now, "options": options}


def cmd_run(args) -> int:
    from jobs import service
    report = service.run(args.name, trigger="cli", **_run_args(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return EXIT_FAILED if report["status"] == "failed" else EXIT_OK


def cmd_plan(args) -> int:
    from jobs import service
    from jobs.requests import BadRequest, parse_now
    if not 1 <= args.days <= 60:
        raise BadRequest("--days must be between 1 and 60")
    job = registry.load(args.name)
    explain = getattr(job, "explain", None)
    report = service.run(args.name, trigger="cli", dry_run=True, now=parse_now(args.now))
    extra = explain(report, days=args.days) if explain else None
    if args.json:
        print(json.dumps({"report": report, "explain": extra}, indent=2))
    else:
        print(render(report))
        if extra:
            print(extra if isinstance(extra, str) else json.dumps(extra, indent=2))
    return EXIT_FAILED if report["status"] == "failed" else EXIT_OK


def cmd_latest(args) -> int:
    from jobs import service
    report = service.latest(args.name)
    if report is None:
        print(f"{args.name} has not run yet", file=sys.stderr)
        return EXIT_FAILED
    print(render(report))
    return EXIT_OK


def short_target(target: str) -> str:
    """/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app -> rg/app"""
    parts = target.split("/")
    if len(parts) > 8 and parts[1].lower() == "subscriptions":
        return "/".join([parts[4]] + parts[8::2])
    return target


def render(report: dict[str, Any]) -> str:
    """A readable run report: a header, one line per action, the summary, job details."""
    mode = "dry run" if report["dry_run"] else "applied"
    lines = [f"{report['job']} run {report['run_id']} ({report['trigger']}, {mode}) "
             f"at {report['now']}: {report['status'].upper()}"]
    rows = [(a["status"], a["kind"], short_target(a["target"]), a["error"] or a["reason"])
            for a in report["actions"]]
    if rows:
        widths = [max(len(r[i]) for r in rows + [("STATUS", "ACTION", "TARGET", "")]) for i in range(3)]
        lines.append(f"  {'STATUS':<{widths[0]}}  {'ACTION':<{widths[1]}}  {'TARGET':<{widths[2]}}  WHY")
        lines += [f"  {s:<{widths[0]}}  {k:<{widths[1]}}  {t:<{widths[2]}}  {why}" for s, k, t, why in rows]
    else:
        lines.append("  nothing to do")
    lines += [f"  error: {e}" for e in report["errors"]]
    counts = ", ".join(f"{n} {s}" for s, n in report["summary"].items() if n)
    if counts:
        lines.append(f"  {counts}")
    tables = report.get("details", {}).get("tables", [])
    for table in tables:
        lines.append("")
        lines.append(table["title"])
        lines += _table(table["columns"], table["rows"])
    return "\n".join(lines)


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    fmt = lambda r: "  " + "  ".join(v.rjust(w) if i else v.ljust(w)  # noqa: E731
                                     for i, (v, w) in enumerate(zip(r, widths)))
    return [fmt(cells[0]), "  " + "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells[1:]]


COMMANDS = {"list": cmd_list, "config": cmd_config, "run": cmd_run, "plan": cmd_plan,
            "latest": cmd_latest}

if __name__ == "__main__":
    sys.exit(main())
