"""The canary: every job path runs with logging at DEBUG (the Azure SDK's HTTP
logging too); then logs, stored run records, HTTP bodies, CLI output and
notifications are scanned for every secret value the runs handled: old and new
values of every secret and pending secret, every Redis and Storage key, every
PostgreSQL password. None may appear, not even masked: the log handler here has
no redacting filter, so this checks that nothing tries to log a value."""
from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest

from jobs import redact, service
from sandbox.webhook import WebhookReceiver
from sandbox.world import load_world_file
from tests.app_functions import user_function
from tests.secret_rotation.conftest import ROTATION_WORLD

DEBUG_LOGGERS = ("", "azure", "azure.core.pipeline.policies.http_logging_policy", "azure.storage",
                 "psycopg", "redis", "urllib3", "jobs")


def world_values(world) -> set[str]:
    """Every value the sandbox holds: Key Vault versions, keys, passwords."""
    snap = world.snapshot()
    values = set()
    for secret in (snap.get("keyvault") or {}).values():
        values |= {v["value"] for v in secret["versions"]}
    for secret in snap.get("secrets") or []:
        values |= {secret.get("value", "")} | {v.get("value", "") for v in secret.get("versions") or []}
    for resource in snap.get("resources") or []:
        private = resource.get("_sandbox") or {}
        values |= set((private.get("keys") or {}).values())
        values.add(private.get("administratorLoginPassword") or "")
        values |= {r.get("password", "") for r in private.get("roles") or []}
    from jobs.secret_rotation.protocol import PLACEHOLDER
    return {v for v in values if v and len(v) >= 6 and v != PLACEHOLDER}


def http_run(body: dict) -> tuple[int, str]:
    req = func.HttpRequest(method="POST", url="/api/privileged/jobs/secret-rotation/run",
                           route_params={"name": "secret-rotation"}, params={},
                           body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    resp = user_function("http_run_job_admin")(req)  # force: the master-key route
    return resp.status_code, resp.get_body().decode()


def http_latest() -> str:
    req = func.HttpRequest(method="GET", url="/api/jobs/secret-rotation/runs/latest",
                           route_params={"name": "secret-rotation"}, params={}, body=b"")
    return user_function("http_latest_run")(req).get_body().decode()


@pytest.fixture
def debug_logs(monkeypatch):
    """A raw handler on the root logger, added after the app's redacting filter was installed."""
    service.environment()  # installs redact's filter on the handlers present now
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    assert not handler.filters
    saved = {name: logging.getLogger(name).level for name in DEBUG_LOGGERS}
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield stream
    logging.getLogger().removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_no_secret_value_leaks_on_any_path(rot, world, monkeypatch, debug_logs, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    receiver = WebhookReceiver()
    monkeypatch.setenv("OPS_NOTIFY_KIND", "webhook")
    monkeypatch.setenv("OPS_NOTIFY_URL", receiver.url)
    monkeypatch.setenv("OPS_SECRET_ROTATION__MAX_FAILED_ATTEMPTS", "2")
    monkeypatch.setenv("OPS_SECRET_ROTATION__CONSUMER_ACTION", "refresh")
    service.reset()
    seen: set[str] = set()
    bodies: list[str] = []

    def note() -> None:
        seen.update(world_values(rot.stack.world))

    # seeded: the rotation world, with consumers, a due secret and an expired grace period
    data = load_world_file(ROTATION_WORLD)
    for secret in data["secrets"]:
        if secret["name"] == "rot-redis":
            secret["tags"]["rotation-consumers"] = "rg-rotation/app-rotation-dev,rg-rotation/app-rotation-prod"
        if secret["name"] == "rot-pg-alt":
            secret["created"] = "-40d"
    # and a soft-deleted pending secret, which the forced rotation below recovers
    data["secrets"].append({"name": "rot-generated--pending", "value": "Deleted-Pending-Canary-Value-77",
                            "enabled": False, "deleted": {"deleted_date": "-1d"},
                            "tags": {"rotation-of": "rot-generated", "rotation-step": "finished"}})
    world(data)
    note()
    seeded = set(seen)
    try:
        # dry run, due and forced rotations of every kind, CLI and HTTP
        status, body = http_run({})
        bodies.append(body)
        bodies.append(json.dumps(rot.run()))
        for name in ("rot-generated", "rot-pg-admin", "rot-pg-app", "rot-redis"):
            status, body = http_run({"force": name, "dry_run": False})
            assert status == 200
            bodies.append(body)
            note()
        from jobs.__main__ import main
        main(["run", "secret-rotation", "--apply", "--force", "rot-storage", "--json"])
        main(["-v", "run", "secret-rotation", "--apply", "--force", "rot-pg-alt"])
        note()
        # failures: a test step that cannot authenticate (after SET), a single-role rollback,
        # then blocked; a secret held by another run; a wrong credential tag
        monkeypatch.setenv("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT",
                           f"{rot.stack.sandbox.url}/_storage/missing-{{account}}")
        monkeypatch.setenv("OPS_SECRET_ROTATION__POSTGRES_DATABASE", "no_such_database")
        service.reset()
        for name in ("rot-storage", "rot-pg-admin", "rot-storage", "rot-pg-admin"):
            bodies.append(json.dumps(rot.run(force=name, force_revoke=True)))
            note()
        bodies.append(json.dumps(rot.run()))  # reports both blocked
        monkeypatch.setenv("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT",
                           rot.env["OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT"])
        monkeypatch.delenv("OPS_SECRET_ROTATION__POSTGRES_DATABASE")
        service.reset()
        with service.environment().store.lock("secret-rotation/rot-generated"):
            bodies.append(json.dumps(rot.run(force="rot-generated")))
        redis = rot.current("rot-redis")
        rot.kv.set_secret("rot-redis", redis.value, tags=dict(redis.properties.tags,
                                                              **{"rotation-credential": "primary"}))
        bodies.append(json.dumps(rot.run(force="rot-redis", force_revoke=True)))
        for name in ("rot-storage", "rot-pg-admin"):  # someone acts: both resumed
            status, body = http_run({"force": name, "dry_run": False, "force_revoke": "true"})
            bodies.append(body)
            note()
        # an ended grace period
        bodies.append(json.dumps(rot.run(now=datetime.now(timezone.utc) + timedelta(days=8))))
        bodies.append(http_latest())
        note()
    finally:
        receiver.stop()

    out = capsys.readouterr()
    store = service.environment().store
    records = [json.dumps(store.read(path)) for path in store.list_reports("secret-rotation")]
    assert len(records) >= 15
    channels = {
        "logs (raw, DEBUG)": debug_logs.getvalue(),
        "logs (caplog)": caplog.text,
        "run records": "\n".join(records),
        "HTTP bodies and reports": "\n".join(bodies),
        "CLI output": out.out + out.err,
        "notifications": json.dumps(receiver.received),
    }
    assert len(seen - seeded) >= 8, "the runs made new values of every kind"
    assert "Deleted-Pending-Canary-Value-77" in seen and "recovered rot-generated--pending" in "\n".join(bodies)
    assert "http_logging_policy" in channels["logs (raw, DEBUG)"]  # the SDK did log at DEBUG
    assert receiver.received, "failures were notified"
    for channel, text in channels.items():
        leaked = [v[:4] + "..." for v in seen if v in text]
        assert not leaked, f"secret values in {channel}: {leaked}"
        assert redact.MASK not in text, f"something tried to put a value in {channel}"
