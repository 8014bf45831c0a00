"""sla-snapshot at scale: one run over 200 apps (each with a Redis cache, spread
over 2 subscriptions and 4 Log Analytics workspaces) against the sandbox and
Azurite, started in this process. Reports the run's wall time, the peak RSS
(resource.getrusage) of this process (sandbox included: it generates the
telemetry in-process) and of a CLI run in a fresh process (the job alone), the
calls by operation from the sandbox's request log, and the blob calls the job
counted itself (Azurite keeps no such log).

The run reads 3 days of per-minute Requests and Http5xx per app (the longest
burn-rate window) through the metrics batch API: 200 x 2 x 4320 points."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

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


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # KiB on Linux


def measure(apps: int = APPS) -> dict[str, Any]:
    """Three runs: the CLI in a fresh process (the job's own footprint: the sandbox is
    in this one), then in this process the next hour's run and a re-run of it."""
    from sandbox.stack import Stack
    state = tempfile.mkdtemp(prefix="bench-sla-")
    stack = Stack(state, world(apps), azurite=True, databases=False).start()
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("OPS_") or k == "AzureWebJobsStorage"]:
            del os.environ[key]
        os.environ.update(stack.env())
        hour = datetime.now(timezone.utc).replace(minute=5, second=0, microsecond=0) - timedelta(hours=2)

        started = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "jobs", "run", "sla-snapshot", "--json", "--now",
                              hour.strftime("%Y-%m-%dT%H:%M:%SZ")], capture_output=True, text=True,
                             cwd=ROOT, env=dict(os.environ), timeout=600)
        cli_wall = time.perf_counter() - started
        cli_report = json.loads(cli.stdout)

        from jobs import service
        service.reset()
        service.environment()  # settings and clients: not part of the run
        before = _rss_mb()
        stack.sandbox.clear_log()
        started = time.perf_counter()
        report = service.run("sla-snapshot", trigger="cli", dry_run=False, now=hour + timedelta(hours=1))
        wall = time.perf_counter() - started
        calls = Counter(e["operation"] for e in stack.sandbox.request_log())
        written = Counter(a["kind"] for a in report["actions"] if a["status"] == "succeeded")
        peak = _rss_mb()
        started = time.perf_counter()
        again = service.run("sla-snapshot", trigger="cli", dry_run=False, now=hour + timedelta(hours=1))
        rerun_wall = time.perf_counter() - started
        return {
            "benchmark": "sla-snapshot", "apps": apps,
            "status": "succeeded" if {cli_report["status"], report["status"], again["status"]}
                      == {"succeeded"} else "failed",
            "wall_s": round(wall, 2),
            "peak_rss_mb": peak, "rss_before_run_mb": before,
            "cli_process_wall_s": round(cli_wall, 2),
            "cli_process_peak_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN),
            "calls_by_operation": dict(sorted(calls.items())),
            "blob_reads": {k: v for k, v in report["details"]["calls"].items() if k.startswith("blob:")},
            "writes": dict(sorted(written.items())),
            "rerun_wall_s": round(rerun_wall, 2),
            "rerun_writes": sum(1 for a in again["actions"] if a["kind"] != "notify"),
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
        from jobs import service
        service.reset()
        stack.stop()


if __name__ == "__main__":
    result = measure(int(sys.argv[1]) if len(sys.argv) > 1 else APPS)
    for key, value in result.items():
        print(f"{key:<24} {value}")
    sys.exit(0 if result["status"] == "succeeded" else 1)
