"""Fault suite, secret-rotation (issue #8): every kind of rotation at once (sandbox/
worlds/rotation.json with every tagged secret due: a PostgreSQL administrator, an app
role, alternate roles, a Redis and a Storage key, a generated value), consumers
refreshed (one of them a production app, which must never be), against the real
PostgreSQL and Redis servers. New values are random, so world A and world B are
compared by structure: versions, which credential is in use, that the value
consumers read authenticates, the rotation records, the failure counters."""
from __future__ import annotations

from typing import Any

import pytest

from jobs import service
from jobs.secret_rotation import tags as T
from sandbox.world import load_world_file
from tests.resilience.harness import (AZURITE_TIMEOUT, OUTAGES, Findings, Scenario, Seen, after_first_write,
                                      answered, effective, is_write, own_azurite, reference,
                                      run_with_azurite_stopped, run_with_faults, seeds)
from tests.secret_rotation.conftest import ROTATION_WORLD, Harness

pytestmark = pytest.mark.faults
_ = own_azurite  # a fixture, used by name

ROTATED = ("rot-generated", "rot-pg-admin", "rot-pg-app", "rot-pg-alt", "rot-redis", "rot-storage")
SUB = "00000000-0000-0000-0000-000000000001"
SITES = f"/subscriptions/{SUB}/resourceGroups/rg-rotation/providers/Microsoft.Web/sites"
CONSUMERS = "rg-rotation/app-rotation-dev,rg-rotation/app-rotation-prod"
PROD_TAG_VALUES = ("prod", "production", "prd")
REFRESH = "/config/configreferences/appsettings/refresh"


def world_data() -> dict[str, Any]:
    data = load_world_file(ROTATION_WORLD)
    for secret in data["secrets"]:
        if secret["name"] in ROTATED:
            secret["created"] = "-40d"  # past the 30-day period: due
        if secret["name"] == "rot-redis":
            secret["tags"][T.CONSUMERS_TAG] = CONSUMERS
    return data


class SecretRotation(Scenario):
    job = "secret-rotation"
    trigger = "cli"
    expected_failures = ("invalid-tags",)  # rot-malformed: a failed outcome every run

    def seed_world(self) -> None:
        self.stack.world.reset(world_data())
        self.setenv(OPS_SECRET_ROTATION__TEST_ATTEMPTS="3", OPS_SECRET_ROTATION__TEST_DELAY_SECONDS="0.05",
                    OPS_SECRET_ROTATION__TEST_MAX_DELAY_SECONDS="0.2",
                    OPS_SECRET_ROTATION__CONSUMER_ACTION="refresh")

    def history(self) -> None:
        self.run(dry_run=True)  # a stored run record; the vault as seeded

    def target_run(self) -> dict[str, Any]:
        return self.run()

    def vault(self) -> Harness:
        return Harness(self.stack)

    def secret_tags(self, world: dict[str, Any], name: str) -> dict[str, str]:
        secret = (world.get("keyvault") or {}).get(name.lower()) or {}
        versions = secret.get("versions") or []
        return dict(versions[-1].get("tags") or {}) if versions else {}

    # -- compared ---------------------------------------------------------------------------
    def end_state(self) -> dict[str, Any]:
        h = self.vault()
        secrets = {}
        for name in ROTATED:
            current = h.current(name)
            tags = current.properties.tags or {}
            versions = h.versions(name)
            secrets[name] = {
                "versions": len(versions),
                "enabled versions": len([v for v in versions if v.enabled]),
                "credential in use": tags.get(T.CREDENTIAL_TAG),
                "tag names": sorted(tags),
                "consumers' value authenticates": h.authenticates(name),
                "pending": h.pending(name),
            }
        failures, _ = service.environment().store.load_state(self.job, "failures")
        # no blob and an empty one say the same: no failed attempts
        return {"secrets": secrets, "failure counters": failures.get("secrets") or {}}

    # -- checked ----------------------------------------------------------------------------
    def evidence(self, action: dict[str, Any], seen: Seen) -> str | None:
        kind, name = action["kind"], action["target"]
        if kind == "rotate-secret":
            h = self.vault()
            if not h.authenticates(name):
                return "the value consumers read does not authenticate"
            if (action.get("detail") or "").startswith("nothing to do"):
                return None
            pending = h.pending(name)
            if pending != ("finished", False):
                return f"its rotation record is {pending}"
            current_id = (h.current(name).properties.tags or {}).get(T.ID_TAG)
            pending_id = self.secret_tags(seen.world, T.pending_name(name)).get(T.ID_TAG)
            if not current_id or current_id != pending_id:
                return f"the current version carries rotation {current_id}, the record says {pending_id}"
            for site in self.consumers(seen.world, name):
                if not answered(seen.log, "POST", site + REFRESH):
                    return f"consumer {site.rsplit('/', 1)[-1]} was not refreshed"
            return None
        if kind == "end-grace":
            h = self.vault()
            enabled = h.enabled_versions(name)
            return None if enabled == {h.current(name).properties.version} else \
                f"{len(enabled)} versions are still enabled"
        return super().evidence(action, seen)

    def consumers(self, world: dict[str, Any], name: str) -> list[str]:
        """Site ids of the secret's consumers that are not production."""
        listed = self.secret_tags(world, name).get(T.CONSUMERS_TAG) or ""
        ids = [f"{SITES}/{c.strip().split('/')[-1]}" for c in listed.split(",") if c.strip()]
        return [i for i in ids if i.lower() not in {p.lower() for p in self.production_ids()}]

    def owner_of(self, entry: dict[str, Any], report: dict[str, Any]) -> bool:
        attempted = [a["target"] for a in report["actions"]
                     if a["kind"] in ("rotate-secret", "end-grace") and a["status"] in ("succeeded", "failed")]
        path = entry["path"].lower()
        if path.startswith("/secrets/"):
            secret = path.split("/")[2].removesuffix("--pending")
            return secret in {n.lower() for n in attempted}
        world = self.stack.world.snapshot()
        for name in attempted:
            tags = self.secret_tags(world, name)
            resource = (tags.get(T.RESOURCE_TAG) or "").lower()
            if resource and (path == resource or path.startswith(resource + "/")):
                return True
            if path.endswith(REFRESH.lower()) and any(
                    path == (s + REFRESH).lower() for s in self.consumers(world, name)):
                return True
        return False

    def production_ids(self) -> set[str]:
        return {r["id"].lower() for r in world_data()["resources"]
                if str((r.get("tags") or {}).get("environment", "")).lower() in PROD_TAG_VALUES}

    def allowed_write(self, entry: dict[str, Any]) -> bool:
        op, method = entry["operation"], entry["method"]
        return ((method in ("PUT", "PATCH") and op in ("KeyVault/secrets/set", "KeyVault/secrets/update"))
                or (method == "PATCH" and op == "Microsoft.DBforPostgreSQL/flexibleServers/write")
                or (method == "POST" and op in ("Microsoft.Cache/redis/regenerateKey/action",
                                                "Microsoft.Storage/storageAccounts/regenerateKey/action",
                                                "Microsoft.Web/sites/config/configreferences/appsettings/refresh")))

    def check_saved(self, report: dict[str, Any], f: Findings, stage: str) -> None:
        """A run without errors keeps its failure counters: a failed rotation counted (unless
        another run held the secret), a finished one cleared."""
        if report["errors"]:
            return
        failures, _ = service.environment().store.load_state(self.job, "failures")
        counted = failures.get("secrets") or {}
        for a in report["actions"]:
            if a["kind"] != "rotate-secret":
                continue
            if a["status"] == "failed" and not (a["error"] or "").startswith("AlreadyRunning") \
                    and a["target"] not in counted:
                f.add(f"{stage}: the rotation of {a['target']} failed, the run reports no error, but "
                      "its failed attempt is not counted")
            if a["status"] == "succeeded" and a["target"] in counted:
                f.add(f"{stage}: the rotation of {a['target']} finished but its failures are still counted")

    def check_after(self, f) -> None:
        # Each rotated secret got exactly one new version over the faulty and the clean run:
        # a rotation resumed, never started twice (end_state compares the count with world B).
        log = self.stack.sandbox.request_log()
        sets = {}
        for e in log:
            if is_write(e) and effective(e) and e["operation"] == "KeyVault/secrets/set":
                name = e["path"].split("/")[2]
                if not name.endswith("--pending"):
                    sets[name] = sets.get(name, 0) + 1
        twice = {n: c for n, c in sets.items() if c > 1}
        if twice:
            f.add(f"secrets given more than one new version: {twice}")


@pytest.fixture(autouse=True)
def _forget_key_vault_challenges():
    """SecretClient caches the vault's auth challenge per process; leave none behind."""
    yield
    from azure.keyvault.secrets._shared import http_challenge_cache
    http_challenge_cache.clear()


@pytest.fixture
def real_servers(app_env):
    from sandbox import databases
    missing = [k for k in ("postgres", "redis") if not any(db.kind == k for db in app_env.databases)]
    if missing:
        pytest.skip("; ".join(databases.UNAVAILABLE.get(k, f"{k} was not started") for k in missing))


@pytest.mark.parametrize("seed", seeds(short=1))  # about 25 s a seed
def test_faults_secret_rotation(app_env, monkeypatch, real_servers, seed):
    scenario = SecretRotation(app_env, monkeypatch)
    findings = run_with_faults(scenario, seed, reference(scenario))
    findings.check(f"OPS_FAULT_SEEDS={seed} .venv/bin/python -m pytest {__file__}::test_faults_secret_rotation")


@pytest.mark.timeout(AZURITE_TIMEOUT)
@pytest.mark.parametrize("outage", OUTAGES, ids=lambda o: f"back-after-{o:g}s")
def test_azurite_stopped_secret_rotation(app_env, monkeypatch, real_servers, own_azurite, outage):
    scenario = SecretRotation(app_env, monkeypatch)
    ref = reference(scenario)
    scenario.azurite = own_azurite
    findings = run_with_azurite_stopped(scenario, ref, when="after the first Key Vault write",
                                        trigger=after_first_write, outage=outage)
    findings.check(("OPS_FAULT_RUNS=full " if outage > OUTAGES[0] else "")
                   + f".venv/bin/python -m pytest {__file__}::test_azurite_stopped_secret_rotation")
