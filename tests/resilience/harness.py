"""The fault harness (issue #8): runs a job against the sandbox with faults injected
through its fault rules (429 with Retry-After, 500, dropped connections, latency
spikes; seeded) or with Azurite stopped mid-run, then checks what every run must
leave behind:

- **honest**: every action the report calls ``succeeded`` has evidence in the world
  or in storage (``Scenario.evidence``), every effective write in the request log
  belongs to an action of the report, and the run record stored is the report
  returned (a run that could not store it says so);
- **no production write**: no write request (PUT/PATCH/DELETE, POST start/stop/
  restart/refresh/regenerateKey/recover; answered or not) touches a production
  resource, and every write is one the job may make at all;
- **no leak**: no secret value of the world (Key Vault versions, keys, passwords),
  nor the sandbox token, in reports, stored blobs, captured logs (DEBUG, no
  redacting filter) or notifications;
- **nothing lost**: run records, write-once blobs (SLA snapshots, monthly reports),
  Key Vault versions and budgets present before the faulty run are still there,
  byte-identical where they are written once;
- **convergence**: world A (fresh, history, faulty run, clean run) has the same
  ``end_state`` as world B (fresh, history, clean run) at the same ``now``; then
  both take the same later runs and are compared again.

With Azurite stopped mid-run (an Azurite of the test's own, restarted on the same
data), besides: a run that reports no error saved its job state (``check_saved``);
no report blames another writer (there is none in the suite, so a 409/412 met by
the SDK's retry of the run's own write must not be reported as someone else's);
the run lock is free again at most ``LOCK_SECONDS`` after storage went away, and a
run attempted while it is still leased is refused with AlreadyRunning.

Forms: the short form (``make test``) runs ``SHORT_SEEDS`` per job (secret-rotation,
the slowest, the first only) with few latency spikes, and a 2 s Azurite outage per
job; ``OPS_FAULT_RUNS=full`` (``make faults``) runs ``FULL_SEEDS`` with the issue's
figures, and a 110 s outage besides. ``OPS_FAULT_SEEDS=3,17`` runs exactly those
seeds: every failure names job, seed (or outage) and what broke.

Note on determinism: the sandbox draws faults from one seeded RNG in request order;
jobs that apply actions concurrently may reorder requests, so a seed reproduces
the same fault mix but not always the same assignment to requests.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator

import pytest

from jobs import service

FULL = os.environ.get("OPS_FAULT_RUNS", "").strip().lower() == "full"
SHORT_SEEDS = (1, 2)
FULL_SEEDS = tuple(range(1, 11))

# The profile: 429 with Retry-After on 20 % of calls, 500 on 10 %, dropped
# connections on 5 %, 2 s latency spikes (the short form has fewer of them).
RATE_429, RATE_500, RATE_DROP = 0.2, 0.1, 0.05
RETRY_AFTER = 1  # seconds; the suite stays fast
SPIKE_MS = 2000
SPIKE_RATE = 0.05 if FULL else 0.01

# POSTs that change something (the other POSTs read: query, forecast, getBatch, listKeys).
WRITE_POSTS = ("start", "stop", "restart", "refresh", "regenerateKey", "recover")

# The run lock's lease in the suite (OPS_LOCK_SECONDS; Azure's shortest, 60 by default): a
# lock whose release failed frees itself this long after its last renewal.
LOCK_SECONDS = 15

# Azurite outages (seconds until it is back) in the Azurite-stopped tests: 2 s, which the
# storage SDK's retries ride over (its first retry waits about 15 s), in every form; 110 s in
# the full form, which outlasts a store call's retries (4 tries over 76-94 s: waits of 15, 18
# and 24 s, +-3 s each): the run cannot save what it keeps and must say so; its report,
# stored after that, usually reaches Azurite again.
OUTAGES = [2.0] + ([pytest.param(110.0, marks=pytest.mark.slow)] if FULL else [])
AZURITE_TIMEOUT = 900  # pytest-timeout of an Azurite-stopped test (a long outage takes minutes)

# Loggers captured at DEBUG for the leak scan (as the secret-rotation canary does).
DEBUG_LOGGERS = ("", "jobs", "azure", "psycopg", "redis", "urllib3")


def seeds(short: int = len(SHORT_SEEDS)) -> list[Any]:
    """The seeds of one job's fault runs: OPS_FAULT_SEEDS, else the full form's, else the
    first ``short`` of the short form's (a slow job takes fewer)."""
    given = os.environ.get("OPS_FAULT_SEEDS", "").strip()
    if given:
        return [int(s) for s in given.replace(",", " ").split()]
    if not FULL:
        return list(SHORT_SEEDS[:short])
    return [s if s in SHORT_SEEDS[:short] else pytest.param(s, marks=pytest.mark.slow) for s in FULL_SEEDS]


def fault_profile(seed: int, operation: str = "*") -> dict[str, Any]:
    """The body of POST /_sandbox/faults for one seed."""
    return {"seed": seed, "rules": [{
        "operation": operation, "rate_429": RATE_429, "retry_after": RETRY_AFTER,
        "rate_500": RATE_500, "rate_drop": RATE_DROP, "spike_rate": SPIKE_RATE, "spike_ms": SPIKE_MS}]}


@pytest.fixture(scope="module")
def own_azurite(tmp_path_factory):
    """An Azurite of the module's own, to stop mid-run without disturbing other tests."""
    from sandbox.stack import Azurite
    azurite = Azurite(tmp_path_factory.mktemp("azurite")).start()
    yield azurite
    azurite.stop()


# -- the request log ------------------------------------------------------------------

def is_write(entry: dict[str, Any]) -> bool:
    """A request that changes something, whatever its answer."""
    if entry["operation"] == "sandbox/control":
        return False
    method = entry["method"]
    if method in ("PUT", "PATCH", "DELETE"):
        return True
    return method == "POST" and entry["path"].rstrip("/").rsplit("/", 1)[-1] in WRITE_POSTS


def effective(entry: dict[str, Any]) -> bool:
    """Answered 2xx: the sandbox applied it (a fault answers before the handler runs)."""
    return 200 <= int(entry["status"]) < 300


def under(path: str, resource_id: str) -> bool:
    path, rid = path.lower().rstrip("/"), resource_id.lower().rstrip("/")
    return path == rid or path.startswith(rid + "/")


# What a report says when another writer changed a blob or state between read and write.
FALSE_BLAME = ("changed since it was read", "was written by another run")


def after_first_write(log: list[dict[str, Any]]) -> bool:
    """A trigger: the run's first write took effect."""
    return any(is_write(e) and effective(e) for e in log)


def fault_counts(log: list[dict[str, Any]]) -> dict[str, int]:
    out = {"requests": len(log), "429": 0, "500": 0, "dropped": 0}
    for e in log:
        key = {429: "429", 500: "500", 0: "dropped"}.get(int(e["status"]))
        if key:
            out[key] += 1
    return out


# -- secrets --------------------------------------------------------------------------

def secret_values(snapshot: dict[str, Any]) -> set[str]:
    """Every secret value a world holds: Key Vault versions, keys, passwords."""
    values: set[str] = set()
    for secret in (snapshot.get("keyvault") or {}).values():
        values |= {v.get("value") or "" for v in secret.get("versions") or []}
    for secret in snapshot.get("secrets") or []:
        values.add(secret.get("value") or "")
        values |= {v.get("value") or "" for v in secret.get("versions") or []}
    for resource in snapshot.get("resources") or []:
        private = resource.get("_sandbox") or {}
        values |= {str(v) for v in (private.get("keys") or {}).values()}
        values.add(private.get("administratorLoginPassword") or "")
        values |= {r.get("password") or "" for r in private.get("roles") or []}
    from jobs.secret_rotation.protocol import PLACEHOLDER  # not a secret: "the resource generates it"
    return {v for v in values if v and len(v) >= 6 and v != PLACEHOLDER}


def key_vault_versions(snapshot: dict[str, Any]) -> dict[str, dict[str, str]]:
    """secret name -> {version id: value}, as the sandbox's vault holds them (built on
    first use after a reset: empty until a job touched the vault)."""
    out = {}
    for name, secret in (snapshot.get("keyvault") or {}).items():
        out[name] = {v["version"]: v.get("value") or "" for v in secret.get("versions") or []}
    return out


# -- logs -----------------------------------------------------------------------------

@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """A raw handler on the root logger (no redacting filter), DEBUG on the app's and the
    SDKs' loggers: whatever the app tries to log is in the stream."""
    service.environment()  # installs the redacting filter on the handlers present now (not ours)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(threadName)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in DEBUG_LOGGERS}
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# -- storage --------------------------------------------------------------------------

def container_blobs(container) -> dict[str, bytes]:
    """name -> bytes of every blob in a container ({} when it does not exist)."""
    if not container.exists():
        return {}
    return {b.name: container.download_blob(b.name).readall() for b in container.list_blobs()
            if not b.name.startswith("locks/")}  # leases, no content


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# -- findings -------------------------------------------------------------------------

@dataclass
class Findings:
    """What broke in one scenario run; the test fails once, naming all of it."""

    job: str
    label: str  # "seed 3", "Azurite stopped after the first write"...
    items: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # context printed with a failure

    def add(self, what: str) -> None:
        self.items.append(what)

    def note(self, what: str) -> None:
        self.notes.append(what)

    def check(self, reproduce: str = "") -> None:
        for n in self.notes:  # shown with -rP or -s
            print(f"{self.job}, {self.label}: {n}")
        if not self.items:
            return
        lines = [f"{self.job}, {self.label}: {len(self.items)} problem(s)"]
        lines += [f"  - {item}" for item in self.items[:40]]
        if len(self.items) > 40:
            lines.append(f"  ... and {len(self.items) - 40} more")
        lines += [f"  ({n})" for n in self.notes]
        if reproduce:
            lines.append(f"  reproduce: {reproduce}")
        pytest.fail("\n".join(lines), pytrace=False)


def diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Readable differences between two JSON-like values (expected: world B's)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            where = f"{path}/{key}"
            if key not in actual:
                out.append(f"{where}: missing (expected {short(expected[key])})")
            elif key not in expected:
                out.append(f"{where}: unexpected {short(actual[key])}")
            else:
                out += diff(expected[key], actual[key], where)
        return out
    if expected != actual:
        return [f"{path or '/'}: expected {short(expected)}, got {short(actual)}"]
    return []


def short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


# -- scenarios ------------------------------------------------------------------------

class Scenario:
    """One job's fault scenario: its world, settings, runs and checks. Subclasses (one
    per job, in the test modules) fill in the job-specific parts."""

    job: str = ""
    trigger = "timer"
    expected_failures: tuple[str, ...] = ()  # action kinds failed in every run (a malformed tag)

    def __init__(self, stack, monkeypatch):
        self.stack, self.monkeypatch = stack, monkeypatch
        self.receiver = None  # a WebhookReceiver when the scenario notifies
        self.azurite = None  # an Azurite of the test's own (sandbox.stack.Azurite), else the session's
        self.runs_container = ""
        self.reports: list[dict[str, Any]] = []  # every run of the current world, in order

    # --- set-up, per world -------------------------------------------------------------
    def fresh(self) -> None:
        """A fresh world: seeded data, settings, new containers, no faults, empty log."""
        self.reports = []
        self.runs_container = f"faults-{uuid.uuid4().hex[:12]}"
        self.setenv(OPS_RUNS_CONTAINER=self.runs_container, OPS_LOCK_SECONDS=LOCK_SECONDS)
        if self.azurite is not None:  # the test's own Azurite, which it stops mid-run
            self.setenv(AzureWebJobsStorage=self.azurite.connection_string)
        self.seed_world()
        self.stack.sandbox.faults.configure({})
        self.stack.sandbox.clear_log()
        if self.receiver is not None:
            self.receiver.received.clear()
            self.receiver.answers.clear()
        service.reset()

    def seed_world(self) -> None:
        raise NotImplementedError

    def setenv(self, **values: str) -> None:
        for key, value in values.items():
            self.monkeypatch.setenv(key, str(value))
        service.reset()

    # --- runs ----------------------------------------------------------------------------
    def run(self, now: datetime | None = None, *, dry_run: bool = False, **options: str) -> dict[str, Any]:
        report = service.run(self.job, trigger=self.trigger, dry_run=dry_run, now=now,
                             options=options or None)
        self.reports.append(report)
        return report

    def reported_errors(self) -> bool:
        """Whether a run of this world reported run errors (e.g. its job state not saved):
        the next run may then repeat what the state would have remembered (an alert)."""
        return any(r["errors"] for r in self.reports)

    def history(self) -> None:
        """Clean runs before the faulty one (stored records, state, blobs to keep)."""

    def target_run(self) -> dict[str, Any]:
        """The run that sees the faults (world A) or not (world B)."""
        raise NotImplementedError

    def converge_run(self) -> dict[str, Any]:
        """The clean run after the faulty one (world A)."""
        return self.target_run()

    def later_runs(self) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        """Runs both worlds take after that, compared again after each: (label, run)."""
        return []

    # --- what is compared and checked ---------------------------------------------------
    def end_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def evidence(self, action: dict[str, Any], seen: "Seen") -> str | None:
        """None when the world shows that a succeeded action happened, else what is missing."""
        return f"no evidence rule for a succeeded {action['kind']}"

    def owner_of(self, entry: dict[str, Any], report: dict[str, Any]) -> bool:
        """Whether an effective write belongs to an action of the report."""
        return any(under(entry["path"], a["target"]) for a in report["actions"]
                   if a["target"].startswith("/") and a["status"] in ("succeeded", "failed"))

    def production_ids(self) -> set[str]:
        return set()

    def allowed_write(self, entry: dict[str, Any]) -> bool:
        return False

    def kept(self) -> dict[str, Any]:
        """What must survive the faulty run, job-specific part (see Stored)."""
        return {}

    def check_kept(self, before: dict[str, Any], f: "Findings", stage: str) -> None:
        """Check that what ``kept`` returned before the faulty run is still there."""

    def check_saved(self, report: dict[str, Any], f: "Findings", stage: str) -> None:
        """A run without errors saved its job state (what it remembers is what it did)."""

    def check_after(self, f: "Findings") -> None:
        """Job-specific checks once world A converged (e.g. no alert sent twice)."""

    def stored_texts(self) -> dict[str, str]:
        """Job-specific stored data to scan for leaks: where -> text."""
        return {}

    def reference_extra(self) -> dict[str, Any]:
        """What world B also keeps for the checks of world A (e.g. blob bytes)."""
        return {}

    def extra_secrets(self) -> set[str]:
        return {self.stack.sandbox.token}

    def storage(self):
        return service.environment().clients.blob_service

    def runs_blobs(self) -> dict[str, bytes]:
        return container_blobs(self.storage().get_container_client(self.runs_container))


@dataclass
class Seen:
    """What a check of one run may look at."""

    report: dict[str, Any]
    log: list[dict[str, Any]]  # the run's requests
    world: dict[str, Any]  # /_sandbox/state after the run
    reference: "Reference | None" = None


@dataclass
class Reference:
    """World B: the end states of a run that never saw a fault."""

    states: list[dict[str, Any]]  # after the target run, then after each later run
    extra: dict[str, Any] = field(default_factory=dict)


_REFERENCES: dict[tuple, Reference] = {}


def reference(scenario: Scenario, key: tuple = ()) -> Reference:
    """World B for this scenario (cached per job and ``key``, e.g. the hour it covers)."""
    cache_key = (scenario.job, *key)
    if cache_key not in _REFERENCES:
        scenario.fresh()
        scenario.history()
        report = scenario.target_run()
        failed = [a for a in report["actions"] if a["status"] == "failed" and not _expected_failure(scenario, a)]
        assert not failed and not report["errors"], \
            f"{scenario.job}: the reference run (no fault) failed: {short(failed, 2000)} {report['errors']}"
        states, extra = [scenario.end_state()], scenario.reference_extra()
        for _, later in scenario.later_runs():
            later()
            states.append(scenario.end_state())
        _REFERENCES[cache_key] = Reference(states, extra)
    return _REFERENCES[cache_key]


def _expected_failure(scenario: Scenario, action: dict[str, Any]) -> bool:
    return action["kind"] in scenario.expected_failures


# -- the checks -------------------------------------------------------------------------

def check_honest(scenario: Scenario, seen: Seen, f: Findings, stage: str) -> None:
    report = seen.report
    failed = [a for a in report["actions"] if a["status"] == "failed"]
    expected_status = "failed" if failed or report["errors"] else "succeeded"
    if report["status"] != expected_status:
        f.add(f"{stage}: report status {report['status']} with {len(failed)} failed action(s) and "
              f"errors {report['errors']}")
    # No run of the suite ever has company: blaming another writer is never true here.
    for text in report["errors"] + [a["error"] or "" for a in report["actions"]]:
        if any(blame in text for blame in FALSE_BLAME):
            f.add(f"{stage}: the report blames another writer, but no other run was going on: {text}")
    for action in report["actions"]:
        if action["status"] != "succeeded":
            continue
        problem = scenario.evidence(action, seen)
        if problem:
            f.add(f"{stage}: {action['kind']} {action['target']} reported succeeded, but {problem}")
    for entry in seen.log:
        if is_write(entry) and effective(entry) and not scenario.owner_of(entry, report):
            f.add(f"{stage}: {entry['method']} {entry['path']} ({entry['operation']}) changed the world "
                  f"but no action of the report says so")
    scenario.check_saved(report, f, stage)
    stored_error = [e for e in report["errors"] if "could not store the run report" in e]
    if not stored_error:
        store = service.environment().store
        latest = store.latest(scenario.job)
        if latest is None or latest.get("run_id") != report["run_id"]:
            f.add(f"{stage}: the report is not the latest stored run record "
                  f"(stored: {latest and latest.get('run_id')}, returned: {report['run_id']})")
        elif latest != report:
            f.add(f"{stage}: the stored run record differs from the report returned: "
                  + "; ".join(diff(report, latest)[:5]))
        path = store.report_path(report)
        if store.read(path) is None:
            f.add(f"{stage}: run record {path} was not stored")


def check_writes(scenario: Scenario, log: list[dict[str, Any]], f: Findings, stage: str) -> None:
    production = scenario.production_ids()
    for entry in log:
        if not is_write(entry):
            continue
        hit = [p for p in production if under(entry["path"], p)]
        if hit:
            f.add(f"{stage}: {entry['method']} {entry['path']} (HTTP {entry['status']}) writes production "
                  f"resource {hit[0]}")
        elif not scenario.allowed_write(entry):
            f.add(f"{stage}: {entry['method']} {entry['path']} ({entry['operation']}, HTTP {entry['status']}) "
                  f"is not a write {scenario.job} may make")


def check_leaks(values: set[str], texts: dict[str, str], f: Findings) -> None:
    for where, text in texts.items():
        leaked = [v for v in values if v in text]
        if leaked:
            f.add(f"secret value(s) leaked into {where}: {len(leaked)} value(s) "
                  f"({', '.join(str(len(v)) for v in leaked[:5])} characters long)")


@dataclass
class Stored:
    """What is stored before the faulty run, to check nothing of it is lost."""

    runs: dict[str, bytes]
    vault: dict[str, dict[str, str]]
    extra: dict[str, Any]

    @classmethod
    def capture(cls, scenario: Scenario) -> "Stored":
        return cls(scenario.runs_blobs(), key_vault_versions(scenario.stack.world.snapshot()),
                   scenario.kept())


def check_nothing_lost(scenario: Scenario, before: Stored, f: Findings, stage: str) -> None:
    runs = scenario.runs_blobs()
    for name, data in before.runs.items():
        if name.startswith("locks/"):
            continue
        if name not in runs:
            f.add(f"{stage}: stored {name} is gone")
        elif name.startswith("runs/") and runs[name] != data:
            f.add(f"{stage}: run record {name} was rewritten")
    vault = key_vault_versions(scenario.stack.world.snapshot())
    for name, versions in before.vault.items():
        now = vault.get(name, {})
        for version, value in versions.items():
            if version not in now:
                f.add(f"{stage}: Key Vault version {name}/{version} is gone")
            elif now[version] != value:
                f.add(f"{stage}: Key Vault version {name}/{version} changed its value")
    scenario.check_kept(before.extra, f, stage)


# -- one scenario end to end -------------------------------------------------------------

def run_with_faults(scenario: Scenario, seed: int, ref: Reference) -> Findings:
    """World A with the fault profile on the target run; every check."""
    sandbox = scenario.stack.sandbox

    def faulty() -> dict[str, Any]:
        sandbox.faults.configure(fault_profile(seed))
        try:
            return scenario.target_run()
        finally:
            sandbox.faults.configure({})

    return _run_and_check(scenario, ref, Findings(scenario.job, f"seed {seed}"), "faulty run", faulty)


def run_with_azurite_stopped(scenario: Scenario, ref: Reference, *, when: str,
                             trigger: Callable[[list[dict[str, Any]]], bool], outage: float | None,
                             slow: dict[str, int] | None = None) -> Findings:
    """World A with the scenario's own Azurite stopped during the target run, once
    ``trigger(request log of the run)`` holds; restarted ``outage`` seconds later while the
    run goes on, or (None) once the run has ended. ``slow``: sandbox latency rules
    (operation glob -> ms) that make room for the stop (e.g. between observe and apply)."""
    azurite = scenario.azurite
    assert azurite is not None, "the scenario needs an Azurite of its own"
    sandbox = scenario.stack.sandbox
    label = f"Azurite stopped {when}, " + (f"back {outage:g} s later" if outage is not None
                                            else "back after the run")
    f = Findings(scenario.job, label)
    outage_state = _Outage(azurite)

    def stopped_mid_run() -> dict[str, Any]:
        if slow:
            sandbox.faults.configure({"rules": [{"operation": op, "latency_ms": ms} for op, ms in slow.items()]})
        watcher = Watcher(sandbox, trigger, lambda: outage_state.stop(outage), start_at=len(sandbox.request_log()))
        watcher.start()
        try:
            report = scenario.target_run()
        finally:
            outage_state.ended_at = time.monotonic()
            watcher.cancel()
            watcher.join(timeout=(outage or 0) + 60)
            sandbox.faults.configure({})
            outage_state.restart()
        if watcher.error is not None:
            f.add(f"stopping Azurite failed: {watcher.error!r}")
        if outage_state.stopped_at is None:
            f.add(f"Azurite was never stopped: the run ended before the trigger ({when}) fired")
        else:
            f.note(f"Azurite down {outage_state.downtime():.1f} s; the run ended "
                   f"{outage_state.run_end_after_stop():.1f} s after the stop")
            check_locks_free(scenario, outage_state.stopped_at, f)
        return report

    return _run_and_check(scenario, ref, f, "run with Azurite stopped", stopped_mid_run)


class _Outage:
    """Stops and restarts one Azurite (same ports, same data directory), from any thread."""

    def __init__(self, azurite):
        self.azurite = azurite
        self.lock = threading.Lock()
        self.down = False
        self.stopped_at: float | None = None
        self.back_at: float | None = None
        self.ended_at: float | None = None  # when the run ended

    def stop(self, outage: float | None) -> None:
        with self.lock:
            self.azurite.stop()
            self.down, self.stopped_at = True, time.monotonic()
        if outage is not None:
            time.sleep(outage)
            self.restart()

    def restart(self) -> None:
        with self.lock:
            if self.down:
                self.azurite.start()
                self.down, self.back_at = False, time.monotonic()

    def downtime(self) -> float:
        return (self.back_at or time.monotonic()) - (self.stopped_at or time.monotonic())

    def run_end_after_stop(self) -> float:
        return (self.ended_at or time.monotonic()) - (self.stopped_at or time.monotonic())


def check_locks_free(scenario: Scenario, stopped_at: float, f: Findings) -> None:
    """A lock whose release failed (Azurite was down) frees itself: the lease lapses
    LOCK_SECONDS after its last renewal, at most LOCK_SECONDS after storage went away.
    Until then a run is refused with AlreadyRunning (never let in, never hung)."""
    from jobs.store import AlreadyRunning
    container = scenario.storage().get_container_client(scenario.runs_container)

    def leased() -> list[str]:
        return sorted(b.name for b in container.list_blobs(name_starts_with="locks/")
                      if getattr(b.lease, "state", None) == "leased")

    held = leased()
    if f"locks/{scenario.job}" in held:
        f.note(f"the run lock was still leased when the run ended: {held}")
        before = len(scenario.stack.sandbox.request_log())
        try:
            report = scenario.converge_run()
        except AlreadyRunning as exc:
            if "frees itself within" not in str(exc):
                f.add(f"a run refused while the lock is leased does not say when it frees: {exc}")
        else:
            f.add(f"a run was let in while locks/{scenario.job} was leased: {report['status']}")
        if [e for e in scenario.stack.sandbox.request_log()[before:] if is_write(e)]:
            f.add("a refused run wrote to the sandbox")
    deadline = stopped_at + LOCK_SECONDS + 10  # + Azurite's restart and the clock's slack
    while held and time.monotonic() < deadline:
        time.sleep(0.5)
        held = leased()
    if held:
        f.add(f"lock(s) {held} still leased {time.monotonic() - stopped_at:.0f} s after storage went away "
              f"(OPS_LOCK_SECONDS={LOCK_SECONDS})")


def _run_and_check(scenario: Scenario, ref: Reference, f: Findings, stage: str,
                   target: Callable[[], dict[str, Any]]) -> Findings:
    """Fresh world A, its history, ``target`` (the disturbed run), a clean run, the later
    runs; every check on the way."""
    scenario.fresh()
    scenario.history()
    before = Stored.capture(scenario)
    values = secret_values(scenario.stack.world.snapshot()) | scenario.extra_secrets()
    sandbox = scenario.stack.sandbox
    texts: dict[str, str] = {}
    all_log: list[dict[str, Any]] = []
    with captured_logs() as logs:
        start = len(sandbox.request_log())
        began = time.monotonic()
        disturbed = target()
        took = time.monotonic() - began
        log = sandbox.request_log()[start:]
        all_log += log
        counts = fault_counts(log)
        f.note(f"{stage}: {took:.1f} s, {counts['requests']} requests, {counts['429']} x 429, "
               f"{counts['500']} x 500, {counts['dropped']} dropped; report {disturbed['status']}: "
               f"{disturbed['summary']}, errors {disturbed['errors']}")
        texts[f"the report of the {stage}"] = json.dumps(disturbed)
        check_honest(scenario, Seen(disturbed, log, scenario.stack.world.snapshot(), ref), f, stage)
        check_nothing_lost(scenario, before, f, f"after the {stage}")
        values |= secret_values(scenario.stack.world.snapshot())

        start = len(sandbox.request_log())
        clean = scenario.converge_run()
        log = sandbox.request_log()[start:]
        all_log += log
        texts["the clean run's report"] = json.dumps(clean)
        check_honest(scenario, Seen(clean, log, scenario.stack.world.snapshot(), ref), f, "clean run")
        failed = [f"{a['kind']} {a['target']}: {a['error']}" for a in clean["actions"]
                  if a["status"] == "failed" and not _expected_failure(scenario, a)]
        if failed or clean["errors"]:
            f.add(f"the clean run after the {stage} did not succeed: {failed} {clean['errors']}")
        check_nothing_lost(scenario, before, f, "after the clean run")
        for problem in diff(ref.states[0], scenario.end_state()):
            f.add(f"no convergence after the {stage} and a clean run: {problem}")
        for i, (label, later) in enumerate(scenario.later_runs(), start=1):
            start = len(sandbox.request_log())
            report = later()
            all_log += sandbox.request_log()[start:]
            texts[f"the report of {label}"] = json.dumps(report)
            for problem in diff(ref.states[i], scenario.end_state()):
                f.add(f"no convergence after {label}: {problem}")
        values |= secret_values(scenario.stack.world.snapshot())
        scenario.check_after(f)
    check_writes(scenario, all_log, f, "runs")
    texts["the logs"] = logs.getvalue()
    for name, data in scenario.runs_blobs().items():
        texts[f"stored {name}"] = data.decode("utf-8", "replace")
    texts.update(scenario.stored_texts())
    if scenario.receiver is not None:
        texts["the notifications"] = json.dumps(scenario.receiver.received)
    check_leaks(values, texts, f)
    return f


def resource(world: dict[str, Any], resource_id: str) -> dict[str, Any] | None:
    """A resource of a /_sandbox/state snapshot by id (case-insensitive, as ARM's)."""
    rid = resource_id.lower()
    return next((r for r in world.get("resources") or [] if r["id"].lower() == rid), None)


def answered(log: list[dict[str, Any]], method: str, path: str) -> bool:
    """Whether the run's log holds ``method path`` answered 2xx."""
    path = path.lower().rstrip("/")
    return any(e["method"] == method and e["path"].lower().rstrip("/") == path and effective(e)
               for e in log)


def production_name(name: str) -> bool:
    """The built-in production name pattern of dev-hours (README: Deny)."""
    return bool(re.search(r"(^|[-_.])(prod|production|prd)\d*($|[-_.])", name, re.IGNORECASE))


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def lossy_transport(method: str, url_part: str, times: int = 1):
    """An azure-core transport that sends ``method`` requests to URLs containing ``url_part``
    and then loses their answers (``times`` times): the write took effect, the client sees a
    dropped connection and its SDK retries, as when storage goes away mid-request."""
    from azure.core.exceptions import ServiceResponseError
    from azure.core.pipeline.transport import RequestsTransport

    class LostAnswers(RequestsTransport):
        lost = 0

        def send(self, request, **kwargs):
            response = super().send(request, **kwargs)
            if request.method == method and url_part in request.url and self.lost < times:
                self.lost += 1
                raise ServiceResponseError("the connection dropped before the answer (injected)")
            return response

    return LostAnswers()


class Watcher(threading.Thread):
    """Calls ``action`` once ``predicate(request log)`` holds (polling), in the background."""

    def __init__(self, sandbox, predicate: Callable[[list[dict[str, Any]]], bool],
                 action: Callable[[], None], start_at: int = 0):
        super().__init__(name="fault-watcher", daemon=True)
        self.sandbox, self.predicate, self.action = sandbox, predicate, action
        self.start_at = start_at
        self.fired_at: float | None = None
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                if self.predicate(self.sandbox.request_log()[self.start_at:]):
                    self.fired_at = time.monotonic()
                    self.action()
                    return
                time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def cancel(self) -> None:
        self.stop_event.set()
