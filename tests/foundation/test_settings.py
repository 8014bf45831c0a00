"""Settings: a bad value names the app setting and the fault; secrets print masked;
the sandbox credential is refused off loopback."""
import json
import subprocess
import sys

import pytest

from jobs.settings import SettingsError, load_settings


@pytest.fixture
def env(clean_env):
    return clean_env


@pytest.mark.parametrize("setting, value, fault", [
    ("OPS_ARM_ENDPOINT", "http://management.example", "OPS_ARM_ENDPOINT must be an https:// URL"),
    ("OPS_CREDENTIAL", "magic", "OPS_CREDENTIAL: Input should be 'default' or 'sandbox'"),
    ("OPS_SCHEDULE_DEV_HOURS", "*/15 * * * *", "OPS_SCHEDULE_DEV_HOURS: must be a six-field NCRONTAB"),
    ("OPS_NOTIFY_TIMEOUT_SECONDS", "soon", "OPS_NOTIFY_TIMEOUT_SECONDS: Input should be a valid number"),
    ("OPS_NOTIFY_KIND", "slack", "OPS_NOTIFY_URL is required when OPS_NOTIFY_KIND=slack"),
])
def test_a_bad_setting_is_named_with_its_fault(env, setting, value, fault):
    env.setenv(setting, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert fault in str(err.value)


def test_the_sandbox_credential_is_refused_unless_every_endpoint_is_loopback(env):
    env.setenv("OPS_CREDENTIAL", "sandbox")
    env.setenv("OPS_SANDBOX_TOKEN", "t0ken-value")
    env.setenv("OPS_ARM_ENDPOINT", "https://127.0.0.1:8443")
    with pytest.raises(SettingsError) as err:
        load_settings()  # metrics, logs still point at public Azure
    assert "OPS_METRICS_ENDPOINT (host eastus.metrics.monitor.azure.com)" in str(err.value)
    assert "OPS_ARM_ENDPOINT" not in str(err.value)


# -- the loopback guard: every endpoint the SDKs would use, however it is spelt ----------------
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
LOOPBACK_BLOB = "http://127.0.0.1:10000/devstoreaccount1"
SANDBOX = "https://127.0.0.1:8443"


def connection(*parts: str) -> str:
    return ";".join(["DefaultEndpointsProtocol=http", "AccountName=devstoreaccount1",
                     f"AccountKey={DEV_KEY}", *parts])


@pytest.fixture
def sandbox_env(env):
    """Sandbox settings with every endpoint on loopback: valid as they are."""
    for name in ("ARM_ENDPOINT", "METRICS_ENDPOINT", "KEYVAULT_URL", "AUTHORITY_HOST"):
        env.setenv(f"OPS_{name}", SANDBOX)
    env.setenv("OPS_LOGS_ENDPOINT", SANDBOX + "/v1")
    env.setenv("OPS_CREDENTIAL", "sandbox")
    env.setenv("OPS_SANDBOX_TOKEN", "t0ken-value")
    env.setenv("AzureWebJobsStorage", connection(f"BlobEndpoint={LOOPBACK_BLOB}"))
    env.setenv("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT", SANDBOX + "/_storage/{account}")
    load_settings()
    return env


@pytest.mark.parametrize("setting, value", [
    # urllib3 ends the host at a backslash: this goes to attacker.example, urlsplit says 127.0.0.1.
    ("OPS_ARM_ENDPOINT", SANDBOX.replace("//", "//attacker.example\\@")),
    ("OPS_ARM_ENDPOINT", SANDBOX.replace("//", "//user:pass@")),
    ("OPS_ARM_ENDPOINT", SANDBOX + "/\ttab"),
    ("OPS_NOTIFY_URL", "https://attacker.example\\@127.0.0.1:9/hook"),
    ("OPS_SLA_SNAPSHOT__STORAGE_ACCOUNT_URL", "https://attacker.example\\@127.0.0.1:10000/acct"),
    # The blob SDK reads keys in any case and the last of a repeated key wins.
    ("AzureWebJobsStorage", connection(f"BlobEndpoint={LOOPBACK_BLOB}",
                                       "blobendpoint=https://attacker.example/devstoreaccount1")),
    ("AzureWebJobsStorage", connection(f"BlobEndpoint={LOOPBACK_BLOB}",
                                       "BlobEndpoint=http://127.0.0.1:10001/devstoreaccount1")),
    # The blob SDK takes only "true" for the emulator; "True" falls through to BlobEndpoint.
    ("AzureWebJobsStorage", "UseDevelopmentStorage=True;BlobEndpoint=https://attacker.example/x"),
    ("AzureWebJobsStorage", connection(f"BlobEndpoint={LOOPBACK_BLOB}",
                                       "BlobSecondaryEndpoint=https://attacker.example/x")),
    ("AzureWebJobsStorage", connection(f"BlobEndpoint={LOOPBACK_BLOB}",
                                       "QueueEndpoint=https://attacker.example/x")),
    ("AzureWebJobsStorage", connection(f"BlobEndpoint={LOOPBACK_BLOB}",
                                       "TableEndpoint =https://attacker.example/x")),
    ("OPS_RUNS_CONNECTION", connection(f"BlobEndpoint={LOOPBACK_BLOB}",
                                       "blobEndpoint=https://attacker.example/x")),
    ("OPS_SLA_SNAPSHOT__STORAGE_CONNECTION", connection(f"BlobEndpoint={LOOPBACK_BLOB}",
                                                        "BLOBENDPOINT=https://attacker.example/x")),
    ("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT", "https://{account}.blob.core.windows.net"),
])
def test_the_sandbox_guard_is_not_bypassed(sandbox_env, setting, value):
    sandbox_env.setenv(setting, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert setting in str(err.value) or (setting == "OPS_RUNS_CONNECTION"
                                         and "AzureWebJobsStorage" in str(err.value))
    assert "attacker.example/" not in str(err.value) and DEV_KEY not in str(err.value)


def test_the_sandbox_guard_checks_the_runs_connection_and_account_url_both(sandbox_env):
    sandbox_env.setenv("OPS_RUNS_ACCOUNT_URL", LOOPBACK_BLOB.replace("http:", "https:"))
    sandbox_env.setenv("AzureWebJobsStorage", f"AccountName=prodacct;AccountKey={DEV_KEY}")
    with pytest.raises(SettingsError) as err:
        load_settings()  # the clients would use the connection string, not the URL
    assert "AzureWebJobsStorage" in str(err.value) and "prodacct.blob.core.windows.net" in str(err.value)


@pytest.mark.parametrize("value", [
    connection(f"BlobEndpoint={LOOPBACK_BLOB}", f"BlobEndpoint={LOOPBACK_BLOB}"),
    connection(f"BlobEndpoint={LOOPBACK_BLOB}", "accountname=other"),
    connection(f"BlobEndpoint={LOOPBACK_BLOB}", f" BlobEndpoint={LOOPBACK_BLOB}"),
    connection("BlobEndpoint=https://evil.example\\@acct.blob.core.windows.net"),
    "not a connection string",
])
def test_an_ambiguous_or_malformed_connection_string_is_refused_for_any_credential(env, value):
    env.setenv("AzureWebJobsStorage", value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "AzureWebJobsStorage" in str(err.value) and DEV_KEY not in str(err.value)


@pytest.mark.parametrize("setting", ["OPS_ARM_ENDPOINT", "OPS_METRICS_ENDPOINT", "OPS_LOGS_ENDPOINT",
                                     "OPS_KEYVAULT_URL", "OPS_AUTHORITY_HOST", "OPS_RUNS_ACCOUNT_URL",
                                     "OPS_NOTIFY_URL", "OPS_ARM_AUDIENCE", "OPS_METRICS_AUDIENCE",
                                     "OPS_SLA_SNAPSHOT__STORAGE_ACCOUNT_URL"])
@pytest.mark.parametrize("value", ["https://evil.example\\@management.azure.com",
                                   "https://user:SECRETPW@management.azure.com",
                                   "https://management.azure.com/a\x01b", "https://management.azure.com/a b"])
def test_an_endpoint_with_user_info_backslash_or_control_characters_is_never_legitimate(env, setting, value):
    env.setenv(setting, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert setting in str(err.value) and "SECRETPW" not in str(err.value)


@pytest.mark.parametrize("connection_string", [
    "UseDevelopmentStorage=true",
    connection(f"BlobEndpoint={LOOPBACK_BLOB}"),
    connection(f"BlobEndpoint={LOOPBACK_BLOB}", "BlobSecondaryEndpoint=http://127.0.0.1:10009/x"),
    f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={DEV_KEY};EndpointSuffix=core.chinacloudapi.cn",
    f"AccountName=acct;AccountKey={DEV_KEY}",
    f"accountname=acct;accountkey={DEV_KEY};endpointsuffix=core.usgovcloudapi.net;defaultendpointsprotocol=https",
    f"BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2024&sig=abc",
])
def test_the_guard_decides_on_the_endpoints_the_blob_sdk_uses(connection_string):
    from azure.storage.blob import BlobServiceClient
    from jobs.settings import storage_endpoints
    sdk = BlobServiceClient.from_connection_string(connection_string)
    found = storage_endpoints(connection_string)
    assert found["blob"] == sdk.url
    assert found.get("blob secondary") == (f"{sdk.scheme}://{sdk.secondary_hostname}"
                                           if sdk.secondary_hostname else None)


# -- errors name the setting and the host, never the whole URL --------------------------------
def test_an_off_loopback_notify_url_is_named_by_host_only(sandbox_env):
    sandbox_env.setenv("OPS_NOTIFY_KIND", "slack")
    sandbox_env.setenv("OPS_NOTIFY_URL", "https://hooks.slack.com/services/T0/B0/SECRETTOKEN?k=QUERYTOKEN")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "OPS_NOTIFY_URL (host hooks.slack.com)" in str(err.value)
    assert "SECRETTOKEN" not in str(err.value) and "QUERYTOKEN" not in str(err.value)


@pytest.mark.parametrize("setting, value", [
    ("OPS_LOGS_ENDPOINT", "http://logs.example/SECRETPATH?sig=SECRETQUERY"),
    ("OPS_RUNS_ACCOUNT_URL", "http://acct.blob.core.windows.net/?sv=1&sig=SECRETQUERY"),
    ("OPS_SLA_SNAPSHOT__STORAGE_ACCOUNT_URL", "ftp://acct.blob.core.windows.net/SECRETPATH?sig=SECRETQUERY"),
    ("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT", "http://{account}.example/SECRETPATH?sig=SECRETQUERY"),
])
def test_a_url_setting_error_shows_the_host_only(env, setting, value):
    env.setenv(setting, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert setting in str(err.value)
    assert "SECRETPATH" not in str(err.value) and "SECRETQUERY" not in str(err.value)


def test_defaults_are_public_azure(env):
    s = load_settings()
    assert s.arm_endpoint == "https://management.azure.com"
    assert s.logs_endpoint == "https://api.loganalytics.io/v1"
    assert s.credential == "default"


def test_lists_are_comma_separated(env):
    env.setenv("OPS_SUBSCRIPTIONS", " sub-a, sub-b ,")
    assert load_settings().subscriptions == ["sub-a", "sub-b"]


def test_config_command_masks_secrets_and_exits_2_when_invalid(app_env):
    import os
    out = subprocess.run([sys.executable, "-m", "jobs", "config"], capture_output=True, text=True,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    token = os.environ["OPS_SANDBOX_TOKEN"]
    assert token not in out.stdout and shown["sandbox_token"] == "**********"
    assert "AccountKey" not in out.stdout
    bad = subprocess.run([sys.executable, "-m", "jobs", "config"], capture_output=True, text=True,
                         env={**os.environ, "OPS_ARM_ENDPOINT": "ftp://x"})
    assert bad.returncode == 2
    assert "OPS_ARM_ENDPOINT must be an https:// URL" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_cli_shows_an_off_loopback_notify_url_by_setting_and_host(app_env):
    import os
    url = "https://hooks.slack.com/services/T0/B0/SECRETTOKEN?k=QUERYTOKEN"
    bad = subprocess.run([sys.executable, "-m", "jobs", "config"], capture_output=True, text=True,
                         env={**os.environ, "OPS_NOTIFY_KIND": "slack", "OPS_NOTIFY_URL": url})
    assert bad.returncode == 2
    assert "OPS_NOTIFY_URL (host hooks.slack.com)" in bad.stderr
    assert "SECRETTOKEN" not in bad.stderr and "QUERYTOKEN" not in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_test_harness_refuses_what_the_sandbox_guard_refuses():
    from jobs.settings import off_loopback
    loopback = {"OPS_ARM_ENDPOINT": SANDBOX, "AzureWebJobsStorage": connection(f"BlobEndpoint={LOOPBACK_BLOB}"),
                "OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT": SANDBOX + "/_storage/{account}"}
    assert off_loopback(loopback) == []
    assert off_loopback({**loopback, "OPS_ARM_ENDPOINT": SANDBOX.replace("//", "//attacker.example\\@")})
    assert off_loopback({**loopback, "AzureWebJobsStorage": connection(
        f"BlobEndpoint={LOOPBACK_BLOB}", "blobendpoint=https://attacker.example/x")})
    assert off_loopback({**loopback, "OPS_RUNS_CONNECTION": "UseDevelopmentStorage=True;BlobEndpoint=https://a.example"})
    assert off_loopback({**loopback, "OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT": "https://{account}.example"})
