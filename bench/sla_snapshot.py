"""sla-snapshot at scale: 200 apps (each with a Redis cache, spread over 2
subscriptions and 4 Log Analytics workspaces) against the sandbox and Azurite.

Four runs, each `python -m jobs run sla-snapshot --apply --now ... --json` in its own
process (the sandbox runs in this one and generates the telemetry; its memory is
not the job's): a first run (creates the container, writes 200 snapshots and 200
rollups), the next hour's run (the steady state of the hourly timer), a re-run of
that hour (must write nothing), and a run with OPS_SLA_SNAPSHOT__PERIOD=day (the
heaviest read: a whole day per minute). The table's wall time and calls are the
first run's; its peak RSS is the highest of the four.

Figures: wall time and peak RSS of each job process, calls by operation from
the sandbox's request log, the blob calls the job counted itself (Azurite keeps
no log). Checks: every run succeeded, the re-run wrote nothing, the metrics are
read in batches (at most 50 resources per call: a few calls per subscription and
resource type, never one per app), one Logs query per workspace, and every job
process peaked under 256 MB."""
from __future__ import annotations

import math
import shutil
import tempfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from bench.common import calls_by_operation, check, job_env, main, rss_check, run_job
from jobs.sla_snapshot.queries import app_metric_fetches

APPS = 200
SUBSCRIPTIONS = ("be000000-0000-0000-0000-000000000001", "be000000-0000-0000-0000-000000000002")
WORKSPACES = tuple(f"be000000-0000-0000-0000-0000000000a{i}" for i in range(1, 5))


def world(apps: int = APPS) -> dict[str, Any]:
    resources, targets = [], []
    workspaces: dict[str, list[dict[str, Any]]] = {ws: [] for ws in WORKSPACES}
    for i in range(apps):
        sub = SUBSCRIPTIONS[i % len(SUBSCRIPTIONS)]
        rg = f"rg-team-{i // 25:02d}"
        base = f"/subscriptions/{sub}/resourceGroups/{rg}/providers"
        site, cache = f"{base}/Microsoft.Web/sites/app-{i:03d}", f"{base}/Microsoft.Cache/Redis/redis-{i:03d}"
        pattern = ("flat", "business", "dev")[i % 3]
        generator = {"kind": "app_service", "requests_per_minute": 20 + (i * 37) % 400,
                     "pattern": pattern, "noise": 0.12, "error_rate": 0.0005 * (1 + i % 4),
                     "client_error_rate": 0.01, "latency_ms": 80 + (i * 13) % 300,
                     "latency_sigma": 0.6}
        resources.append({"id": site, "region": "westeurope", "generator": generator})
        resources.append({"id": cache, "region": "westeurope", "generator": {
            "kind": "redis", "ops_per_minute": 100 + (i * 53) % 900, "hit_ratio": 0.7 + (i % 25) / 100,
            "pattern": pattern, "noise": 0.1}})
        workspace = WORKSPACES[i % len(WORKSPACES)]
        workspaces[workspace].append({"app_role_name": f"app-{i:03d}", "resource_id": site,
                                      "sampling_percentage": (100, 50, 20, 10)[i % 4]})
        environment = ("production", "staging", "development")[i % 3]
        targets.append(f"{site}|{environment}|{workspace}|{cache}")
    return {
        "settings": {"OPS_SLA_SNAPSHOT__TARGETS": ";".join(targets),
                     "OPS_SLA_SNAPSHOT__STORAGE_CONTAINER": "bench-sla-snapshots"},
        "metrics": {"seed": 5, "history_days": 35, "resources": resources},
        "logs": {"workspaces": [{"id": ws, "name": f"log-bench-{n}", "apps": members}
                                for n, (ws, members) in enumerate(workspaces.items(), 1)]},
    }


def _period(period: dict[str, str]) -> tuple[datetime, datetime]:
    return tuple(datetime.fromisoformat(period[k].replace("Z", "+00:00")) for k in ("start", "end"))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def measure(apps: int = APPS) -> dict[str, Any]:
    from sandbox.stack import Stack
    state = tempfile.mkdtemp(prefix="bench-sla-")
    stack = Stack(state, world(apps), azurite=True, databases=False).start()
    try:
        env = job_env(stack, OPS_NOTIFY_KIND="none", OPS_RUNS_CONTAINER="bench-runs")
        hour = datetime.now(timezone.utc).replace(minute=5, second=0, microsecond=0) - timedelta(hours=2)
        day = hour.replace(hour=0, minute=30)  # snapshots yesterday (UTC)
        runs = []
        for label, now, settings in (("first", hour, {}), ("next hour", hour + timedelta(hours=1), {}),
                                     ("re-run", hour + timedelta(hours=1), {}),
                                     ("day period", day, {"OPS_SLA_SNAPSHOT__PERIOD": "day"})):
            stack.sandbox.clear_log()
            report, child = run_job("sla-snapshot", {**env, **settings}, _stamp(now))
            runs.append((label, report, child, stack.sandbox.request_log()))
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)

    (_, first, first_child, first_log), (_, steady, steady_child, steady_log), (_, again, _, _) = runs[:3]
    calls = calls_by_operation(first_log)
    # batches of <= 50 resources per subscription and type; per app batch one call per grain
    apps_per_batch = math.ceil(apps / len(SUBSCRIPTIONS) / 50)
    batches = 2 * len(SUBSCRIPTIONS) * apps_per_batch  # apps and caches
    grains = len(app_metric_fetches(*_period(first["details"]["period"])))
    expected = len(SUBSCRIPTIONS) * apps_per_batch * (grains + 1)
    metric_calls = calls.get("Microsoft.Insights/metrics/getBatch", 0)
    logs_calls = calls.get("Microsoft.OperationalInsights/workspaces/query/read", 0)
    written = Counter(a["kind"] for a in first["actions"] if a["status"] == "succeeded")
    rerun_writes = sum(1 for a in again["actions"] if a["kind"] != "notify")
    peak = max(r[2].peak_rss_mb for r in runs)
    return {
        "benchmark": "sla-snapshot", "apps": apps, "caches": apps,
        "subscriptions": len(SUBSCRIPTIONS), "workspaces": len(WORKSPACES),
        "measured": "first run (writes every snapshot and rollup)",
        "wall_s": round(first_child.wall_s, 2),
        "peak_rss_mb": peak,
        "calls": sum(calls.values()),
        "calls_by_operation": calls,
        "runs": [{"run": label, "now": report["now"], "status": report["status"],
                  "process_wall_s": round(child.wall_s, 2), "cpu_s": child.cpu_s,
                  "peak_rss_mb": child.peak_rss_mb,
                  "sandbox_calls": len(log),
                  "job_calls": report["details"].get("calls", {}),
                  "writes": sum(1 for a in report["actions"]
                                if a["status"] == "succeeded" and a["kind"].startswith("write-"))}
                 for label, report, child, log in runs],
        "steady_state_wall_s": round(steady_child.wall_s, 2),
        "steady_state_calls_by_operation": calls_by_operation(steady_log),
        "writes": dict(sorted(written.items())),
        "checks": {
            "runs succeeded": check(all(r[1]["status"] == "succeeded" for r in runs),
                                    [r[1]["status"] for r in runs], "succeeded"),
            "re-run writes nothing": check(rerun_writes == 0, rerun_writes, 0),
            "metrics in batches of <= 50, one call per grain": check(
                metric_calls == expected, metric_calls,
                f"{batches} batches: {batches // 2} of apps x {grains} grains + {batches // 2} of caches"),
            "one Logs query per workspace": check(logs_calls == len(WORKSPACES), logs_calls,
                                                  len(WORKSPACES)),
            "peak RSS": rss_check(peak),
        },
    }


if __name__ == "__main__":
    main(measure)
