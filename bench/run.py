"""`make bench`: every benchmark (or those named: `python -m bench.run sla-snapshot`),
each result as JSON in bench/results/<name>.json, then one summary table
(also written as bench/results/summary.md) and the calls by operation of each.
Exit 1 when a check of any benchmark fails (or a benchmark could not run)."""
from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from bench import budget_check, cold_start, dev_hours, sla_snapshot
from bench.common import failed_checks

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "cold-start": cold_start.measure, "dev-hours": dev_hours.measure,
    "budget-check": budget_check.measure, "sla-snapshot": sla_snapshot.measure}
COLUMNS = ["benchmark", "wall s", "peak RSS MB", "calls", "checks"]


def _checks(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"ERROR: {result['error']}"
    failed = failed_checks(result)
    total = len(result.get("checks", {}))
    return f"FAILED: {', '.join(failed)}" if failed else f"{total}/{total} ok"


def table(results: list[dict[str, Any]]) -> str:
    rows = [[r["benchmark"], _fmt(r.get("wall_s")), _fmt(r.get("peak_rss_mb")),
             _fmt(r.get("calls")), _checks(r)] for r in results]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]
    right = {1, 2, 3}

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "| " + " | ".join("-" * (w - 1) + ":" if i in right else "-" * w
                             for i, w in enumerate(widths)) + " |"
    return "\n".join([line(COLUMNS), rule, *(line(row) for row in rows)])


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.machine()}"


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    results = []
    for name, measure in BENCHMARKS.items():
        if names and name not in names:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            result = measure()
        except Exception as exc:  # noqa: BLE001 - the other benchmarks still run
            traceback.print_exc()
            result = {"benchmark": name, "error": f"{type(exc).__name__}: {exc}"[:200]}
        result["machine"] = machine()
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        results.append(result)
    summary = table(results)
    (RESULTS / "summary.md").write_text(f"{summary}\n\n{machine()}\n")
    print(summary)
    print(f"\n{machine()}; JSON in {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}/")
    for r in results:
        print(f"\n{r['benchmark']}: {r.get('measured', '')}")
        for name, c in r.get("checks", {}).items():
            print(f"  {'ok  ' if c['ok'] else 'FAIL'}  {name}: {_fmt(c['value'])} (limit {_fmt(c['limit'])})")
        if r.get("calls_by_operation"):
            print("  calls by operation:")
            for operation, count in r["calls_by_operation"].items():
                print(f"  {count:>8}  {operation}")
    bad = [r["benchmark"] for r in results if "error" in r or failed_checks(r)]
    if bad:
        print(f"\nfailed: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
