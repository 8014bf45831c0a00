"""The crash harness: runs a job as a real process (the CLI, ``-v run NAME --apply --now ...
--json``, its clock pinned at ``now`` by tests/cli_at.py) against the session's sandbox,
watches every write it makes and SIGKILLs it at a chosen point; then checks what any
crashed run must leave behind.

What it watches, in one ordered list of writes (``Watch.writes()``):

- the sandbox's request log (Resource Manager, Key Vault; ``sandbox_write``);
- ``StorageProxy``, a loopback HTTP proxy in front of Azurite that the job's
  ``AzureWebJobsStorage`` points at: run records, locks, job state, SLA snapshots
  (lease renewals and releases are not counted: they come on a clock, not in order);
- a ``WebhookReceiver``'s messages (notifications), when a test gives one.

Each write is delayed by 50-150 ms *before* it takes effect and is logged once it has, before
its answer goes back (as the sandbox does), so a kill as soon as the k-th write shows lands
after it and before the (k+1)-th: the k-th write done, its answer possibly never read. A
request in flight at the kill still lands, as it would in Azure; ``run_process`` waits for
those before it returns.

Kill points are drawn by a seeded RNG (``OPS_CRASH_SEED``, default 8): the short form (the
default, what ``make test`` runs) takes a few per scenario; ``OPS_CRASH_RUNS=full`` takes
every one, marked ``slow``.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK_SECONDS = 15  # OPS_LOCK_SECONDS of the killed runs: Azure's shortest lease
FULL = os.environ.get("OPS_CRASH_RUNS", "").lower() == "full"
SEED = int(os.environ.get("OPS_CRASH_SEED", "8"))
SHORT_POINTS = 3  # kill points per scenario in the short form

WRITE_LATENCY = (0.05, 0.15)  # seconds, before a write takes effect
# Sandbox operations that change something; the first matching fault rule applies.
SANDBOX_WRITES = ("*/write", "*/delete", "*/start", "*/stop", "*/restart", "*/regenerateKey/action",
                  "*/refresh*", "KeyVault/secrets/set", "KeyVault/secrets/update",
                  "KeyVault/deletedsecrets/*")
# POSTs that only read.
READ_POSTS = ("Microsoft.CostManagement/query/action", "Microsoft.CostManagement/forecast/action",
              "Microsoft.Insights/metrics/getBatch", "Microsoft.OperationalInsights/workspaces/query/read",
              "Microsoft.Storage/storageAccounts/listKeys/action", "Microsoft.Cache/redis/listKeys/action")


def slow_writes(stack, seed: int = SEED) -> None:
    """50-150 ms on every sandbox write (50, or 150 for half of them, seeded)."""
    low, high = WRITE_LATENCY
    stack.sandbox.faults.configure({"seed": seed, "rules": [
        {"operation": op, "latency_ms": int(low * 1000), "spike_rate": 0.5,
         "spike_ms": int((high - low) * 1000)} for op in SANDBOX_WRITES]})


def sandbox_write(entry: dict[str, Any]) -> bool:
    if entry["status"] == 401 or entry["operation"] in ("unrouted", "sandbox/control"):
        return False  # Key Vault's challenge round trip, the tests' own control calls
    if entry["method"] in ("PUT", "PATCH", "DELETE"):
        return True
    return entry["method"] == "POST" and entry["operation"] not in READ_POSTS


@dataclass(frozen=True)
class Write:
    source: str  # "arm" (the sandbox), "storage" (Azurite), "webhook"
    method: str
    target: str  # a path (sandbox), a blob name (storage) or a message title (webhook)
    operation: str  # the sandbox's operation name, a storage lease action, or "notify"
    status: int
    at: float
    container: str = ""  # storage: the blob container

    def __str__(self) -> str:
        return f"{self.source} {self.method} {self.target} -> {self.status}"


# -- a logging, slowing proxy in front of Azurite ----------------------------------------------

class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a killed client resets its connections
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class StorageProxy:
    """Forwards every request to Azurite unchanged (Shared Key signs the path, not the host),
    logs it, and delays writes by 50-150 ms before they reach Azurite."""

    def __init__(self, upstream_port: int, seed: int = SEED):
        self.upstream_port = upstream_port
        self.log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                split = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
                lease = (self.headers.get("x-ms-lease-action") or "").lower()
                write = self.command in ("PUT", "DELETE", "POST") and lease not in ("renew", "release")
                if write or lease == "release":  # a kill after the last write lands before the release
                    time.sleep(proxy._delay())
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body,
                                 headers={k: v for k, v in self.headers.items()})
                    answer = conn.getresponse()
                    data = answer.read()
                    headers = answer.getheaders()
                    status = answer.status
                finally:
                    conn.close()
                proxy._record({"method": self.command, "path": split.path, "query": query,
                               "lease": lease, "status": status, "write": write, "at": time.time()})
                self.send_response(status)
                for key, value in headers:
                    if key.lower() in ("transfer-encoding", "connection") or (
                            key.lower() == "content-length" and self.command != "HEAD"):
                        continue
                    self.send_header(key, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD" and data:
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="storage-proxy", daemon=True).start()

    def _delay(self) -> float:
        with self._lock:
            return self._rng.uniform(*WRITE_LATENCY)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.log.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.log)

    def clear(self) -> None:
        with self._lock:
            self.log.clear()

    def connection_string(self, direct: str) -> str:
        """The same account through the proxy."""
        return re.sub(r"BlobEndpoint=http://127\.0\.0\.1:\d+/",
                      f"BlobEndpoint=http://127.0.0.1:{self.port}/", direct)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- what a run wrote --------------------------------------------------------------------------

def slow_receiver():
    """A webhook receiver that records a message on receipt and answers 50-150 ms later:
    a kill in between leaves a notification sent whose answer the job never read."""
    from sandbox.webhook import WebhookReceiver
    delays = random.Random(SEED)
    times: list[float] = []

    def on_message(message: dict[str, Any]) -> None:
        times.append(time.time())
        time.sleep(delays.uniform(*WRITE_LATENCY))

    receiver = WebhookReceiver(on_message=on_message)
    receiver.times = times
    return receiver


def delivered(receiver, since: int = 0) -> Counter:
    """Titles of the complete messages the receiver got since message number ``since``."""
    return Counter(m["title"] for m in receiver.received[since:] if isinstance(m, dict) and "title" in m)


class Watch:
    """Every write since ``mark()``: the sandbox's, Azurite's (through the proxy), the
    webhook receiver's messages (a ``slow_receiver()``)."""

    def __init__(self, stack, proxy: StorageProxy, receiver=None):
        self.stack, self.proxy, self.receiver = stack, proxy, receiver
        self.mark()

    def mark(self) -> None:
        self._arm = len(self.stack.sandbox.request_log())
        self._storage = len(self.proxy.entries())
        self._webhook = len(self.receiver.received) if self.receiver is not None else 0

    def sandbox_entries(self) -> list[dict[str, Any]]:
        return self.stack.sandbox.request_log()[self._arm:]

    def storage_entries(self) -> list[dict[str, Any]]:
        return self.proxy.entries()[self._storage:]

    def messages(self) -> list[tuple[dict[str, Any], float]]:
        """(message, when received) since mark(); a message whose sender died before its body
        was complete is not one."""
        if self.receiver is None:
            return []
        pairs = zip(self.receiver.received[self._webhook:], self.receiver.times[self._webhook:])
        return [(m, at) for m, at in pairs if isinstance(m, dict) and "title" in m]

    def count(self) -> int:
        """The number of writes so far (cheap enough to poll every few ms)."""
        n = sum(1 for e in self.stack.sandbox.request_log()[self._arm:] if sandbox_write(e))
        n += sum(1 for e in self.proxy.entries()[self._storage:] if e["write"])
        return n + len(self.messages())

    def leases(self) -> list[tuple[str, str, int]]:
        """(blob, lease action, status) of every lease request since mark()."""
        return [(storage_target({**e, "lease": ""}), e["lease"], e["status"])
                for e in self.storage_entries() if e["lease"]]

    def writes(self) -> list[Write]:
        out = [Write("arm", e["method"], e["path"], e["operation"], e["status"], e["at"])
               for e in self.sandbox_entries() if sandbox_write(e)]
        out += [Write("storage", e["method"], storage_target(e), e.get("lease") or "", e["status"], e["at"],
                      container=(e["path"].lstrip("/").split("/") + ["", ""])[1])
                for e in self.storage_entries() if e["write"]]
        out += [Write("webhook", "POST", m["title"], "notify", 200, at) for m, at in self.messages()]
        return sorted(out, key=lambda w: w.at)


def storage_target(entry: dict[str, Any]) -> str:
    """'/devstoreaccount1/runs-x/state/dev-hours/state.json' -> 'state/dev-hours/state.json';
    a container: 'runs-x/'; a lease: 'locks/dev-hours (lease acquire)'."""
    parts = entry["path"].lstrip("/").split("/", 2)
    name = parts[2] if len(parts) > 2 else (parts[1] + "/" if len(parts) > 1 else "")
    if entry.get("lease"):
        name += f" (lease {entry['lease']})"
    return name


# -- running and killing -----------------------------------------------------------------------

@dataclass
class Run:
    """One process run of a job: how it ended and what it wrote."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    writes: list[Write] = field(default_factory=list)
    killed: bool = False
    kill_note: str = ""  # what the trigger saw when it fired
    killed_at: float = 0.0  # time.monotonic() of the SIGKILL
    leases: list[tuple[str, str, int]] = field(default_factory=list)  # (blob, action, status)

    def holds(self, blob: str) -> bool:
        """Whether the run took this lease and did not release it."""
        actions = {(action, status) for name, action, status in self.leases if name == blob}
        return ("acquire", 201) in actions and ("release", 200) not in actions

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def describe(self) -> str:
        lines = [f"{' '.join(self.args)}: exit {self.returncode} after {self.seconds:.2f}s"
                 + (f", KILLED ({self.kill_note})" if self.killed else "")]
        lines += [f"  {i + 1:>3}. {w}" for i, w in enumerate(self.writes)]
        if self.stderr.strip() and not self.killed:
            lines.append("  stderr: " + self.stderr.strip().splitlines()[-1][:300])
        return "\n".join(lines)


def cli_args(job: str, now: str, *extra: str, verbose: bool = True) -> list[str]:
    """A real run at ``now``, through the CLI with its clock pinned there (tests/cli_at.py)."""
    return ["-m", "tests.cli_at", now, *(["-v"] if verbose else []), "run", job, "--apply", "--now", now,
            "--json", *extra]


def run_process(args: list[str], env: dict[str, str], watch: Watch, *,
                trigger: Callable[[], str | None] | None = None, timeout: float = 240,
                settle: float = 0.4) -> Run:
    """Run ``python args``; when ``trigger()`` returns a note, SIGKILL the process at once.
    Output goes to files (a full pipe would stall the process and shift every kill point)."""
    watch.mark()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=err)
        note, killed_at = "", 0.0
        try:
            while proc.poll() is None:
                if time.monotonic() - started > timeout:
                    raise AssertionError(f"{' '.join(args)} still running after {timeout}s")
                if trigger is not None:
                    note = trigger() or ""
                    if note:
                        os.kill(proc.pid, signal.SIGKILL)
                        killed_at = time.monotonic()
                        break
                time.sleep(0.002)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        seconds = time.monotonic() - started
        if note:
            time.sleep(settle)  # requests the process sent before it died still land
        out.seek(0)
        err.seek(0)
        return Run(args, proc.returncode, out.read(), err.read(), seconds, watch.writes(),
                   killed=bool(note), kill_note=note, killed_at=killed_at, leases=watch.leases())


def after_writes(watch: Watch, k: int) -> Callable[[], str | None]:
    """A trigger: fires once the run has made k writes."""
    def trigger() -> str | None:
        n = watch.count()
        return f"after write {k} (seen {n})" if n >= k else None
    return trigger


# -- kill points -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """The i-th kill point of a scenario: in the short form its k is drawn (seeded, per
    scenario) once the scenario's never-crashed run says how many writes there are; in the
    full form k is i + 1."""

    index: int
    full: bool

    @property
    def first(self) -> bool:
        """The point that waits for the killed run's lease to lapse by itself; the others
        break it (what an operator does once sure nothing runs), to keep the suite fast."""
        return self.index == 0

    def k(self, scenario: str, writes: int, n: int = SHORT_POINTS) -> int:
        if self.full:
            if self.index + 1 > writes:
                pytest.skip(f"{scenario} makes {writes} writes")
            return self.index + 1
        picks = draw(scenario, writes, n)
        if self.index >= len(picks):
            pytest.skip(f"{scenario} makes {writes} writes")
        return picks[self.index]


def draw(scenario: str, writes: int, n: int = SHORT_POINTS) -> list[int]:
    """n distinct kill points in 1..writes, seeded per scenario."""
    rng = random.Random(f"{SEED}:{scenario}")
    return sorted(rng.sample(range(1, writes + 1), min(n, writes)))


def points(full_count: int, short: int = SHORT_POINTS) -> list[Any]:
    """pytest params: ``short`` kill points in the short form; 1..full_count (an upper bound
    on the scenario's writes, checked by the test) in the full form, marked slow."""
    if FULL:
        return [pytest.param(Point(i, True), id=f"write-{i + 1}", marks=pytest.mark.slow)
                for i in range(full_count)]
    return [pytest.param(Point(i, False), id=f"kill-{i + 1}") for i in range(short)]


# -- the lock ------------------------------------------------------------------------------------

def leased_locks(container) -> list[str]:
    return sorted(b.name for b in container.list_blobs(name_starts_with="locks/")
                  if b.lease and b.lease.state == "leased")


def break_locks(container) -> list[str]:
    from azure.storage.blob import BlobLeaseClient
    held = leased_locks(container)
    for name in held:
        BlobLeaseClient(container.get_blob_client(name)).break_lease(lease_break_period=0)
    return held


def wait_for_locks_to_lapse(container, limit: float) -> float:
    """Seconds until no lock under locks/ is leased any more; fails past ``limit``."""
    started = time.monotonic()
    while leased_locks(container):
        if time.monotonic() - started > limit:
            raise AssertionError(f"locks still leased after {limit:.0f}s: {leased_locks(container)}")
        time.sleep(0.25)
    return time.monotonic() - started


# -- what must hold after any crash --------------------------------------------------------------

def blobs(container, prefix: str = "") -> dict[str, bytes]:
    if not container.exists():
        return {}
    return {b.name: container.download_blob(b.name).readall()
            for b in container.list_blobs(name_starts_with=prefix or None)}


def secret_values(world) -> set[str]:
    """Every secret the sandbox holds: Key Vault values (every version, pending ones too) and
    what resources keep but never return (keys, passwords)."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, str):
            if re.search(r"password|key", key, re.I) and len(value) >= 8:
                found.add(value)
        elif isinstance(value, dict):
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)

    with world.lock:
        for secret in (world.sections.get("keyvault") or {}).values():
            for version in secret["versions"]:
                if version.get("value") and not str(version["value"]).startswith("placeholder:"):
                    found.add(version["value"])
        for resource in world.resources.values():
            walk(resource.get("_sandbox") or {})
    return found


def assert_no_secret(values: Iterable[str], texts: dict[str, str | bytes]) -> None:
    for where, text in texts.items():
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        leaked = [f"{v[:4]}... ({len(v)} chars)" for v in values if v in text]
        assert not leaked, f"secret value(s) {leaked} in {where}"


def assert_nothing_lost(before: dict[str, bytes], after: dict[str, bytes], *,
                        may_change: Iterable[str] = ()) -> None:
    """Every blob stored before the crash is still there; all but ``may_change`` unchanged."""
    lost = sorted(set(before) - set(after))
    assert not lost, f"lost: {lost}"
    changing = set(may_change)
    changed = sorted(n for n in before if n not in changing and after[n] != before[n])
    assert not changed, f"changed: {changed}"


def sent_unsaved(killed: Run, title: str, state_blob: str) -> bool:
    """Whether the killed run sent this notification and died before it saved the state that
    remembers it: then, and only then, the rerun may send it a second time."""
    sent = [w.at for w in killed.writes if w.source == "webhook" and w.target == title]
    saves = [w.at for w in killed.writes
             if w.source == "storage" and w.target == state_blob and w.status < 300]
    return bool(sent) and not any(at > min(sent) for at in saves)


def assert_lock_message(run: Run, job: str) -> None:
    """The rerun while the killed run's lease holds: exit 3, a message saying what and why."""
    assert run.returncode == 3, run.describe() + "\n" + run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last == (f"not started: {job} is already running (lock locks/{job} is leased); if no run "
                    f"is going on (one was killed), the lock frees itself within {LOCK_SECONDS} s"), last
    assert run.stdout == ""


# -- one test's set-up ---------------------------------------------------------------------------

class Crash:
    """A crash test's tools: the killed runs' settings (short leases, slow writes, storage
    through the proxy), its runs container, and the choreography every kill point shares."""

    def __init__(self, stack, proxy: StorageProxy, monkeypatch, receiver=None):
        self.stack, self.proxy, self.monkeypatch = stack, proxy, monkeypatch
        self.receiver = receiver
        monkeypatch.setenv("OPS_LOCK_SECONDS", str(LOCK_SECONDS))
        if receiver is not None:
            monkeypatch.setenv("OPS_NOTIFY_KIND", "webhook")
            monkeypatch.setenv("OPS_NOTIFY_URL", receiver.url)
        self.watch = Watch(stack, proxy, receiver)
        self.fresh_runs_container()

    # -- settings and storage --------------------------------------------------------------------
    def fresh_runs_container(self) -> str:
        """Run records, locks and state of their own (a reference run and a crashed one
        must not share them)."""
        import uuid
        from jobs import service
        name = f"crash-{uuid.uuid4().hex[:12]}"
        self.monkeypatch.setenv("OPS_RUNS_CONTAINER", name)
        service.reset()
        return name

    def setenv(self, **values: str) -> None:
        from jobs import service
        for key, value in values.items():
            self.monkeypatch.setenv(key, value)
        service.reset()

    def env(self) -> dict[str, str]:
        """The killed process's settings: this test's, with storage through the proxy."""
        env = dict(os.environ)
        env["AzureWebJobsStorage"] = self.proxy.connection_string(env["AzureWebJobsStorage"])
        return env

    @property
    def runs(self):
        """The runs container, read directly (not through the proxy)."""
        from jobs import service
        env = service.environment()
        return env.clients.blob_service.get_container_client(env.settings.runs_container)

    def stored(self) -> dict[str, bytes]:
        return blobs(self.runs)

    # -- running ---------------------------------------------------------------------------------
    def run(self, job: str, now: str, *extra: str, trigger=None) -> Run:
        return run_process(cli_args(job, now, *extra), self.env(), self.watch, trigger=trigger)

    def run_in_process(self, job: str, now: str, **kw) -> dict[str, Any]:
        """An earlier run, in this process and straight to Azurite (faster; not watched)."""
        from datetime import datetime
        from jobs import service
        when = datetime.fromisoformat(now.replace("Z", "+00:00"))
        return service.run(job, trigger=kw.pop("trigger", "cli"), dry_run=kw.pop("dry_run", False),
                           now=when, options=kw.pop("options", None))

    def kill_and_rerun(self, job: str, now: str, *extra: str, trigger, wait_for_lease: bool,
                       rerun_extra: tuple[str, ...] = (), at_kill: Callable[[Run], None] | None = None
                       ) -> tuple[Run, Run | None, Run, float | None]:
        """(killed run, blocked rerun (None when killed before it took the lock), rerun, seconds
        from the kill until the lease lapsed by itself, or None if it was broken).

        Kill at ``trigger``; ``at_kill`` checks the state the kill left; a rerun at once is
        refused with exit 3 and writes nothing; the lease lapses by itself within
        OPS_LOCK_SECONDS (``wait_for_lease``) or is broken; then the rerun goes through."""
        killed = self.run(job, now, *extra, trigger=trigger)
        assert killed.killed, "the run ended before its kill point:\n" + killed.describe()
        assert killed.returncode == -signal.SIGKILL
        if at_kill is not None:
            at_kill(killed)
        held = leased_locks(self.runs)
        if not killed.holds(f"locks/{job}"):
            # killed before it took the lock, or after it let it go: nothing holds the next run back
            assert not held, held
            rerun = self.run(job, now, *rerun_extra)
            assert rerun.returncode in (0, 1), rerun.describe() + "\n" + rerun.stderr[-3000:]
            return killed, None, rerun, None
        assert f"locks/{job}" in held, f"the killed run's lock is not held: {held}\n" + killed.describe()

        blocked = self.run(job, now, *rerun_extra, trigger=None)
        assert_lock_message(blocked, job)
        assert all(w.source == "storage" and w.status >= 400 for w in blocked.writes), blocked.describe()

        if wait_for_lease:
            wait_for_locks_to_lapse(self.runs, LOCK_SECONDS + 5)
            lapse = time.monotonic() - killed.killed_at
            # renewed every LOCK_SECONDS / 3, so it lapses 2/3 to 3/3 of it after the kill
            assert LOCK_SECONDS * 2 / 3 - 1 <= lapse <= LOCK_SECONDS + 1, lapse
        else:
            break_locks(self.runs)
            lapse = None
        rerun = self.run(job, now, *rerun_extra)
        assert rerun.returncode in (0, 1), rerun.describe() + "\n" + rerun.stderr[-3000:]
        assert not leased_locks(self.runs), "the rerun left a lock leased"
        return killed, blocked, rerun, lapse

    # -- checks ----------------------------------------------------------------------------------
    def assert_no_leak(self, *runs: Run, extra_values: Iterable[str] = ()) -> None:
        """No secret value in any stored run record or state, nor in any process's output."""
        from sandbox.stack import AZURITE_KEY
        values = secret_values(self.stack.world) | {self.stack.sandbox.token, AZURITE_KEY}
        values |= set(extra_values)
        if self.receiver is not None:
            values.add(self.receiver.url)
        texts: dict[str, str | bytes] = {}
        for i, run in enumerate(r for r in runs if r is not None):
            texts[f"run {i + 1} stdout"] = run.stdout
            texts[f"run {i + 1} stderr"] = run.stderr
        texts.update({f"runs container: {name}": data for name, data in self.stored().items()})
        assert_no_secret(values, texts)
