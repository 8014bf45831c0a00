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
    assert "OPS_METRICS_ENDPOINT=https://eastus.metrics.monitor.azure.com" in str(err.value)
    assert "OPS_ARM_ENDPOINT" not in str(err.value)


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
