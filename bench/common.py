"""What the benchmarks share: a job run in its own process (so its peak RSS is the
job's, not the sandbox's, which runs in the benchmark's process and generates the
data), calls by operation from the sandbox's request log, and checks.

Every benchmark's ``measure()`` returns a dict with at least::

    benchmark            name
    wall_s               wall time of the measured job process (seconds, interpreter start
                         included; ``run_s``: the run alone, as its report times it)
    peak_rss_mb          peak RSS of the job process (MB; the highest of its runs)
    calls                sandbox calls of the measured run
    calls_by_operation   {operation: count} of the measured run
    checks               {check: {"ok": bool, "value": ..., "limit": ...}}

and ``main(measure)`` runs one from the command line (``python -m bench.<name>``):
the result as JSON, exit 1 when a check fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
RSS_LIMIT_MB = 256  # issue #8: peak memory of any job run stays under this


@dataclass
class ChildRun:
    """One process run to its end: exit code, output, wall time, peak RSS and CPU time."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float
    cpu_s: float  # user + system of the child itself (the sandbox's work is not in it)


def run_child(args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> ChildRun:
    """``python -m MODULE ARGS`` (``args`` = ["-m", MODULE, ...] or ["-c", CODE]) in a fresh
    interpreter, through ``bench.peak_rss``, which reports the child's own peak RSS
    (VmHWM: getrusage() would charge it with the benchmark's RSS, see peak_rss.py)."""
    if args[0] not in ("-m", "-c"):
        raise ValueError("run_child takes -m MODULE ... or -c CODE")
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        rss_file = Path(tmp) / "peak"
        command = [sys.executable, "-m", "bench.peak_rss", str(rss_file),
                   *(args[1:] if args[0] == "-m" else args)]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
        wall = time.perf_counter() - started
        if not rss_file.exists():
            raise RuntimeError(f"{' '.join(args[:4])} reported no peak RSS (exit {done.returncode}): "
                               f"{done.stderr[-2000:]}")
        figures = json.loads(rss_file.read_text())
        return ChildRun(done.returncode, done.stdout, done.stderr, wall, figures["peak_rss_mb"],
                        figures["cpu_s"])


def run_job(name: str, env: dict[str, str], now: str, *extra: str) -> tuple[dict[str, Any], ChildRun]:
    """``python -m jobs run NAME --apply --now NOW --json`` in its own process, the clock
    pinned at NOW (tests/cli_at.py): (report, process)."""
    child = run_child(["-m", "tests.cli_at", now, "run", name, "--apply", "--now", now, "--json", *extra],
                      env=env)
    try:
        report = json.loads(child.stdout)
    except ValueError:
        raise RuntimeError(f"{name} run gave no report (exit {child.returncode}): "
                           f"{child.stderr[-2000:]}") from None
    return report, child


def run_seconds(report: dict[str, Any]) -> float:
    """The run as the job timed it (report started_at to finished_at): no interpreter
    start, no imports."""
    from datetime import datetime
    started, finished = (datetime.fromisoformat(report[k].replace("Z", "+00:00"))
                         for k in ("started_at", "finished_at"))
    return round((finished - started).total_seconds(), 2)


def job_env(stack, **settings: str) -> dict[str, str]:
    """The environment of a job process: this one's without any app setting, the
    stack's settings, then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_") and k != "AzureWebJobsStorage"}
    env.update(stack.env())
    env.update(settings)
    return env


def calls_by_operation(log: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(e["operation"] for e in log).items()))


def check(ok: bool, value: Any = None, limit: Any = None) -> dict[str, Any]:
    return {"ok": bool(ok), "value": value, "limit": limit}


def rss_check(peak_rss_mb: float) -> dict[str, Any]:
    return check(peak_rss_mb < RSS_LIMIT_MB, peak_rss_mb, f"< {RSS_LIMIT_MB}")


def failed_checks(result: dict[str, Any]) -> list[str]:
    return [name for name, c in result.get("checks", {}).items() if not c["ok"]]


def main(measure: Callable[[], dict[str, Any]]) -> None:
    result = measure()
    print(json.dumps(result, indent=2))
    failed = failed_checks(result)
    if failed:
        print(f"failed checks: {', '.join(failed)}", file=sys.stderr)
    sys.exit(1 if failed else 0)
