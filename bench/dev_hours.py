"""dev-hours at scale: 500 apps on 100 plans over 5 subscriptions, every call to
the sandbox delayed 100 ms, one run at 19:15 on a Monday that stops them all and
scales every plan down, then two more runs that have nothing left to do.

Each run is `python -m jobs run dev-hours --apply --now ... --json` in its own process, so
the in-process sandbox's memory is not counted. Figures: the first run's wall
time against the bound writes x latency / concurrency (the job applies 8 writes
at once; jobs/dev_hours/job.py says why), calls by operation, writes per changed
resource, reads per run, and the job processes' peak RSS. Checks: every app
stopped and every plan scaled down, ratio <= 2, reads not growing across runs, at
most one write of each kind per changed resource (an app: its marker, then its
stop), no write on the runs with nothing to do, and every job process under 256 MB."""
from __future__ import annotations

import tempfile
import uuid
from collections import Counter

from bench.common import (calls_by_operation, check, job_env, main, rss_check, run_job,
                          run_seconds)

SUBSCRIPTIONS, GROUPS, PLANS_PER_GROUP, APPS_PER_PLAN = 5, 10, 2, 5  # 5 x 10 x 2 = 100 plans, 500 apps
LATENCY_MS = 100
OFF_AT = "2026-11-30T19:15:00Z"  # Monday: the default Mon-Fri 08:00-19:00 (Europe/London) is off
LATER = "2026-11-30T21:00:00Z"
LIMIT = 2.0


def build_world() -> dict:
    resources = []
    subscriptions = {}
    for s in range(SUBSCRIPTIONS):
        sub = f"0b000000-0000-0000-0000-{s + 1:012d}"
        subscriptions[sub] = {"displayName": f"Dev {s + 1}"}
        for g in range(GROUPS):
            rg = f"rg-team{g:02d}-dev"
            scope = f"/subscriptions/{sub}/resourceGroups/{rg}"
            resources.append({"id": scope, "name": rg, "type": "Microsoft.Resources/resourceGroups",
                              "location": "westeurope", "tags": {"environment": "dev"},
                              "properties": {"provisioningState": "Succeeded"}})
            for p in range(PLANS_PER_GROUP):
                plan = f"plan-team{g:02d}-{p}-dev"
                plan_id = f"{scope}/providers/Microsoft.Web/serverfarms/{plan}"
                resources.append({
                    "id": plan_id, "name": plan, "type": "Microsoft.Web/serverfarms", "kind": "app",
                    "location": "West Europe", "tags": {"environment": "dev"},
                    "properties": {"status": "Ready", "resourceGroup": rg, "provisioningState": "Succeeded"},
                    "sku": {"name": "P1v3", "tier": "PremiumV3", "size": "P1v3", "family": "Pv3",
                            "capacity": 2}})
                for a in range(APPS_PER_PLAN):
                    name = f"app-team{g:02d}-{p}-{a}-dev"
                    resources.append({
                        "id": f"{scope}/providers/Microsoft.Web/sites/{name}", "name": name,
                        "type": "Microsoft.Web/sites", "kind": "app", "location": "West Europe",
                        "tags": {"environment": "dev", "ops-dev-hours": "default"},
                        "properties": {"state": "Running", "enabled": True, "resourceGroup": rg,
                                       "serverFarmId": plan_id, "hostNameSslStates": [],
                                       "siteConfig": {"alwaysOn": False}}})
    return {"subscriptions": subscriptions, "resources": resources}


def _is_write(entry: dict) -> bool:
    return entry["method"] in ("PUT", "PATCH", "DELETE") or (
        entry["method"] == "POST" and entry["path"].rstrip("/").rsplit("/", 1)[-1] in ("start", "stop"))


def measure() -> dict:
    from jobs.dev_hours.job import DevHoursJob
    from sandbox.stack import Stack
    concurrency = DevHoursJob.concurrency
    with tempfile.TemporaryDirectory(prefix="bench-dev-hours-") as state:
        stack = Stack(state, build_world(), azurite=True, databases=False, page_size=100).start()
        try:
            env = job_env(stack, OPS_RUNS_CONTAINER=f"bench-{uuid.uuid4().hex[:8]}",
                          OPS_DEV_HOURS__MAX_ACTIONS_PER_RUN="1000")  # one run stops them all
            stack.sandbox.faults.configure({"rules": [{"operation": "*", "latency_ms": LATENCY_MS}]})
            runs = []
            for now in (OFF_AT, OFF_AT, LATER):
                stack.sandbox.clear_log()
                report, child = run_job("dev-hours", env, now)
                runs.append((report, child, stack.sandbox.request_log()))
            world = stack.world.snapshot()["resources"]
        finally:
            stack.stop()
    report, child, log = runs[0]
    writes = [e for e in log if _is_write(e)]
    # per resource and verb: an app's marker PATCH comes with its stop
    per_resource = Counter((e["method"], e["path"].rsplit("/", 1)[0] if e["method"] == "POST" else e["path"])
                           for e in writes)
    stopped = sum(1 for r in world if r["type"] == "Microsoft.Web/sites" and r["properties"]["state"] == "Stopped")
    scaled = sum(1 for r in world if r["type"] == "Microsoft.Web/serverfarms" and r["sku"]["capacity"] == 1)
    run_s = run_seconds(report)
    bound = len(writes) * LATENCY_MS / 1000 / concurrency
    ratio = round(run_s / bound, 3) if bound else None
    reads = [sum(1 for e in run[2] if e["method"] == "GET") for run in runs]
    writes_per_run = [sum(1 for e in run[2] if _is_write(e)) for run in runs]
    gets = [e for e in log if e["method"] == "GET"]
    # spans from the sandbox's log: 'at' is when a call was answered
    observe_s = max(e["at"] for e in gets) - min(e["at"] - e["duration_ms"] / 1000 for e in gets)
    apply_s = max(e["at"] for e in writes) - min(e["at"] - e["duration_ms"] / 1000 for e in writes)
    most = max(per_resource.values()) if per_resource else 0
    peak = max(run[1].peak_rss_mb for run in runs)
    calls = calls_by_operation(log)
    return {
        "benchmark": "dev-hours",
        "apps": 500, "plans": 100, "subscriptions": SUBSCRIPTIONS, "latency_ms": LATENCY_MS,
        "concurrency": concurrency,
        "measured": "first run (stops 500 apps, scales 100 plans down)",
        "status": [run[0]["status"] for run in runs],
        "apps_stopped": stopped, "plans_scaled_down": scaled,
        "wall_s": round(child.wall_s, 2),
        "run_s": run_s,
        "cpu_s": child.cpu_s,
        "peak_rss_mb": peak,
        "peak_rss_mb_per_run": [run[1].peak_rss_mb for run in runs],
        "calls": sum(calls.values()),
        "calls_by_operation": calls,
        "observe_s": round(observe_s, 2), "apply_s": round(apply_s, 2),
        "writes": len(writes),
        "max_writes_per_changed_resource": most,
        "reads_per_run": reads,
        "writes_per_run": writes_per_run,
        "bound_s": round(bound, 2),
        "ratio": ratio,
        "checks": {
            "runs succeeded": check(all(run[0]["status"] == "succeeded" for run in runs),
                                    [run[0]["status"] for run in runs], "succeeded"),
            "all stopped and scaled down": check((stopped, scaled) == (500, 100),
                                                 [stopped, scaled], [500, 100]),
            "ratio to writes x latency / concurrency": check(ratio is not None and ratio <= LIMIT,
                                                             ratio, f"<= {LIMIT}"),
            "reads not growing across runs": check(reads[2] <= reads[1] <= reads[0], reads,
                                                   "non-increasing"),
            "one write of each kind per changed resource": check(most <= 1, most, "<= 1"),
            "no writes with nothing to do": check(writes_per_run[1:] == [0, 0], writes_per_run[1:],
                                                  [0, 0]),
            "peak RSS": rss_check(peak),
        },
    }


if __name__ == "__main__":
    main(measure)
