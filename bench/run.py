"""`make bench`: every benchmark, results as JSON in bench/results/ and a table."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import cold_start
from bench import dev_hours
from bench import budget_check
from bench import sla_snapshot

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = {"cold-start": cold_start.measure, "dev-hours": dev_hours.measure, "budget-check": budget_check.measure, "sla-snapshot": sla_snapshot.measure}


def main(names: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    ok = True
    for name, measure in BENCHMARKS.items():
        if names and name not in names:
            continue
        result = measure()
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
        print(f"{name}:")
        for key, value in result.items():
            print(f"  {key:<32} {value}")
        ok &= result.get("ratio", 0) <= result.get("limit", float("inf"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
