"""What secret-rotation reads from and writes to Azure: the vault, the
resources' management planes and their data planes (for the test step).

- ``observe()``: paged listings of the vault's secrets and of its soft-deleted
  pending secrets (properties only, no value) and the failure counters from the
  run store.
- ``KeyVault``: the protocol's vault over ``SecretClient``.
- ``RedisResource`` / ``StorageResource``: list and regenerate keys (Resource
  Manager); the test is AUTH + PING over TLS with redis-py, or a Shared Key
  call (Get Account Information) with ``BlobServiceClient``.
- ``PostgresResource``: the server administrator's password through the
  flexible server's PATCH (a long-running operation); an app role's password
  with ``ALTER ROLE`` as the administrator, sending a SCRAM-SHA-256 verifier
  computed here, so the server (and its statement log) never sees the new
  password; the test is a login and ``SELECT 1``.
- ``AppConsumers``: refresh an App Service app's Key Vault references, or
  restart it.

Every value read or made here is passed to ``redact.remember`` at once, and
none is put in a message, log line or exception. With the sandbox credential,
a data-plane address off loopback is refused.
"""
from __future__ import annotations

import logging
import secrets as random_source
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Callable

from jobs import redact
from jobs.secret_rotation import protocol as P
from jobs.secret_rotation import tags as T
from jobs.secret_rotation.plan import Failure, SecretInfo, iso, unfinished

log = logging.getLogger(__name__)

STATE_KEY = "failures"
REFRESH_API_VERSION = "2022-03-01"  # POST {site}/config/configreferences/appsettings/refresh
RECOVER_TIMEOUT_SECONDS = 120  # a soft-deleted pending secret's recovery usually takes seconds
SETTLE_DELAYS = (1, 2, 4, 8, 15)  # seconds between writes Key Vault refuses just after a recovery


@dataclass
class Observed:
    secrets: list[SecretInfo]
    failures: dict[str, Failure]
    etag: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)  # set by the job's plan()

    def active_pending(self) -> set[str]:
        """Names (lower-case) of secrets with an unfinished rotation."""
        return unfinished(self.secrets)


# -- observe ------------------------------------------------------------------------------------

def observe(ctx) -> Observed:
    data, etag = ctx.load_state(STATE_KEY)
    return Observed(list_secrets(ctx.clients.secrets), failures_of(data), etag)


def list_secrets(client) -> list[SecretInfo]:
    listed = [SecretInfo(p.name, dict(p.tags or {}), bool(p.enabled), p.created_on, p.expires_on)
              for p in client.list_properties_of_secrets() if not p.managed]
    # A deleted pending secret may hold an unfinished rotation (the only copy of a password set).
    listed += [SecretInfo(d.name, dict(d.properties.tags or {}), bool(d.properties.enabled),
                          d.properties.created_on, d.properties.expires_on, deleted=True)
               for d in client.list_deleted_secrets()
               if d.name.lower().endswith(T.PENDING_SUFFIX) and T.OF_TAG in (d.properties.tags or {})]
    return listed


def failures_of(state: dict[str, Any]) -> dict[str, Failure]:
    return {name: Failure.from_json(row) for name, row in (state.get("secrets") or {}).items()}


def save_failures(ctx, failures: dict[str, Failure], etag: str | None) -> None:
    rows = {name: failure.to_json() for name, failure in sorted(failures.items())}
    ctx.save_state(STATE_KEY, {"version": 1, "secrets": rows}, etag)


# -- one rotation -----------------------------------------------------------------------------

def rotate(ctx, name: str, params: dict[str, Any]) -> str:
    """Run (or resume) the rotation of one secret; the caller holds its lock.
    Returns a short detail; raises RotationError (or an SDK error) on failure."""
    vault = KeyVault(ctx.clients.secrets)
    current = vault.current(name)
    try:
        spec = T.parse(name, current.tags, ctx.settings.secret_rotation.default_period_days)
    except T.TagError as err:
        raise P.RotationError(f"tags: {err.fault}") from None
    if spec is None:
        raise P.RotationError(f"{name} is no longer tagged for rotation")
    rotation = build_rotation(ctx.clients, ctx.settings, spec, vault, ctx.now)
    recovered = P.recover(rotation)
    pending = vault.pending(name)
    if pending is None or pending.step not in P.ACTIVE:
        if params.get("resume"):
            return "nothing to do: another run finished this rotation meanwhile"
        if (iso(current.created_on) != params.get("observed_created")
                or current.tags.get(T.ID_TAG) != params.get("observed_id")):
            return "nothing to do: another run rotated this secret meanwhile"
    if recovered:
        rotation.notes.append(recovered)
    return P.run(rotation).detail()


def build_rotation(clients, settings, spec: T.RotationSpec, vault: "KeyVault", now: datetime, *,
                   sleep: Callable[[float], None] | None = None) -> P.Rotation:
    config = settings.secret_rotation
    if spec.kind == T.REDIS:
        resource: Any = RedisResource(clients, settings, spec)
    elif spec.kind == T.STORAGE:
        resource = StorageResource(clients, settings, spec)
    elif spec.kind == T.POSTGRES:
        resource = PostgresResource(clients, settings, spec, vault)
    else:
        resource = GeneratedResource(config)
    consumers = AppConsumers(clients, config) if config.consumer_action != "off" else None
    rotation = P.Rotation(spec, vault, resource, config, now, P.new_rotation_id(now), consumers)
    if sleep is not None:
        rotation.sleep = sleep
    return rotation


def end_grace(ctx, name: str, version: str) -> str:
    return P.end_grace(KeyVault(ctx.clients.secrets), name, version)


def generate(config) -> str:
    alphabet = config.generated_alphabet
    value = "".join(random_source.choice(alphabet) for _ in range(config.generated_length))
    redact.remember(value)
    return value


# -- Key Vault ----------------------------------------------------------------------------------

class KeyVault:
    """The protocol's vault: secrets and their pending secrets in one Key Vault."""

    def __init__(self, client):
        self.client = client

    def current(self, name: str) -> P.Current:
        secret = self.client.get_secret(name)
        redact.remember(secret.value)
        p = secret.properties
        return P.Current(p.version, secret.value or "", dict(p.tags or {}), p.content_type,
                         p.created_on, p.expires_on)

    def pending(self, name: str) -> P.Pending | None:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        try:
            secret = self.client.get_secret(T.pending_name(name))
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            if _inner_code(exc) == "SecretDisabled":  # its latest rotation is finished
                return None
            raise
        value = secret.value
        if value == P.PLACEHOLDER:
            value = None
        redact.remember(value)
        return P.Pending(secret.properties.version, value, dict(secret.properties.tags or {}))

    def recover_pending(self, name: str) -> bool:
        """Recover the pending secret if it is soft-deleted (its name cannot be written until
        then); waits for the recovery, which is asynchronous. False when it is not deleted."""
        from azure.core.exceptions import ResourceNotFoundError
        pending_name = T.pending_name(name)
        try:
            self.client.get_deleted_secret(pending_name)
        except ResourceNotFoundError:
            return False
        poller = self.client.begin_recover_deleted_secret(pending_name)
        poller.wait(timeout=RECOVER_TIMEOUT_SECONDS)
        if not poller.done():
            raise P.RotationError(f"{pending_name} was deleted; its recovery has not completed after "
                                  f"{RECOVER_TIMEOUT_SECONDS} s (the next run goes on)")
        log.info("%s: recovered the soft-deleted %s", name, pending_name)
        return True

    def write_pending(self, name: str, value: str, tags: dict[str, str]) -> P.Pending:
        if value != P.PLACEHOLDER:
            redact.remember(value)
        written = self._set_after_recovery(T.pending_name(name), value, tags)
        return P.Pending(written.properties.version, None if value == P.PLACEHOLDER else value, dict(tags))

    def _set_after_recovery(self, name: str, value: str, tags: dict[str, str]):
        """set_secret; a 409 ObjectIsBeingRecovered, which Key Vault may still answer after the
        recovery's poller is done (Azure/azure-sdk-for-net#31581), is waited out, bounded."""
        from azure.core.exceptions import ResourceExistsError
        for delay in (*SETTLE_DELAYS, None):
            try:
                return self.client.set_secret(name, value, tags=tags)
            except ResourceExistsError as exc:
                if delay is None or _inner_code(exc) != "ObjectIsBeingRecovered":
                    raise
                log.info("%s is still being recovered; writing again in %ss", name, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def mark_pending(self, name: str, version: str, tags: dict[str, str], *, enabled: bool = True) -> None:
        self.client.update_secret_properties(T.pending_name(name), version, tags=tags, enabled=enabled)

    def write_current(self, name: str, value: str, tags: dict[str, str], content_type: str | None,
                      expires_on: datetime | None) -> str:
        redact.remember(value)
        written = self.client.set_secret(name, value, tags=tags, content_type=content_type,
                                         expires_on=expires_on, enabled=True)
        return written.properties.version

    def enabled_versions(self, name: str) -> list[str]:
        from azure.core.exceptions import ResourceNotFoundError
        try:
            return [p.version for p in self.client.list_properties_of_secret_versions(name) if p.enabled]
        except ResourceNotFoundError:
            return []

    def disable(self, name: str, version: str) -> None:
        self.client.update_secret_properties(name, version, enabled=False)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        self.client.update_secret_properties(name, version, tags=tags)


def _inner_code(exc) -> str | None:
    try:
        error = exc.response.json().get("error") or {}
        return (error.get("innererror") or {}).get("code")
    except Exception:  # noqa: BLE001 - not Key Vault's error shape
        return None


# -- resources ----------------------------------------------------------------------------------

def _refuse_remote(settings, host_or_url: str) -> None:
    """The sandbox's fake credentials never go to a real service."""
    from jobs.settings import is_loopback
    url = host_or_url if "://" in host_or_url else f"https://{host_or_url}"
    if settings.credential == "sandbox" and not is_loopback(url):
        raise P.RotationError(f"refusing to send a credential to {host_or_url}: OPS_CREDENTIAL=sandbox "
                              "allows loopback addresses only")


class GeneratedResource:
    """Kind generated: no service; the value is made here and checked for form."""

    description = "its own format check"

    def __init__(self, config):
        self.config = config

    def check_current(self, spec, current) -> None:
        return None

    def new_value(self) -> str:
        return generate(self.config)

    def apply(self, credential, value) -> str:
        return value or ""

    def authenticate(self, credential, value: str) -> None:
        alphabet = set(self.config.generated_alphabet)
        if len(value) < 16 or not set(value) <= alphabet:
            raise P.AuthFailed("the value read back from Key Vault is not a generated value")


class _DualKeyResource:
    """Two keys valid at once: rotate the one not in use."""

    description = ""

    def check_current(self, spec: T.RotationSpec, current: P.Current) -> None:
        keys = self.keys()
        if keys.get(spec.credential) == current.value:
            return
        other = [k for k, v in keys.items() if v == current.value]
        if other:
            raise P.RotationError(
                f"{spec.name} holds the {other[0]} key of {self.description}, but {T.CREDENTIAL_TAG} "
                f"says {spec.credential}: fix the tag (rotating would revoke the key in use); "
                "nothing was changed")
        raise P.RotationError(
            f"{spec.name} holds neither key of {self.description}: set it to the {spec.credential} key "
            "(or rotate the key by hand) first; nothing was changed")

    def new_value(self) -> None:
        return None

    def keys(self) -> dict[str, str]:
        raise NotImplementedError


class RedisResource(_DualKeyResource):
    def __init__(self, clients, settings, spec: T.RotationSpec):
        self.settings, self.config = settings, settings.secret_rotation
        self.ops = clients.redis(spec.subscription).redis
        self.group, self.cache = spec.resource_group, spec.resource_name
        self.description = f"Redis cache {self.cache}"

    def _remember(self, result) -> dict[str, str]:
        keys = {"primary": result.primary_key, "secondary": result.secondary_key}
        for value in keys.values():
            redact.remember(value)
        return keys

    def keys(self) -> dict[str, str]:
        return self._remember(self.ops.list_keys(self.group, self.cache))

    def apply(self, credential: str, value: str | None) -> str:
        result = self.ops.regenerate_key(self.group, self.cache, {"keyType": credential.capitalize()})
        return self._remember(result)[credential]

    @cached_property
    def _endpoint(self) -> tuple[str, int]:
        cache = self.ops.get(self.group, self.cache)
        _refuse_remote(self.settings, cache.host_name)
        port = cache.ssl_port if self.config.redis_tls else cache.port
        return cache.host_name, int(port or (6380 if self.config.redis_tls else 6379))

    def authenticate(self, credential: str, value: str) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        host, port = self._endpoint
        timeout = self.config.connect_timeout_seconds
        tls = self.config.redis_tls
        client = redis.Redis(host=host, port=port, password=value, ssl=tls,
                             ssl_ca_certs=self.settings.ca_bundle if tls else None,
                             socket_timeout=timeout, socket_connect_timeout=timeout,
                             retry=Retry(NoBackoff(), 0))  # our own bounded retries, not redis-py's
        try:
            if not client.ping():
                raise P.AuthFailed("PING got no PONG")
        except redis.AuthenticationError:
            raise P.AuthFailed(f"{self.description} refused the {credential} key (AUTH)") from None
        except redis.RedisError as exc:
            raise P.AuthFailed(f"{self.description} could not be reached ({type(exc).__name__})") from None
        finally:
            client.close()


class StorageResource(_DualKeyResource):
    def __init__(self, clients, settings, spec: T.RotationSpec):
        self.settings, self.config = settings, settings.secret_rotation
        self.ops = clients.storage_mgmt(spec.subscription).storage_accounts
        self.storage_kwargs = clients.storage_kwargs  # CA bundle; in sandbox mode, loopback only
        self.group, self.account = spec.resource_group, spec.resource_name
        self.description = f"storage account {self.account}"

    def _remember(self, result) -> dict[str, str]:
        keys = {k.key_name.lower(): k.value for k in result.keys_property}
        for value in keys.values():
            redact.remember(value)
        return keys

    def keys(self) -> dict[str, str]:
        return self._remember(self.ops.list_keys(self.group, self.account))

    def apply(self, credential: str, value: str | None) -> str:
        result = self.ops.regenerate_key(self.group, self.account, {"keyName": credential})
        return self._remember(result)[credential]

    def authenticate(self, credential: str, value: str) -> None:
        from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
        from azure.storage.blob import BlobServiceClient
        url = self.config.blob_endpoint(self.account)
        _refuse_remote(self.settings, url)
        client = BlobServiceClient(url, credential={"account_name": self.account, "account_key": value},
                                   retry_total=0, connection_timeout=self.config.connect_timeout_seconds,
                                   **self.storage_kwargs)
        try:
            client.get_account_information()
        except ClientAuthenticationError:
            raise P.AuthFailed(f"{self.description} refused the {credential} key (Shared Key)") from None
        except HttpResponseError as exc:
            raise P.AuthFailed(f"{self.description} answered HTTP {exc.status_code}") from None
        except AzureError as exc:
            raise P.AuthFailed(f"{self.description} could not be reached ({type(exc).__name__})") from None
        except (ValueError, TypeError):  # not base64: the SDK cannot even sign with it
            raise P.AuthFailed(f"the {credential} value is not a storage account key") from None
        finally:
            client.close()


class PostgresResource:
    def __init__(self, clients, settings, spec: T.RotationSpec, vault: KeyVault):
        self.settings, self.config, self.spec, self.vault = settings, settings.secret_rotation, spec, vault
        self.servers = clients.postgres(spec.subscription).servers
        self.group, self.server_name = spec.resource_group, spec.resource_name
        self.description = f"PostgreSQL server {self.server_name}"

    @cached_property
    def _server(self):
        server = self.servers.get(self.group, self.server_name)
        _refuse_remote(self.settings, server.fully_qualified_domain_name)
        return server

    @property
    def admin_login(self) -> str:
        return self._server.administrator_login

    def check_current(self, spec: T.RotationSpec, current: P.Current) -> None:
        admin = self.admin_login
        if spec.roles and admin in spec.roles:
            raise P.RotationError(f"{T.ROLES_TAG} names the server administrator {admin}; alternate "
                                  "two app roles instead")
        if spec.credential != admin and not spec.admin_secret:
            raise P.RotationError(f"{spec.credential} is not the administrator of {self.description} "
                                  f"({admin}): name the secret holding the administrator's password "
                                  f"in {T.ADMIN_SECRET_TAG}; nothing was changed")
        if spec.mode == T.ALTERNATE_ROLES:
            try:
                self.authenticate(spec.credential, current.value)
            except P.AuthFailed as exc:
                raise P.RotationError(f"{spec.name} does not log in as {spec.credential} ({exc}): "
                                      f"fix {T.CREDENTIAL_TAG}; nothing was changed") from None

    def new_value(self) -> str:
        return generate(self.config)

    def apply(self, credential: str, value: str | None) -> str:
        if not value:
            raise P.RotationError("no password to set")
        if credential == self.admin_login:
            poller = self.servers.begin_update(self.group, self.server_name,
                                               {"properties": {"administratorLoginPassword": value}})
            poller.result()
            return value
        from psycopg import sql
        with self._admin_connection() as conn:
            verifier = conn.pgconn.encrypt_password(value.encode(), credential.encode(),
                                                    b"scram-sha-256").decode()
            conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                sql.Identifier(credential), sql.Literal(verifier)))
        return value

    def _admin_connection(self):
        """As the administrator: the admin secret's current value, or the pending one while
        that secret's own single-role rotation is between SET and PROMOTE."""
        import psycopg
        if not self.spec.admin_secret:
            raise P.RotationError(f"{self.spec.credential} is not the administrator of {self.description}: "
                                  f"set {T.ADMIN_SECRET_TAG}")
        candidates = [self.vault.current(self.spec.admin_secret).value]
        pending = self.vault.pending(self.spec.admin_secret)
        if pending is not None and pending.step in ("set", "tested") and pending.value:
            candidates.append(pending.value)
        for password in candidates:
            try:
                return self._connect(self.admin_login, password)
            except psycopg.OperationalError:
                continue
        raise P.RotationError(f"could not log in as the administrator {self.admin_login} with the "
                              f"password in {self.spec.admin_secret}")

    def _connect(self, user: str, password: str):
        import psycopg
        server = self._server
        sslmode = self.config.postgres_sslmode
        kwargs: dict[str, Any] = {}
        if sslmode != "disable":
            if self.settings.ca_bundle:
                kwargs["sslrootcert"] = self.settings.ca_bundle
            elif sslmode in ("verify-ca", "verify-full"):
                kwargs["sslrootcert"] = "system"
        return psycopg.connect(host=server.fully_qualified_domain_name, port=self.config.postgres_port,
                               user=user, password=password, dbname=self.config.postgres_database,
                               sslmode=sslmode,
                               connect_timeout=max(1, int(self.config.connect_timeout_seconds)),
                               autocommit=True, **kwargs)

    def authenticate(self, credential: str, value: str) -> None:
        import psycopg
        try:
            with self._connect(credential, value) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.OperationalError as exc:
            if "password authentication failed" in str(exc):
                raise P.AuthFailed(f"{self.description} refused the password of {credential}") from None
            raise P.AuthFailed(f"{self.description} could not be reached ({type(exc).__name__})") from None


# -- consumers ----------------------------------------------------------------------------------

class AppConsumers:
    """Refresh (or restart) the App Service apps named in rotation-consumers, after promotion.
    Never a production app unless OPS_SECRET_ROTATION__CONSUMERS_ALLOW_PRODUCTION says so."""

    def __init__(self, clients, config):
        self.clients, self.config = clients, config

    def refresh(self, spec: T.RotationSpec) -> list[str]:
        from azure.core.rest import HttpRequest
        notes, failed = [], []
        verb = "restarted" if self.config.consumer_action == "restart" else "refreshed"
        secret_env = _environment(spec.user_tags)
        for site_id in spec.consumers:
            sub, group, app = T.parse_arm_id(site_id)
            try:
                web = self.clients.web(sub)
                site = web.web_apps.get(group, app)
                env = _environment(site.tags) or secret_env
                if env in self.config.production_tag_values and not self.config.consumers_allow_production:
                    notes.append(f"consumer {group}/{app} not {verb}: production "
                                 "(OPS_SECRET_ROTATION__CONSUMERS_ALLOW_PRODUCTION is off)")
                    continue
                if self.config.consumer_action == "restart":
                    web.web_apps.restart(group, app)
                else:
                    response = web.send_request(HttpRequest(
                        "POST", f"{site.id or site_id}/config/configreferences/appsettings/refresh"
                                f"?api-version={REFRESH_API_VERSION}"))
                    if response.status_code >= 300:
                        raise P.RotationError(f"HTTP {response.status_code}")
                notes.append(f"consumer {group}/{app} {verb}"
                             + (" (Key Vault references)" if verb == "refreshed" else ""))
            except Exception as exc:  # noqa: BLE001 - every consumer is tried, then the step fails once
                failed.append(f"{group}/{app}: {P.describe(exc)}")
        if failed:
            raise P.RotationError("finish: promoted, but could not refresh consumers (the next run "
                                  "retries): " + "; ".join(failed))
        return notes


def _environment(tags: dict[str, str] | None) -> str:
    for key, value in (tags or {}).items():
        if key.lower() == "environment":
            return str(value).strip().lower()
    return ""
