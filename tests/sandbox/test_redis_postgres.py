"""Redis and PostgreSQL flexible servers in the sandbox, through the real
management clients; credential changes reach real local servers."""
import json

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sandbox import databases

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-shopfront-dev"
CACHE = "redis-shopfront-dev"
SERVER = "psql-shopfront-dev"
PG_PASSWORD = "BWOD4M4rAwK-i9fj_mKn__CG"


def _need(app_env, kind):
    if not any(getattr(db, "kind", None) == kind for db in app_env.databases):
        pytest.skip(databases.UNAVAILABLE.get(kind, f"{kind} was not started"))


@pytest.fixture
def real_redis(app_env):
    _need(app_env, "redis")


@pytest.fixture
def real_postgres(app_env):
    _need(app_env, "postgres")


# -- Redis ------------------------------------------------------------------------------------
def _auth(cache, key: str, *, tls: bool = False, ca: str | None = None) -> bool:
    client = redis.Redis(host=cache.host_name, port=cache.ssl_port if tls else cache.port, password=key,
                         ssl=tls, ssl_ca_certs=ca, socket_timeout=3, socket_connect_timeout=3,
                         retry=Retry(NoBackoff(), 0))  # redis-py retries a refused AUTH for seconds
    try:
        return client.ping()
    except redis.AuthenticationError:
        return False
    finally:
        client.close()


def test_cache_points_at_the_real_redis_and_hides_keys(app_env, real_redis, clients):
    cache = clients.redis(SUB).redis.get(RG, CACHE)
    assert cache.host_name == "127.0.0.1"
    assert cache.port == int(app_env.env()["SANDBOX_REDIS_PORT"])
    assert cache.ssl_port == int(app_env.env()["SANDBOX_REDIS_SSL_PORT"])
    assert cache.enable_non_ssl_port is True
    keys = clients.redis(SUB).redis.list_keys(RG, CACHE)
    assert keys.primary_key not in json.dumps(cache.as_dict())
    assert clients.secrets.get_secret("shopfront-redis-key").value == keys.primary_key


def test_both_keys_authenticate_also_over_tls(app_env, real_redis, clients):
    cache = clients.redis(SUB).redis.get(RG, CACHE)
    keys = clients.redis(SUB).redis.list_keys(RG, CACHE)
    assert _auth(cache, keys.primary_key) and _auth(cache, keys.secondary_key)
    assert not _auth(cache, "not-a-key")
    if cache.ssl_port != cache.port:
        assert _auth(cache, keys.secondary_key, tls=True, ca=str(app_env.ca_file))


def test_regenerating_a_key_revokes_only_that_key(app_env, real_redis, clients):
    ops = clients.redis(SUB).redis
    cache = ops.get(RG, CACHE)
    before = ops.list_keys(RG, CACHE)
    after = ops.regenerate_key(RG, CACHE, {"keyType": "Primary"})
    assert after.secondary_key == before.secondary_key and after.primary_key != before.primary_key
    assert ops.list_keys(RG, CACHE).primary_key == after.primary_key
    assert not _auth(cache, before.primary_key)
    assert _auth(cache, before.secondary_key)
    assert _auth(cache, after.primary_key)

    # A world reset restores the seeded keys on the real server too.
    app_env.world.reset()
    assert _auth(cache, before.primary_key)
    assert not _auth(cache, after.primary_key)


def test_regenerate_needs_a_key_type(app_env, real_redis, clients):
    from azure.core.exceptions import HttpResponseError
    with pytest.raises(HttpResponseError) as err:
        clients.redis(SUB).redis.regenerate_key(RG, CACHE, {"keyType": "Tertiary"})
    assert err.value.status_code == 400


def test_list_caches(app_env, clients):
    names = {c.name for c in clients.redis(SUB).redis.list_by_subscription()}
    assert {"redis-shopfront-dev", "redis-shopfront-staging"} <= names


# -- PostgreSQL -------------------------------------------------------------------------------
def _login(server, user: str, password: str) -> bool:
    try:
        with psycopg.connect(host=server.fully_qualified_domain_name, port=int(server.tags["sandbox-port"]),
                             user=user, password=password, dbname="postgres", connect_timeout=3) as conn:
            return conn.execute("SELECT current_user").fetchone()[0] == user
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
        return False


def test_server_points_at_the_real_postgres_and_hides_the_password(app_env, real_postgres, clients):
    server = clients.postgres(SUB).servers.get(RG, SERVER)
    assert server.fully_qualified_domain_name == "127.0.0.1"
    assert server.tags["sandbox-port"] == app_env.env()["SANDBOX_POSTGRES_PORT"]
    assert server.administrator_login == "shopfrontadmin"
    assert server.administrator_login_password is None
    assert PG_PASSWORD not in json.dumps(server.as_dict())
    assert _login(server, "shopfrontadmin", PG_PASSWORD)
    assert _login(server, "shopfront_app", "aM2Xq9ZrVt4LpH7wKc1EbN6s")  # an app role, for role rotation


def test_password_update_is_a_polled_operation_applied_to_postgres(app_env, real_postgres, clients):
    servers = clients.postgres(SUB).servers
    new_password = "Rotated-9f2c1e7b5a3d"
    poller = servers.begin_update(RG, SERVER, {"properties": {"administratorLoginPassword": new_password}})
    result = poller.result()
    assert result.name == SERVER and result.administrator_login_password is None

    log = [(r["method"], r["status"], r["operation"]) for r in app_env.sandbox.request_log()]
    assert ("PATCH", 202, "Microsoft.DBforPostgreSQL/flexibleServers/write") in log
    status_polls = [s for m, s, op in log if op == "operations/status"]
    assert len(status_polls) >= 2  # InProgress, then Succeeded
    assert log[-1] == ("GET", 200, "Microsoft.DBforPostgreSQL/flexibleServers/read")

    server = servers.get(RG, SERVER)
    assert _login(server, "shopfrontadmin", new_password)
    assert not _login(server, "shopfrontadmin", PG_PASSWORD)
    # The admin can manage app roles (CREATEROLE), e.g. change an app role's password.
    with psycopg.connect(host=server.fully_qualified_domain_name, port=int(server.tags["sandbox-port"]),
                         user="shopfrontadmin", password=new_password, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute("ALTER ROLE shopfront_app WITH PASSWORD 'app-rotated-1'")
    assert _login(server, "shopfront_app", "app-rotated-1")

    app_env.world.reset()  # a reset re-applies the seeded passwords
    assert _login(server, "shopfrontadmin", PG_PASSWORD)
    assert _login(server, "shopfront_app", "aM2Xq9ZrVt4LpH7wKc1EbN6s")


def test_other_changes_and_missing_servers(app_env, clients):
    from azure.core.exceptions import ResourceNotFoundError
    servers = clients.postgres(SUB).servers
    servers.begin_update(RG, SERVER, {"tags": {"owner": "ops"}, "properties": {"backup": {"backupRetentionDays": 14}}}).result()
    server = servers.get(RG, SERVER)
    assert server.tags["owner"] == "ops"
    assert server.backup.backup_retention_days == 14 and server.backup.geo_redundant_backup == "Disabled"
    with pytest.raises(ResourceNotFoundError):
        servers.get(RG, "psql-nope")
    assert {s.name for s in servers.list_by_resource_group(RG)} == {SERVER}


# -- without the binaries ---------------------------------------------------------------------
def test_missing_binaries_skip_the_servers_with_a_clear_reason(tmp_path, monkeypatch):
    from sandbox.world import World
    monkeypatch.setattr(databases, "UNAVAILABLE", {})
    monkeypatch.setattr(databases.shutil, "which", lambda name: None)
    monkeypatch.setattr(databases.glob, "glob", lambda pattern: [])
    for name in ("SANDBOX_PG_BINDIR", "SANDBOX_REDIS_SERVER", "SANDBOX_REQUIRE_DATABASES"):
        monkeypatch.delenv(name, raising=False)
    assert databases.start_all(tmp_path, World({})) == []
    assert "postgresql-15" in databases.UNAVAILABLE["postgres"]
    assert "redis-server" in databases.UNAVAILABLE["redis"]
    monkeypatch.setenv("SANDBOX_REQUIRE_DATABASES", "1")
    with pytest.raises(databases.DatabaseUnavailable, match="postgresql-15"):
        databases.start_all(tmp_path, World({}))
