"""`make demo`: start the local stand-ins (the Azure sandbox with the demo world,
Azurite, PostgreSQL, Redis and a webhook receiver), run all four jobs against
them for real, print their reports and the notifications sent, and stop.

Nothing leaves this machine: every endpoint is on 127.0.0.1.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from sandbox.stack import DEMO_WORLD, Stack
from sandbox.webhook import WebhookReceiver

STATE = Path(".state/demo")


def main() -> int:
    shutil.rmtree(STATE, ignore_errors=True)
    print("starting the local stand-ins (sandbox, Azurite, PostgreSQL, Redis)...", flush=True)
    stack = Stack(STATE, DEMO_WORLD).start()
    receiver = WebhookReceiver(on_message=lambda m: print(
        f"  >> notification: {m.get('title')}: {m.get('text')}", flush=True))
    try:
        os.environ.update(stack.env())
        os.environ.update({"OPS_NOTIFY_KIND": "webhook", "OPS_NOTIFY_URL": receiver.url})
        from jobs import registry, service
        from jobs.__main__ import render
        from jobs.settings import is_loopback
        env = service.environment()
        assert all(is_loopback(v) for v in env.settings.endpoints().values() if v)
        failed = 0
        for name in registry.JOBS:
            print(f"\n=== {name} (as python -m jobs run {name} --apply) ===", flush=True)
            report = service.run(name, trigger="cli", dry_run=False)  # a real run: the demo shows changes
            print(render(report), flush=True)
            failed += report["status"] == "failed"
        print(f"\nrun reports are in Azurite, container {env.settings.runs_container} "
              f"(runs/<job>/<yyyy>/<mm>/<dd>/...); sandbox requests: "
              f"{len(stack.sandbox.request_log())}; notifications: {len(receiver.received)}")
        if failed:
            print(f"{failed} job run(s) reported failures: the demo world holds faulty cases "
                  "on purpose (a malformed tag, a refused downgrade...); see the reports above.")
        return 0
    finally:
        receiver.stop()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
