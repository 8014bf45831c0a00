"""dev-hours at scale: 500 apps on 100 plans over 5 subscriptions, every call to
the sandbox delayed 100 ms, one run at 19:15 on a Monday that stops them all and
scales every plan down, then two more runs that have nothing left to do.

Measured: the run's wall time against the bound writes x latency / concurrency
(the job applies 8 writes at once; jobs/dev_hours/job.py says why), calls by
operation, writes per changed resource, reads per run, and the job process's
peak RSS. The job runs as `python -m jobs run dev-hours` in a child process, so
the in-process sandbox's memory is not counted."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def _run(env: dict, now: str) -> tuple[dict, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "jobs", "run", "dev-hours", "--now", now, "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if not done.stdout.strip():
        raise RuntimeError(f"dev-hours run gave no report: {done.stderr[-2000:]}")
    return json.loads(done.stdout), elapsed


def _seconds(report: dict) -> float:
    from datetime import datetime
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(report["finished_at"]) - parse(report["started_at"])).total_seconds()


def measure() -> dict:
    from jobs.dev_hours.job import DevHoursJob
    from sandbox.stack import Stack
    concurrency = DevHoursJob.concurrency
    with tempfile.TemporaryDirectory(prefix="bench-dev-hours-") as state:
        stack = Stack(state, build_world(), azurite=True, databases=False, page_size=100).start()
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_")}
            env.update(stack.env())
            env.update({"OPS_RUNS_CONTAINER": f"bench-{uuid.uuid4().hex[:8]}",
                        "OPS_DEV_HOURS__MAX_ACTIONS_PER_RUN": "1000"})  # one run stops them all
            stack.sandbox.faults.configure({"rules": [{"operation": "*", "latency_ms": LATENCY_MS}]})
            runs = []
            for now in (OFF_AT, OFF_AT, LATER):
                stack.sandbox.clear_log()
                report, process_seconds = _run(env, now)
                runs.append((report, process_seconds, stack.sandbox.request_log()))
            world = stack.world.snapshot()["resources"]
            # the job processes only: Azurite, also a child, is waited for (counted) at stop()
            peak_rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        finally:
            stack.stop()
    report, process_seconds, log = runs[0]
    writes = [e for e in log if _is_write(e)]
    per_resource = Counter(e["path"].rsplit("/", 1)[0] if e["method"] == "POST" else e["path"] for e in writes)
    stopped = sum(1 for r in world if r["type"] == "Microsoft.Web/sites" and r["properties"]["state"] == "Stopped")
    scaled = sum(1 for r in world if r["type"] == "Microsoft.Web/serverfarms" and r["sku"]["capacity"] == 1)
    wall = _seconds(report)
    bound = len(writes) * LATENCY_MS / 1000 / concurrency
    reads = [sum(1 for e in run[2] if e["method"] == "GET") for run in runs]
    gets = [e for e in log if e["method"] == "GET"]
    # spans from the sandbox's log: 'at' is when a call was answered
    observe_s = max(e["at"] for e in gets) - min(e["at"] - e["duration_ms"] / 1000 for e in gets)
    apply_s = max(e["at"] for e in writes) - min(e["at"] - e["duration_ms"] / 1000 for e in writes)
    return {
        "benchmark": "dev-hours",
        "apps": 500, "plans": 100, "subscriptions": SUBSCRIPTIONS, "latency_ms": LATENCY_MS,
        "concurrency": concurrency,
        "status": report["status"],
        "apps_stopped": stopped, "plans_scaled_down": scaled,
        "wall_s": round(wall, 2),
        "process_wall_s": round(process_seconds, 2),
        "observe_s": round(observe_s, 2), "apply_s": round(apply_s, 2),
        "calls_by_operation": dict(sorted(Counter(e["operation"] for e in log).items())),
        "writes": len(writes),
        "max_writes_per_changed_resource": max(per_resource.values()) if per_resource else 0,
        "reads_per_run": reads,
        "writes_per_run": [sum(1 for e in run[2] if _is_write(e)) for run in runs],
        "bound_s": round(bound, 2),
        "ratio": round(wall / bound, 3) if bound else None,
        "limit": LIMIT,
        "peak_rss_mb": round(peak_rss_kb / 1024, 1),
    }


if __name__ == "__main__":
    result = measure()
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ratio"] is not None and result["ratio"] <= result["limit"] else 1)
