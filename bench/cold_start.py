"""Cold start: median wall time of `import function_app` against
`import azure.functions` in fresh interpreters, interleaved in one run.
The ratio must stay at or below 1.3 (the app adds little to the SDK it needs)."""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    return {"benchmark": "cold-start", "rounds": rounds,
            "import_function_app_ms": round(app_ms, 1),
            "import_azure_functions_ms": round(sdk_ms, 1),
            "ratio": round(app_ms / sdk_ms, 3), "limit": 1.3}


if __name__ == "__main__":
    result = measure()
    print(result)
    sys.exit(0 if result["ratio"] <= result["limit"] else 1)
