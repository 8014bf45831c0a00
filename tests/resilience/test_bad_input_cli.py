"""Bad input on the CLI (issue #8): odd arguments, unknown jobs, bad --now, --option,
--force and --days. Always exit code 2 with a message on stderr saying what is wrong;
never a traceback, never a write to the sandbox, never a run record.

A table of cases runs `python -m jobs` as a user does (a subprocess each, about 0.5 s,
so they run a few at a time); a hypothesis property drives `jobs.__main__.main` in
process with argument lists that always carry at least one fault (and --dry-run, so
even a fault the oracle got wrong could not change anything).
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs import registry, service
from tests.resilience.test_bad_input_http import (JUNK_KEYS, force_hostile, hostile_now, secret_names,
                                                 valid_now, writes)

JOBS = tuple(registry.JOBS)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def no_trace(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text[-3000:]


def nothing_ran(app_env) -> None:
    assert writes(app_env) == [], "bad input reached Azure"
    service.reset()
    for job in JOBS:
        assert service.latest(job) is None, f"bad input left a run record of {job}"


CASES = [
    ((), "the following arguments are required"),
    (("frobnicate",), "invalid choice"),
    (("run",), "the following arguments are required: name"),
    (("run", "nope"), "invalid choice"),
    (("run", "../dev-hours"), "invalid choice"),
    (("run", "Dev-Hours"), "invalid choice"),
    (("run", "d\u00e9v-hours"), "invalid choice"),
    (("run", ""), "invalid choice"),
    (("run", "dev-hours", "--now"), "expected one argument"),
    (("run", "dev-hours", "--now", "tomorrow"), "now must be an ISO-8601"),
    (("run", "dev-hours", "--now", ""), "now must be an ISO-8601"),
    (("run", "dev-hours", "--now", "2026-11-27T18:00:00"), "must include a UTC offset"),
    (("run", "dev-hours", "--now", "2016-12-31T23:59:60Z"), "now must be an ISO-8601"),
    (("run", "dev-hours", "--now", "9999-12-31T23:59:59-14:00"), "out of range"),
    (("run", "dev-hours", "--now", "0001-01-01T00:00:00+14:00"), "out of range"),
    (("run", "dev-hours", "--option", "novalue"), "KEY=VALUE"),
    (("run", "dev-hours", "--option", "=x"), "KEY=VALUE"),
    (("run", "dev-hours", "--option", "colour=red"), "takes no option colour"),
    (("run", "secret-rotation", "--option", "force=../../etc/passwd"), "must be a short plain string"),
    (("run", "secret-rotation", "--force", "shopfront-db-password\n"), "must be a short plain string"),
    (("run", "secret-rotation", "--force", "a", "--option", "force=b"), "given twice"),
    (("run", "secret-rotation", "--option", "force=a", "--option", "force=b"), "given twice"),
    (("run", "budget-check", "--force", "x"), "takes no option force"),
    (("run", "dev-hours", "--bogus"), "unrecognized arguments"),
    (("run", "dev-hours", "--dry-run=yes"), "ignored explicit argument"),
    (("run", "dev-hours", "--apply", "--dry-run"), "not allowed with argument"),
    (("run", "dev-hours", "--apply=yes"), "ignored explicit argument"),
    (("run", "budget-check", "--apply", "--now", "2027-11-01T00:00:00Z"), "within 5 minutes of the clock"),
    (("run", "sla-snapshot", "--apply", "--now", "2000-01-01T00:00:00Z"), "within 5 minutes of the clock"),
    (("plan", "dev-hours", "--days", "0"), "--days must be between 1 and 60"),
    (("plan", "dev-hours", "--days", "61"), "--days must be between 1 and 60"),
    (("plan", "dev-hours", "--days", "99999999999999999999999"), "--days must be between 1 and 60"),
    (("plan", "dev-hours", "--days", "abc"), "invalid int value"),
    (("plan", "dev-hours", "--days", "7.5"), "invalid int value"),
    (("plan", "dev-hours", "--now", "yesterday"), "now must be an ISO-8601"),
    (("latest", "nope"), "invalid choice"),
    (("list", "extra"), "unrecognized arguments"),
    (("-v", "run", "dev-hours", "--now", "nope"), "now must be an ISO-8601"),
]


def test_odd_arguments_exit_2_with_a_clear_message_and_change_nothing(app_env):
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda case: (case, cli(*case[0])), CASES))
    problems = []
    for (args, fragment), out in results:
        no_trace(out.stderr + out.stdout)
        if out.returncode != 2 or fragment not in out.stderr:
            problems.append((args, out.returncode, out.stderr[-400:]))
    assert not problems, problems
    nothing_ran(app_env)


def test_an_empty_force_is_refused_not_a_run_of_every_due_secret(app_env):
    # `if args.force:` read --force "" as no --force at all: a real run rotating every due secret.
    out = cli("run", "secret-rotation", "--force", "")
    assert out.returncode == 2 and "must be a short plain string" in out.stderr, out.stderr
    no_trace(out.stderr)
    nothing_ran(app_env)


# -- in process, drawn by hypothesis -------------------------------------------------------------

@st.composite
def bad_argv(draw):
    """`run`/`plan`/`latest` argument lists with at least one fault; every `run` is --dry-run."""
    command = draw(st.sampled_from(["run", "plan", "latest"]))
    faults = draw(st.sets(st.sampled_from(["name", "now", "option", "force", "days", "flag"]),
                          min_size=1, max_size=3))
    if command == "latest":
        faults = {"name"}
    name = draw(st.text(max_size=30).filter(lambda n: n not in JOBS and not n.startswith("-"))
                if "name" in faults else st.sampled_from(JOBS))
    argv = [command, name]
    if command == "run":
        argv.append("--dry-run")
    if "now" in faults:
        argv += ["--now", draw(hostile_now).value]
    elif command != "latest" and draw(st.booleans()):
        argv += ["--now", draw(valid_now)[0]]
    if command == "run":
        if "option" in faults:
            argv += ["--option", draw(st.one_of(
                st.text(max_size=20).filter(lambda t: "=" not in t).map(str),  # no KEY=VALUE
                st.tuples(st.sampled_from(JUNK_KEYS + ["colour"]).filter(lambda k: "=" not in k),
                          secret_names).map(lambda kv: "=".join(kv)),
                force_hostile.map(lambda p: "force=" + p.value)))]
        if "force" in faults:
            argv += ["--force", draw(force_hostile).value]
    if command == "plan" and "days" in faults:
        argv += ["--days", draw(st.one_of(st.integers(max_value=0), st.integers(min_value=61),
                                          st.sampled_from(["abc", "1e3", "7.5", "", " ", "0x10", "1_0_0"])).map(str))]
    if "flag" in faults:
        argv.insert(draw(st.integers(2, len(argv))), draw(st.sampled_from(
            ["--bogus", "--dry-run=yes", "--json=1", "-x", "--days" if command == "run" else "--force"])))
    faults_here = faults & ({"name", "now", "flag"} | ({"option", "force"} if command == "run" else set())
                            | ({"days"} if command == "plan" else set()))
    if not faults_here:  # e.g. --days asked of `run`: add one that applies
        argv.insert(2, "--bogus")
    return argv


def test_any_bad_argument_list_exits_2_in_process(app_env):
    from jobs.__main__ import main

    @settings(max_examples=120, deadline=None, database=None)
    @given(bad_argv())
    def check(argv):
        app_env.sandbox.clear_log()
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse refuses before main's own handling
                code = exc.code
        assert code == 2, (argv, err.getvalue()[-500:])
        assert "error" in err.getvalue(), err.getvalue()
        no_trace(err.getvalue())
        assert writes(app_env) == []

    check()
    nothing_ran(app_env)
