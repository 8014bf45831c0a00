"""budget-check at scale: one real run over 20 subscription scopes, each with
generated daily cost rows (9 services in 2 resource groups, two months of
history, pages of 1000 rows as Azure answers), no budgets yet (the run creates
20) and notifications off. Against the local sandbox and Azurite, in this process.

Figures: wall time of the run, peak RSS of the process (sandbox included; the
figure before the run is given too), sandbox calls by operation, query pages
per scope. Cost Management is read once per scope page, never per service.
"""
from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

SCOPES = 20
TODAY = "2026-11-20"
SERVICES = [("rg-web", "Azure App Service", 14.0), ("rg-web", "Storage", 0.8),
            ("rg-web", "Application Insights", 1.2), ("rg-web", "Key Vault", 0.05),
            ("rg-data", "Azure Database for PostgreSQL", 6.5), ("rg-data", "Azure Cache for Redis", 2.1),
            ("rg-data", "Log Analytics", 1.6), ("rg-data", "Storage", 0.4),
            ("rg-data", "Container Registry", 0.17)]


def subscription(i: int) -> str:
    return f"0be00000-0000-0000-0000-{i:012d}"


def world() -> dict:
    generators = []
    for i in range(SCOPES):
        for n, (group, service, daily) in enumerate(SERVICES):
            generators.append({"subscription": subscription(i), "resource_group": group, "service": service,
                               "daily": daily * (1 + i / 10), "noise": 0.05,
                               "spikes": [{"date": "today-2", "amount": 30.0}] if n == i % len(SERVICES) else []})
    return {"costs": {"currency": "USD", "today": TODAY, "data_through": "yesterday",
                      "last_day_fraction": 0.7, "history_months": 2, "seed": 5, "page_size": 1000,
                      "generators": generators}}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure() -> dict:
    from sandbox.stack import Stack
    state = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    stack = Stack(state, world(), azurite=True, databases=False).start()
    saved = dict(os.environ)
    try:
        os.environ.update(stack.env())
        os.environ.update({
            "OPS_BUDGET_CHECK__SCOPES": ",".join(f"/subscriptions/{subscription(i)}=1500"
                                                 for i in range(SCOPES)),
            "OPS_BUDGET_CHECK__CONTACT_EMAILS": "finops@example.org",
            "OPS_NOTIFY_KIND": "none", "OPS_RUNS_CONTAINER": "bench-runs"})
        from jobs import service
        service.reset()
        service.environment().store.latest("budget-check")  # the store (container) is ready
        stack.sandbox.clear_log()
        rss_before = _rss_mb()
        started = time.perf_counter()
        report = service.run("budget-check", trigger="cli", dry_run=False,
                             now=datetime.fromisoformat(TODAY + "T07:00:00+00:00").astimezone(timezone.utc))
        wall = time.perf_counter() - started
        log = stack.sandbox.request_log()
        pages = [q["pages"] for q in report["details"]["queries"].values()]
        return {
            "benchmark": "budget-check", "scopes": SCOPES,
            "series_per_scope": len(SERVICES),
            "status": report["status"], "summary": report["summary"],
            "wall_s": round(wall, 2),
            "peak_rss_mb": round(_rss_mb(), 1), "rss_before_run_mb": round(rss_before, 1),
            "calls_by_operation": dict(sorted(Counter(e["operation"] for e in log).items())),
            "query_pages_per_scope": max(pages) if pages else 0,
            "sandbox_ms_per_query": round(sum(e["duration_ms"] for e in log
                                              if e["operation"].startswith("Microsoft.CostManagement"))
                                          / max(1, sum(pages)), 1),
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
        from jobs import service
        service.reset()
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    result = measure()
    for key, value in result.items():
        print(f"{key:<24} {value}")
    sys.exit(0 if result["status"] == "succeeded" else 1)
