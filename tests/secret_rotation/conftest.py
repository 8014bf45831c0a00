"""Fixtures of the secret-rotation tests: the rotation test world (sandbox/worlds/
rotation.json) on the session's sandbox, and the tests' own way of checking a
value against the real PostgreSQL and Redis servers and the sandbox's Storage
data plane (independent of the job's adapters)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sandbox import databases
from sandbox.stack import ROOT

ROTATION_WORLD = ROOT / "sandbox" / "worlds" / "rotation.json"
JOB = "secret-rotation"


class Harness:
    """The job and the vault as a test sees them."""

    def __init__(self, stack):
        from jobs.clients import Clients
        from jobs.settings import load_settings
        self.stack = stack
        self.env = stack.env()
        self.settings = load_settings()
        self.clients = Clients(self.settings)
        self.kv = self.clients.secrets

    # -- running ---------------------------------------------------------------------
    def run(self, *, dry_run: bool = False, force: str | None = None, now: datetime | None = None,
            trigger: str = "cli", force_revoke: bool = False) -> dict:
        from jobs import service
        options = {"force": force} if force else {}
        if force_revoke:
            options["force_revoke"] = "true"
        return service.run(JOB, trigger=trigger, dry_run=dry_run, now=now, options=options)

    def rotation(self, name: str, now: datetime | None = None):
        """The protocol's Rotation for one secret, built as the job builds it (no sleeping)."""
        from jobs.secret_rotation import azure_io, tags
        spec = tags.parse(name, self.kv.get_secret(name).properties.tags or {})
        vault = azure_io.KeyVault(self.kv)
        return azure_io.build_rotation(self.clients, self.settings, spec, vault,
                                       now or datetime.now(timezone.utc), sleep=lambda s: None)

    # -- reading the vault -----------------------------------------------------------------
    def current(self, name: str):
        return self.kv.get_secret(name)

    def versions(self, name: str) -> list:
        return list(self.kv.list_properties_of_secret_versions(name))

    def enabled_versions(self, name: str) -> set[str]:
        return {p.version for p in self.versions(name) if p.enabled}

    def pending(self, name: str) -> tuple[str | None, bool] | None:
        """(rotation-step, enabled) of the latest pending version; None when there is none."""
        with self.stack.world.lock:
            store = self.stack.world.sections.get("keyvault", {}).get((name + "--pending").lower())
            if not store:
                return None
            latest = store["versions"][-1]
            return latest["tags"].get("rotation-step"), latest["enabled"]

    # -- the tests' own authentication against the real services ----------------------------
    def authenticates(self, name: str, value: str | None = None, credential: str | None = None) -> bool:
        """Whether ``value`` (default: what consumers read) authenticates as the secret's
        credential (default: the one its current tags name)."""
        secret = self.current(name)
        tags = secret.properties.tags or {}
        value = secret.value if value is None else value
        credential = credential or tags.get("rotation-credential")
        kind = tags.get("rotation-kind", "")
        if kind == "generated":
            return bool(value) and value == secret.value
        resource = tags["rotation-resource"].split("/")[-1]
        if kind.startswith("postgres"):
            return pg_login(self, credential, value)
        if kind.startswith("redis"):
            return redis_auth(self, value)
        if kind.startswith("storage"):
            return storage_auth(self, resource, value)
        raise AssertionError(kind)


def pg_login(h: Harness, user: str, password: str) -> bool:
    import psycopg
    try:
        with psycopg.connect(host="127.0.0.1", port=int(h.env["SANDBOX_POSTGRES_PORT"]), user=user,
                             password=password, dbname="postgres", connect_timeout=3,
                             sslmode=h.env["SANDBOX_POSTGRES_SSLMODE"],
                             sslrootcert=str(h.stack.ca_file)) as conn:
            return conn.execute("SELECT 1").fetchone()[0] == 1
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc), str(exc)
        return False


def redis_auth(h: Harness, key: str) -> bool:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    tls = h.env["SANDBOX_REDIS_SSL_PORT"] != h.env["SANDBOX_REDIS_PORT"]
    client = redis.Redis(host="127.0.0.1", port=int(h.env["SANDBOX_REDIS_SSL_PORT"]), password=key,
                         ssl=tls, ssl_ca_certs=str(h.stack.ca_file) if tls else None,
                         socket_timeout=3, socket_connect_timeout=3, retry=Retry(NoBackoff(), 0))
    try:
        return client.ping()
    except redis.AuthenticationError:
        return False
    finally:
        client.close()


def storage_auth(h: Harness, account: str, key: str) -> bool:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.storage.blob import BlobServiceClient
    client = BlobServiceClient(f"{h.stack.sandbox.url}/_storage/{account}",
                               credential={"account_name": account, "account_key": key},
                               connection_verify=str(h.stack.ca_file), retry_total=0)
    try:
        client.get_account_information()
        return True
    except ClientAuthenticationError:
        return False


@pytest.fixture(autouse=True)
def _forget_key_vault_challenges():
    """SecretClient caches the vault's auth challenge per process; leave none behind, so
    tests that run later (tests/sandbox) still see a new client's first, challenged request."""
    yield
    from azure.keyvault.secrets._shared import http_challenge_cache
    http_challenge_cache.clear()


@pytest.fixture
def fast(monkeypatch):
    """Short test-step retries (the sandbox answers at once)."""
    monkeypatch.setenv("OPS_SECRET_ROTATION__TEST_ATTEMPTS", "3")
    monkeypatch.setenv("OPS_SECRET_ROTATION__TEST_DELAY_SECONDS", "0.05")
    monkeypatch.setenv("OPS_SECRET_ROTATION__TEST_MAX_DELAY_SECONDS", "0.2")


@pytest.fixture
def real_servers(app_env):
    missing = [k for k in ("postgres", "redis") if not any(db.kind == k for db in app_env.databases)]
    if missing:
        pytest.skip("; ".join(databases.UNAVAILABLE.get(k, f"{k} was not started") for k in missing))


@pytest.fixture
def rot(app_env, world, fast, real_servers):
    """The rotation test world, fresh, and a Harness over it."""
    from jobs import service
    service.reset()
    world(ROTATION_WORLD)
    return Harness(app_env)


@pytest.fixture
def demo(app_env, fast, real_servers):
    """The demo world (as app_env seeds it) and a Harness over it."""
    from jobs import service
    service.reset()
    return Harness(app_env)


def actions(report: dict, kind: str | None = None) -> dict[str, dict]:
    return {a["target"]: a for a in report["actions"] if kind is None or a["kind"] == kind}

