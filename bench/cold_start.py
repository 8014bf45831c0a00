"""Cold start: median wall time of `import function_app` against
`import azure.functions` in fresh interpreters, interleaved in one run. The ratio
must stay at or below 1.3 (the app adds little to the SDK it needs). Also the peak
RSS of a fresh interpreter that imports function_app. No sandbox runs here, so no
calls are counted (function_app composes blueprints only: no I/O, no SDK client)."""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench.common import ROOT, check, main, rss_check, run_child

LIMIT = 1.3


def _wall(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - started


def measure(rounds: int = 21) -> dict:
    app, sdk = [], []
    _wall("import function_app")  # warm the OS file cache and .pyc files once
    for _ in range(rounds):
        sdk.append(_wall("import azure.functions"))
        app.append(_wall("import function_app"))
    app_ms, sdk_ms = statistics.median(app) * 1000, statistics.median(sdk) * 1000
    ratio = round(app_ms / sdk_ms, 3)
    child = run_child(["-c", "import function_app"])
    sdk_child = run_child(["-c", "import azure.functions"])
    return {"benchmark": "cold-start", "rounds": rounds,
            "measured": "import function_app in a fresh interpreter (median)",
            "wall_s": round(app_ms / 1000, 3),
            "peak_rss_mb": child.peak_rss_mb,
            "calls": None, "calls_by_operation": {},  # no sandbox: an import makes no call
            "import_function_app_ms": round(app_ms, 1),
            "import_azure_functions_ms": round(sdk_ms, 1),
            "azure_functions_peak_rss_mb": sdk_child.peak_rss_mb,
            "ratio": ratio, "limit": LIMIT,
            "checks": {"ratio to import azure.functions": check(ratio <= LIMIT, ratio, f"<= {LIMIT}"),
                       "peak RSS": rss_check(child.peak_rss_mb)}}


if __name__ == "__main__":
    main(measure)
