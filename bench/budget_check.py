"""budget-check at scale: one real run over 20 subscription scopes, each with
generated daily cost rows (9 services in 2 resource groups, two months of
history, pages of 1000 rows as Azure answers), no budgets yet (the run creates
20) and notifications off, against the local sandbox and Azurite. The run is
`python -m jobs run budget-check --apply --now ... --json` in its own process (the
sandbox, which generates the cost rows, runs in this one).

Figures: wall time, peak RSS and CPU time of the job process, sandbox calls by
operation, query pages per scope. Checks: the run succeeded and created every
budget, Cost Management is read once per scope page (never per service), and the
job process peaked under 256 MB.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.common import (calls_by_operation, check, job_env, main, rss_check, run_job,
                          run_seconds)

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


def measure() -> dict:
    from sandbox.stack import Stack
    state = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    stack = Stack(state, world(), azurite=True, databases=False).start()
    try:
        env = job_env(stack, OPS_BUDGET_CHECK__SCOPES=",".join(
            f"/subscriptions/{subscription(i)}=1500" for i in range(SCOPES)),
            OPS_BUDGET_CHECK__CONTACT_EMAILS="finops@example.org",
            OPS_NOTIFY_KIND="none", OPS_RUNS_CONTAINER="bench-runs")
        stack.sandbox.clear_log()
        report, child = run_job("budget-check", env, TODAY + "T07:00:00+00:00")
        log = stack.sandbox.request_log()
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)
    calls = calls_by_operation(log)
    pages = [q["pages"] for q in report["details"]["queries"].values()]
    query_calls = calls.get("Microsoft.CostManagement/query/action", 0)
    created = calls.get("Microsoft.Consumption/budgets/write", 0)
    return {
        "benchmark": "budget-check", "scopes": SCOPES, "series_per_scope": len(SERVICES),
        "measured": "one run over 20 scopes (creates 20 budgets)",
        "status": report["status"], "summary": report["summary"],
        "wall_s": round(child.wall_s, 2),
        "run_s": run_seconds(report),
        "cpu_s": child.cpu_s,
        "peak_rss_mb": child.peak_rss_mb,
        "calls": sum(calls.values()),
        "calls_by_operation": calls,
        "query_pages_per_scope": max(pages) if pages else 0,
        "sandbox_ms_per_query": round(sum(e["duration_ms"] for e in log
                                          if e["operation"].startswith("Microsoft.CostManagement"))
                                      / max(1, sum(pages)), 1),
        "checks": {
            "run succeeded": check(report["status"] == "succeeded", report["status"], "succeeded"),
            "one query per scope page": check(query_calls == sum(pages) and len(pages) == SCOPES,
                                              query_calls, f"{sum(pages)} pages of {SCOPES} scopes"),
            "budgets created": check(created == SCOPES, created, SCOPES),
            "peak RSS": rss_check(child.peak_rss_mb),
        },
    }


if __name__ == "__main__":
    main(measure)
