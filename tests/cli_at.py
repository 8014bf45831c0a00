"""``python -m tests.cli_at INSTANT ARGS...``: the CLI (``python -m jobs ARGS...``) as it
runs when the clock reads INSTANT.

A real run takes ``--now`` only near the clock (jobs.requests.check_now). The crash
suite and the benchmarks apply at chosen instants of the sandbox's world, so they pin
the clock that check reads; everything else is the CLI unchanged.
"""
import sys

from jobs.__main__ import main
from jobs.requests import parse_now

if __name__ == "__main__":
    instant = parse_now(sys.argv[1])
    sys.exit(main(sys.argv[2:], clock=lambda: instant))
