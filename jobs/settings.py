"""The one settings object of the app, read from environment / app settings.

Job code gets its settings from here and never reads ``os.environ`` itself.
Every endpoint is a setting with a public-cloud default, so the same code runs
against Azure, a sovereign cloud or the local sandbox. A bad value fails with
a message naming the app setting and what is wrong. Secrets are ``SecretStr``
so they print masked.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

from pydantic import (AliasChoices, Field, SecretStr,
                      ValidationError, field_validator, model_validator)
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.budget_check.config import BudgetCheckSettings
from jobs.config_types import CommaList
from jobs.registry import JOBS
from jobs.dev_hours.config import DevHoursSettings
from jobs.secret_rotation.config import SecretRotationSettings
from jobs.sla_snapshot.config import SlaSnapshotSettings
from jobs.urls import host, is_loopback, url_fault

__all__ = ["Settings", "SettingsError", "is_loopback", "load_settings", "off_loopback",
           "storage_endpoints"]

ENV_PREFIX = "OPS_"
# Endpoints the app sends its token to: https only.
HTTPS_ONLY = ("arm_endpoint", "metrics_endpoint", "logs_endpoint", "keyvault_url",
              "authority_host", "runs_account_url")
AUDIENCES = ("arm_audience", "metrics_audience")  # token scopes, never requested



class SettingsError(Exception):
    """Invalid configuration; the message names every bad app setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore", env_ignore_empty=True,
        populate_by_name=True)

    # Endpoints (public Azure by default).
    arm_endpoint: str = "https://management.azure.com"
    arm_audience: str = "https://management.azure.com"
    metrics_endpoint: str = "https://eastus.metrics.monitor.azure.com"
    metrics_audience: str = "https://metrics.monitor.azure.com"
    logs_endpoint: str = "https://api.loganalytics.io/v1"
    keyvault_url: str | None = None
    authority_host: str = "https://login.microsoftonline.com"
    ca_bundle: str | None = None  # PEM file trusted for TLS (the sandbox CA)

    credential: Literal["default", "sandbox"] = "default"
    sandbox_token: SecretStr | None = None

    subscriptions: CommaList = []

    # Run records, locks and job state live in this storage account.
    runs_connection: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPS_RUNS_CONNECTION", "AzureWebJobsStorage"))
    runs_account_url: str | None = None  # identity-based alternative to a connection string
    runs_container: str = "ops-runs"
    # The one-run-per-job lock is a blob lease of this many seconds, renewed every third of
    # it: a killed run blocks the next one at most this long. Azure takes 15-60 s leases.
    lock_seconds: int = Field(default=60, ge=15, le=60)

    # Timer schedules (six-field NCRONTAB, UTC). The Functions host reads these
    # app settings itself (%OPS_SCHEDULE_...%); they are here to be validated and shown.
    schedule_dev_hours: str = JOBS["dev-hours"].default_schedule
    schedule_budget_check: str = JOBS["budget-check"].default_schedule
    schedule_secret_rotation: str = JOBS["secret-rotation"].default_schedule
    schedule_sla_snapshot: str = JOBS["sla-snapshot"].default_schedule

    timer_dry_run: bool = False  # timers plan and report but change nothing (a safe rollout)

    notify_kind: Literal["none", "webhook", "slack", "teams"] = "none"
    notify_url: SecretStr | None = None  # incoming-webhook URLs embed a secret
    notify_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    dev_hours: DevHoursSettings = DevHoursSettings()
    budget_check: BudgetCheckSettings = BudgetCheckSettings()
    secret_rotation: SecretRotationSettings = SecretRotationSettings()
    sla_snapshot: SlaSnapshotSettings = SlaSnapshotSettings()

    @field_validator("schedule_dev_hours", "schedule_budget_check", "schedule_secret_rotation",
                     "schedule_sla_snapshot")
    @classmethod
    def _ncrontab(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 6:
            raise ValueError(f"must be a six-field NCRONTAB expression "
                             f"(second minute hour day month weekday), got {value!r}")
        if not all(re.fullmatch(r"[0-9A-Za-z*/,\-]+", f) for f in fields):
            raise ValueError(f"has characters NCRONTAB does not allow: {value!r}")
        return value

    def schedule(self, job: str) -> str:
        return getattr(self, "schedule_" + job.replace("-", "_"))

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        endpoints = self.endpoints()
        for name, url in [*self.urls().items(), *endpoints.items()]:
            if url and url_fault(url):
                raise ValueError(f"{name} {url_fault(url)}")
        for name in HTTPS_ONLY:
            url = getattr(self, name)
            if url and urlsplit(url).scheme != "https":
                raise ValueError(f"{env_name(name)} must be an https:// URL, "
                                 f"got {urlsplit(url).scheme}:// on host {host(url)}")
        if self.notify_kind != "none" and not self.notify_url:
            raise ValueError(f"{ENV_PREFIX}NOTIFY_URL is required when {ENV_PREFIX}NOTIFY_KIND={self.notify_kind}")
        if self.credential == "sandbox":
            if not self.sandbox_token:
                raise ValueError(f"{ENV_PREFIX}SANDBOX_TOKEN is required with {ENV_PREFIX}CREDENTIAL=sandbox")
            remote = [f"{k} (host {host(v)})" for k, v in endpoints.items() if v and not is_loopback(v)]
            if remote:
                raise ValueError(
                    f"{ENV_PREFIX}CREDENTIAL=sandbox is refused while endpoints are not on loopback: "
                    + ", ".join(remote))
        return self

    def urls(self) -> dict[str, str | None]:
        """Every URL-valued setting, by app setting name (token audiences included)."""
        named = {env_name(n): getattr(self, n) for n in (*HTTPS_ONLY, *AUDIENCES)}
        named[env_name("notify_url")] = self.notify_url.get_secret_value() if self.notify_url else None
        named[env_name("sla_snapshot", "storage_account_url")] = self.sla_snapshot.storage_account_url
        named[env_name("secret_rotation", "storage_blob_endpoint")] = \
            self.secret_rotation.blob_endpoint("account")
        return named

    def endpoints(self) -> dict[str, str | None]:
        """Every address the app may talk to, by setting name: each storage connection
        string gives every endpoint in it, the one the blob SDK picks first."""
        audiences = {env_name(n) for n in AUDIENCES}
        found = {k: v for k, v in self.urls().items() if k not in audiences}
        if self.credential != "default":  # only DefaultAzureCredential signs in at the authority
            found[env_name("authority_host")] = None
        for setting, connection in ((env_name("runs_connection"), self.runs_connection),
                                    (env_name("sla_snapshot", "storage_connection"),
                                     self.sla_snapshot.storage_connection)):
            if connection is not None:
                try:
                    named = storage_endpoints(connection)
                except ValueError as exc:
                    raise ValueError(f"{setting} {exc}") from None
                found.update({f"{setting} {key}": url for key, url in named.items()})
        return found

    def masked(self) -> dict[str, Any]:
        """The effective settings, secrets shown as '**********'."""
        return self.model_dump(mode="json")


def env_name(*loc: Any) -> str:
    """('dev_hours', 'timezone') -> 'OPS_DEV_HOURS__TIMEZONE'."""
    if len(loc) == 1 and loc[0] in ("AzureWebJobsStorage", "OPS_RUNS_CONNECTION", "runs_connection"):
        return "AzureWebJobsStorage"
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc if not isinstance(part, int))


def storage_endpoints(connection: SecretStr | str) -> dict[str, str]:
    """Every endpoint a storage connection string names: "blob" and "blob secondary"
    as the blob SDK itself resolves them, then each *Endpoint key as written (the
    Functions host uses the queue and table ones). A key given twice, in any letter
    case, is refused: parsers disagree on which one wins. Messages never quote the
    string (it holds the account key)."""
    from azure.core.utils import parse_connection_string
    from azure.storage.blob import BlobServiceClient
    text = connection.get_secret_value() if isinstance(connection, SecretStr) else connection
    try:
        keys = parse_connection_string(text, case_sensitive_keys=False)
    except ValueError as exc:
        raise ValueError(f"is not a valid connection string ({exc}); "
                         "give each key once, as Key=value pairs separated by ';'") from None
    if len({key.strip() for key in keys}) != len(keys):
        raise ValueError("gives a key twice (once with spaces around it)")
    try:
        sdk = BlobServiceClient.from_connection_string(text)
    except ValueError:
        raise ValueError("names no usable blob endpoint (BlobEndpoint, or AccountName "
                         "with EndpointSuffix, or UseDevelopmentStorage=true)") from None
    found = {"blob": sdk.url}
    if sdk.secondary_hostname:
        found["blob secondary"] = f"{sdk.scheme}://{sdk.secondary_hostname}"
    found.update({key.strip(): value for key, value in keys.items() if key.strip().endswith("endpoint")})
    return found


# Raw app settings that hold an endpoint, for checks before any Settings exist (the test harness).
URL_SETTINGS = ("OPS_ARM_ENDPOINT", "OPS_METRICS_ENDPOINT", "OPS_LOGS_ENDPOINT", "OPS_KEYVAULT_URL",
                "OPS_AUTHORITY_HOST", "OPS_RUNS_ACCOUNT_URL", "OPS_NOTIFY_URL",
                "OPS_SLA_SNAPSHOT__STORAGE_ACCOUNT_URL", "OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT")
CONNECTION_SETTINGS = ("AzureWebJobsStorage", "OPS_RUNS_CONNECTION", "OPS_SLA_SNAPSHOT__STORAGE_CONNECTION")


def off_loopback(env: Mapping[str, str]) -> list[str]:
    """The endpoint settings in ``env`` that are malformed or not on loopback, each as
    'NAME (host H)' or 'NAME: fault'; the same checks as OPS_CREDENTIAL=sandbox."""
    found: list[str] = []
    for name in URL_SETTINGS:
        url = (env.get(name) or "").replace("{account}", "account")
        if url and not is_loopback(url):
            found.append(f"{name} (host {host(url)})")
    for name in CONNECTION_SETTINGS:
        if env.get(name):
            try:
                urls = storage_endpoints(env[name])
            except ValueError as exc:
                found.append(f"{name}: {exc}")
                continue
            found += [f"{name} {key} (host {host(url)})" for key, url in urls.items()
                      if not is_loopback(url)]
    return found


def load_settings() -> Settings:
    """Read and validate; raise SettingsError naming each bad setting."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if p != "__root__"]
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{env_name(*loc)}: {msg}" if loc else msg)
    return "invalid settings:\n  " + "\n  ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, validated once."""
    return load_settings()
