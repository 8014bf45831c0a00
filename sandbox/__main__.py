"""python -m sandbox serve --state DIR [--world FILE] [--port N] [--no-azurite] [--no-databases]

Serves the sandbox in the foreground until SIGINT/SIGTERM, then stops all it started.
Writes DIR/sandbox.env (KEY=value lines a shell can source) once everything is ready.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from sandbox.stack import DEMO_WORLD, Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the sandbox in the foreground")
    serve.add_argument("--state", required=True, help="folder for certificates, Azurite data and sandbox.env")
    serve.add_argument("--world", default=str(DEMO_WORLD), help="world file (JSON) to seed")
    serve.add_argument("--port", type=int, default=0, help="HTTPS port (default: a free one)")
    serve.add_argument("--page-size", type=int, default=100, help="items per page of a list")
    serve.add_argument("--no-azurite", action="store_true", help="do not start Azurite")
    serve.add_argument("--fixed-azurite-ports", action="store_true",
                       help="Azurite on 10000-10002, so UseDevelopmentStorage=true works (func start)")
    serve.add_argument("--no-databases", action="store_true", help="do not start PostgreSQL and Redis")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(args.state, args.world, port=args.port, azurite=not args.no_azurite,
                  databases=not args.no_databases, page_size=args.page_size,
                  fixed_azurite_ports=args.fixed_azurite_ports)
    try:
        stack.start()
    except Exception as exc:  # noqa: BLE001
        print(f"sandbox: could not start: {exc}", file=sys.stderr)
        return 1
    print(f"sandbox: serving {stack.sandbox.url}; settings in {stack.state / 'sandbox.env'}", flush=True)
    try:
        stop.wait()
    finally:
        stack.stop()
        print("sandbox: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
