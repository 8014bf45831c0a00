"""With OPS_CREDENTIAL=sandbox no request leaves loopback, whatever a response links to:
the sandbox is told to answer with nextLink and long-running-operation URLs on another
host, and the real SDK clients must refuse them before connecting."""
import time

import pytest
from azure.core.rest import HttpRequest

DEV = "00000000-0000-0000-0000-000000000001"
OFF_HOST = "https://attacker.example"


def logged(app_env, operation_prefix):
    return [e for e in app_env.sandbox.request_log() if e["operation"].startswith(operation_prefix)]


def assert_refused(err, took):
    text = str(err.value)
    assert "attacker.example" in text and "OPS_CREDENTIAL=sandbox" in text
    assert "/subscriptions/" not in text  # the host only, never the link
    assert took < 5, "refused at once, not after connection retries (backoff 0.8+1.6+3.2 s)"


def test_a_next_link_off_loopback_is_refused(app_env, clients):
    sites = clients.web(DEV).web_apps.list()
    assert len(list(sites)) > app_env.sandbox.page_size  # the list has a second page
    app_env.sandbox.faults.configure({"link_base": OFF_HOST})
    app_env.sandbox.clear_log()
    started = time.monotonic()
    with pytest.raises(Exception) as err:
        list(clients.web(DEV).web_apps.list())
    assert_refused(err, time.monotonic() - started)
    assert [e["status"] for e in logged(app_env, "Microsoft.Web/sites/")] == [200]


def test_a_long_running_operation_polled_off_loopback_is_refused(app_env, clients):
    web = clients.web(DEV)
    plan = web.app_service_plans.get("rg-shopfront-dev", "plan-shopfront-dev")
    app_env.sandbox.faults.configure({"link_base": OFF_HOST})
    app_env.sandbox.clear_log()
    started = time.monotonic()
    with pytest.raises(Exception) as err:
        web.app_service_plans.begin_create_or_update(
            "rg-shopfront-dev", "plan-shopfront-dev",
            {"location": plan.location, "tags": plan.tags, "sku": plan.sku.as_dict()}).result()
    assert_refused(err, time.monotonic() - started)
    assert [e["operation"] for e in logged(app_env, "Microsoft.Web/")] == ["Microsoft.Web/serverfarms/write"]


def test_a_key_vault_next_link_off_loopback_is_refused(app_env, clients):
    assert len(list(clients.secrets.list_properties_of_secrets())) > app_env.sandbox.page_size
    app_env.sandbox.faults.configure({"link_base": OFF_HOST})
    started = time.monotonic()
    with pytest.raises(Exception) as err:
        list(clients.secrets.list_properties_of_secrets())
    assert_refused(err, time.monotonic() - started)


@pytest.mark.parametrize("build", [
    lambda c: c.web(DEV), lambda c: c.consumption(DEV), lambda c: c.storage_mgmt(DEV),
    lambda c: c.redis(DEV), lambda c: c.postgres(DEV), lambda c: c.cost, lambda c: c.metrics,
    lambda c: c.logs, lambda c: c.secrets,
], ids=["web", "consumption", "storage", "redis", "postgres", "cost", "metrics", "logs", "secrets"])
def test_every_client_refuses_an_off_loopback_request(app_env, clients, build):
    client = build(clients)
    # azure-mgmt-redis has no send_request of its own; its pipeline client has.
    send = getattr(client, "send_request", None) or client._client.send_request
    started = time.monotonic()
    with pytest.raises(Exception) as err:
        send(HttpRequest("GET", OFF_HOST + "/subscriptions/x?api-version=1"))
    assert_refused(err, time.monotonic() - started)


def test_the_blob_clients_refuse_an_off_loopback_account(app_env):
    from jobs.clients import Clients
    from jobs.settings import load_settings
    # As if a settings check had a hole: the transport still refuses.
    settings = load_settings()
    settings = settings.model_copy(update={"runs_connection": None,
                                           "runs_account_url": OFF_HOST + "/acct"})
    started = time.monotonic()
    with pytest.raises(Exception) as err:
        list(Clients(settings).blob_service.list_containers())
    assert_refused(err, time.monotonic() - started)


def test_loopback_requests_still_pass(app_env, clients):
    assert len(list(clients.web(DEV).web_apps.list())) > app_env.sandbox.page_size
    assert list(clients.blob_service.list_containers()) is not None
