"""Run a module as ``python -m`` would, then write this process's peak RSS (MB) and
CPU seconds (user + system) to a file, as JSON.

    python -m bench.peak_rss OUTFILE MODULE [ARGS...]     e.g. OUTFILE jobs run dev-hours --json
    python -m bench.peak_rss OUTFILE -c CODE

Why not getrusage() in the parent: on Linux a child's ru_maxrss includes the RSS
of the process it was forked from (exec folds the old address space's high-water
mark in), so a child of the benchmark, whose sandbox holds hundreds of MB, would be
charged for them. VmHWM in /proc/self/status belongs to the address space exec
made: the job's alone (interpreter start included).
"""
from __future__ import annotations

import atexit
import json
import os
import runpy
import sys


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def _write(path: str) -> None:
    times = os.times()
    with open(path, "w") as out:
        json.dump({"peak_rss_mb": vm_hwm_mb(), "cpu_s": round(times.user + times.system, 2)}, out)


if __name__ == "__main__":
    out, module, *args = sys.argv[1:]
    atexit.register(_write, out)
    if module == "-c":
        sys.argv = ["-c", *args[1:]]
        exec(compile(args[0], "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
