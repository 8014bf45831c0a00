"""The one place that builds Azure clients.

Lazy and cached: a client is built the first time a job asks for it, and each
SDK module is imported only then (cold start; azure-core, which all share, at
once). Every endpoint and the CA bundle come from settings, so the same code
talks to Azure or to the local sandbox; in sandbox mode no request leaves loopback.
Nothing here decides anything; jobs receive clients and use them.
"""
from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from azure.core.pipeline.policies import SansIOHTTPPolicy

from jobs.settings import Settings, SettingsError
from jobs.urls import host, is_loopback


class RemoteRequestRefused(Exception):
    """A request off loopback with OPS_CREDENTIAL=sandbox. Not an AzureError, so the
    SDKs' retry policies let it through at once instead of retrying it."""


class LoopbackOnly(SansIOHTTPPolicy):
    """A pipeline policy for sandbox mode: refuses any request whose host is not
    loopback. Settings are checked at start; this catches the URLs that come from
    responses (nextLink pages, Azure-AsyncOperation / Location polls, redirects)."""

    def on_request(self, request) -> None:
        url = request.http_request.url
        if not is_loopback(url):
            raise RemoteRequestRefused(f"refused a request to host {host(url)}: with "
                                       "OPS_CREDENTIAL=sandbox every request stays on loopback")


class SandboxCredential:
    """A fixed bearer token for the local sandbox. Refused off loopback (the settings
    validator checks every endpoint before this is built, LoopbackOnly every request)."""

    def __init__(self, token: str):
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken
        import time
        return AccessToken(self._token, int(time.time()) + 3600)

    def close(self) -> None:
        pass


class Clients:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._per_subscription: dict[tuple[str, str], Any] = {}

    @property
    def _transport_kwargs(self) -> dict[str, Any]:
        # After the retry and redirect policies: every attempt and every hop is checked.
        return self._client_kwargs("per_retry_policies")

    @property
    def storage_kwargs(self) -> dict[str, Any]:
        # azure-storage-blob takes no per_retry_policies; these run last, after its retries.
        return self._client_kwargs("_additional_pipeline_policies")

    def _client_kwargs(self, policies_option: str) -> dict[str, Any]:
        """The CA bundle, and in sandbox mode LoopbackOnly under the client's option name."""
        kwargs: dict[str, Any] = {"connection_verify": self.settings.ca_bundle or True}
        if self.settings.credential == "sandbox":
            kwargs[policies_option] = [LoopbackOnly()]
        return kwargs

    @cached_property
    def credential(self):
        s = self.settings
        if s.credential == "sandbox":
            return SandboxCredential(s.sandbox_token.get_secret_value())
        from azure.identity import DefaultAzureCredential
        return DefaultAzureCredential(authority=s.authority_host,
                                      exclude_interactive_browser_credential=True)

    def _arm(self, kind: str, subscription_id: str, factory) -> Any:
        key = (kind, subscription_id)
        with self._lock:
            if key not in self._per_subscription:
                self._per_subscription[key] = factory(
                    self.credential, subscription_id, base_url=self.settings.arm_endpoint,
                    credential_scopes=[self.settings.arm_audience.rstrip("/") + "/.default"],
                    **self._transport_kwargs)
            return self._per_subscription[key]

    def web(self, subscription_id: str):
        from azure.mgmt.web import WebSiteManagementClient
        return self._arm("web", subscription_id, WebSiteManagementClient)

    def consumption(self, subscription_id: str):
        from azure.mgmt.consumption import ConsumptionManagementClient
        return self._arm("consumption", subscription_id, ConsumptionManagementClient)

    def storage_mgmt(self, subscription_id: str):
        from azure.mgmt.storage import StorageManagementClient
        return self._arm("storage", subscription_id, StorageManagementClient)

    def redis(self, subscription_id: str):
        from azure.mgmt.redis import RedisManagementClient
        return self._arm("redis", subscription_id, RedisManagementClient)

    def postgres(self, subscription_id: str):
        from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient
        return self._arm("postgres", subscription_id, PostgreSQLManagementClient)

    @cached_property
    def cost(self):
        """Cost Management is scoped per call, not per subscription."""
        from azure.mgmt.costmanagement import CostManagementClient
        return CostManagementClient(
            self.credential, base_url=self.settings.arm_endpoint,
            credential_scopes=[self.settings.arm_audience.rstrip("/") + "/.default"],
            **self._transport_kwargs)

    @cached_property
    def metrics(self):
        from azure.monitor.querymetrics import MetricsClient
        return MetricsClient(self.settings.metrics_endpoint, self.credential,
                             audience=self.settings.metrics_audience, **self._transport_kwargs)

    @cached_property
    def logs(self):
        from azure.monitor.query import LogsQueryClient
        return LogsQueryClient(self.credential, endpoint=self.settings.logs_endpoint,
                               **self._transport_kwargs)

    @cached_property
    def secrets(self):
        from azure.keyvault.secrets import SecretClient
        url = self.settings.keyvault_url
        if not url:
            raise SettingsError("OPS_KEYVAULT_URL: required by this job")
        return SecretClient(url, self.credential,
                            verify_challenge_resource=not is_loopback(url),
                            **self._transport_kwargs)

    @cached_property
    def blob_service(self):
        """The storage account holding run records, locks and job state."""
        from azure.storage.blob import BlobServiceClient
        s = self.settings
        if s.runs_connection:
            return BlobServiceClient.from_connection_string(
                s.runs_connection.get_secret_value(), **self.storage_kwargs)
        if s.runs_account_url:
            return BlobServiceClient(s.runs_account_url, credential=self.credential,
                                     **self.storage_kwargs)
        raise SettingsError("AzureWebJobsStorage: required (or OPS_RUNS_ACCOUNT_URL)")

    @cached_property
    def sla_snapshot_blob_service(self):
        """The storage account holding SLA snapshots: the runs account unless
        OPS_SLA_SNAPSHOT__STORAGE_CONNECTION or __STORAGE_ACCOUNT_URL names another."""
        s = self.settings.sla_snapshot
        if s.storage_connection is None and not s.storage_account_url:
            return self.blob_service
        from azure.storage.blob import BlobServiceClient
        if s.storage_connection is not None:
            return BlobServiceClient.from_connection_string(
                s.storage_connection.get_secret_value(), **self.storage_kwargs)
        return BlobServiceClient(s.storage_account_url, credential=self.credential,
                                 **self.storage_kwargs)
