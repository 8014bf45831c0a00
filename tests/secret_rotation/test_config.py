"""OPS_SECRET_ROTATION__* settings: defaults, parsing, and faults named by app setting."""

import pytest

from jobs.settings import SettingsError, load_settings


@pytest.fixture
def env(clean_env):
    return clean_env


def test_defaults(env):
    s = load_settings().secret_rotation
    assert (s.default_period_days, s.near_expiry_days, s.grace_days, s.max_failed_attempts) == (90, 14, 7, 3)
    assert s.blob_endpoint("stx") == "https://stx.blob.core.windows.net"
    assert (s.postgres_port, s.postgres_sslmode, s.redis_tls) == (5432, "require", True)
    assert (s.consumer_action, s.consumers_allow_production) == ("off", False)
    assert s.production_tag_values == ["prod", "production", "prd"]
    assert len(s.generated_alphabet) == 64 and s.generated_length == 48


def test_values_from_app_settings(env):
    env.setenv("OPS_SECRET_ROTATION__DEFAULT_PERIOD_DAYS", "30")
    env.setenv("OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT", "https://127.0.0.1:8443/_storage/{account}/")
    env.setenv("OPS_SECRET_ROTATION__PRODUCTION_TAG_VALUES", "Live, prod")
    env.setenv("OPS_SECRET_ROTATION__CONSUMER_ACTION", "restart")
    s = load_settings().secret_rotation
    assert s.default_period_days == 30 and s.consumer_action == "restart"
    assert s.blob_endpoint("st1") == "https://127.0.0.1:8443/_storage/st1"
    assert s.production_tag_values == ["live", "prod"]


@pytest.mark.parametrize("name, value, fault", [
    ("DEFAULT_PERIOD_DAYS", "0", "OPS_SECRET_ROTATION__DEFAULT_PERIOD_DAYS: Input should be greater than or equal to 1"),
    ("MAX_FAILED_ATTEMPTS", "many", "OPS_SECRET_ROTATION__MAX_FAILED_ATTEMPTS: Input should be a valid integer"),
    ("STORAGE_BLOB_ENDPOINT", "https://blob.example", "OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT: must contain {account}"),
    ("STORAGE_BLOB_ENDPOINT", "http://{account}.example", "must be an https:// URL template"),
    ("POSTGRES_SSLMODE", "strict", "OPS_SECRET_ROTATION__POSTGRES_SSLMODE: Input should be 'disable'"),
    ("GENERATED_ALPHABET", "abc", "OPS_SECRET_ROTATION__GENERATED_ALPHABET: needs at least 16 distinct characters"),
    ("GENERATED_ALPHABET", "abcdefghijklmnop qrs", "no whitespace"),
    ("GENERATED_LENGTH", "8", "OPS_SECRET_ROTATION__GENERATED_LENGTH: Input should be greater than or equal to 16"),
    ("TEST_MAX_DELAY_SECONDS", "0.5", "must be at least OPS_SECRET_ROTATION__TEST_DELAY_SECONDS"),
    ("CONSUMER_ACTION", "bounce", "OPS_SECRET_ROTATION__CONSUMER_ACTION: Input should be 'off', 'refresh' or 'restart'"),
    ("NOT_A_SETTING", "1", "OPS_SECRET_ROTATION__NOT_A_SETTING: Extra inputs are not permitted"),
])
def test_a_bad_value_names_the_setting(env, name, value, fault):
    env.setenv(f"OPS_SECRET_ROTATION__{name}", value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert fault in str(err.value)


def test_the_sandbox_provides_its_data_plane_endpoints(app_env):
    env = app_env.env()
    s = load_settings().secret_rotation
    assert s.blob_endpoint("stx") == f"{app_env.sandbox.url}/_storage/stx"
    if "SANDBOX_POSTGRES_PORT" in env:
        assert s.postgres_port == int(env["SANDBOX_POSTGRES_PORT"])
        assert s.postgres_sslmode == env["SANDBOX_POSTGRES_SSLMODE"]
