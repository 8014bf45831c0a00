"""Settings of sla-snapshot: targets in a compact app setting (or JSON), defaults
from the seed, and lifecycle settings that would pay early deletion refused
with the reason."""
import pytest
from pydantic import ValidationError

from jobs.settings import SettingsError, load_settings
from jobs.sla_snapshot.config import SlaSnapshotSettings
from tests.sla_snapshot.helpers import WORKSPACE, app_id, redis_id


@pytest.fixture
def env(clean_env):
    return clean_env


def error(**values) -> str:
    with pytest.raises(ValidationError) as err:
        SlaSnapshotSettings(**values)
    return str(err.value)


def test_defaults_follow_the_seed():
    s = SlaSnapshotSettings()
    assert (s.objective("production"), s.objective("staging"), s.objective("development")) == (
        0.999, 0.995, 0.99)
    assert (s.latency_p95_ms, s.latency_p99_ms, s.cache_hit_ratio_target) == (500, 1000, 80)
    assert (s.storage_container, s.period, s.lifecycle_rule_prefix) == (
        "sla-snapshots", "hour", "ops-sla-")
    assert (s.lifecycle_tier, s.lifecycle_tier_after_days, s.lifecycle_delete_after_days) == (
        "cool", 30, 400)
    assert s.targets == []


def test_a_compact_target_list_names_app_environment_workspace_and_cache():
    s = SlaSnapshotSettings(targets=(
        f"{app_id('Shop')}|prod|{WORKSPACE.upper()}|{redis_id('shop-cache')} ;\n"
        f" {app_id('admin')}|dev||| admin-role "))
    shop, admin = s.targets
    assert (shop.name, shop.environment, shop.workspace_id, shop.role) == (
        "shop", "production", WORKSPACE, "shop")
    assert shop.redis_id == redis_id("shop-cache").lower()
    assert (admin.name, admin.environment, admin.workspace_id, admin.redis_id, admin.role) == (
        "admin", "development", None, None, "admin-role")


def test_a_json_target_list_is_accepted_too():
    s = SlaSnapshotSettings(targets=(
        f'[{{"app": "{app_id("shop")}", "environment": "staging", "workspace": "{WORKSPACE}"}}]'))
    assert s.targets[0].environment == "staging" and s.targets[0].redis_id is None


@pytest.mark.parametrize("targets, fault", [
    ("/subscriptions/x/sites/shop|production", "target 1: '/subscriptions/x/sites/shop' is not an App Service app resource id"),
    (f"{app_id('shop')}|live", "target 1: environment 'live' is not production, staging or development"),
    (f"{app_id('shop')}", "target 1 ("),
    (f"{app_id('shop')}|prod|not-a-guid", "workspace 'not-a-guid' is not a Log Analytics workspace ID"),
    (f"{app_id('shop')}|prod||{app_id('oops')}", "is not an Azure Cache for Redis resource id"),
    (f"{app_id('shop')}|prod|||role|extra", "6 fields; expected at most 5"),
    (f"{app_id('shop')}|prod;{app_id('shop').replace('rg-web', 'rg-2')}|dev",
     "more than one app named shop"),
    (f"{app_id('a')}|prod|{WORKSPACE}||web;{app_id('b')}|prod|{WORKSPACE}||web",
     "role web is used by two apps in one workspace"),
    ('[{"app": 1', "looks like JSON but is not valid JSON"),
    ('[{"site": "x"}]', "unknown key(s) site"),
])
def test_a_bad_target_says_which_and_why(targets, fault):
    assert fault in error(targets=targets)


@pytest.mark.parametrize("tier, tier_after, delete_after", [
    ("cool", 30, 400),   # the default
    ("cool", 30, 60),    # exactly 30 days in Cool
    ("cold", 30, 120),   # exactly 90 days in Cold
    ("archive", 30, 210),
    ("none", 30, 90),    # 90-day retention: delete from Hot, no minimum
    ("archive", 30, 0),  # never deleted
])
def test_lifecycle_settings_without_early_deletion_are_accepted(tier, tier_after, delete_after):
    s = SlaSnapshotSettings(lifecycle_tier=tier, lifecycle_tier_after_days=tier_after,
                            lifecycle_delete_after_days=delete_after)
    assert s.lifecycle_delete_after_days == delete_after


@pytest.mark.parametrize("tier, tier_after, delete_after, why", [
    ("cool", 30, 59, "Cool bills at least 30 days, so delete at day 60 or later"),
    ("cold", 30, 119, "Cold bills at least 90 days, so delete at day 120 or later"),
    # DOMAIN.md: archive at day 60 and delete at day 90 pays early deletion
    ("archive", 60, 90, "Archive bills at least 180 days, so delete at day 240 or later"),
])
def test_lifecycle_settings_that_pay_early_deletion_are_refused(tier, tier_after, delete_after,
                                                                why):
    message = error(lifecycle_tier=tier, lifecycle_tier_after_days=tier_after,
                    lifecycle_delete_after_days=delete_after)
    assert "would pay an early-deletion charge" in message and why in message
    assert f"OPS_SLA_SNAPSHOT__LIFECYCLE_DELETE_AFTER_DAYS={delete_after}" in message


@pytest.mark.parametrize("values, fault", [
    ({"objective_production": 100}, "less than 100"),
    ({"latency_p95_ms": 800, "latency_p99_ms": 500}, "OPS_SLA_SNAPSHOT__LATENCY_P99_MS=500 is below"),
    ({"storage_container": "SLA_snapshots"}, "is not a blob container name"),
    ({"storage_account_url": "http://acct.blob.core.windows.net"}, "must be an https:// blob endpoint"),
    ({"storage_account_id": "/subscriptions/x/storageAccounts/a"}, "is not a storage account resource id"),
    ({"lifecycle_rule_prefix": ""}, "an empty prefix would claim every rule"),
    ({"storage_connection": "UseDevelopmentStorage=true",
      "storage_account_url": "https://a.blob.core.windows.net"}, "not both"),
])
def test_other_bad_settings_are_refused_with_the_reason(values, fault):
    assert fault in error(**values)


def test_azurite_over_http_on_loopback_is_allowed():
    s = SlaSnapshotSettings(storage_account_url="http://127.0.0.1:10000/devstoreaccount1/")
    assert s.storage_account_url == "http://127.0.0.1:10000/devstoreaccount1"


def test_app_settings_reach_the_job_and_a_bad_one_is_named(env):
    env.setenv("OPS_SLA_SNAPSHOT__TARGETS", f"{app_id('shop')}|staging")
    env.setenv("OPS_SLA_SNAPSHOT__OBJECTIVE_STAGING", "99.95")
    env.setenv("OPS_SLA_SNAPSHOT__STORAGE_CONNECTION", "UseDevelopmentStorage=true")
    s = load_settings().sla_snapshot
    assert s.targets[0].name == "shop" and s.objective("staging") == 0.9995
    assert "UseDevelopmentStorage" not in str(load_settings().masked())  # a secret, masked
    env.setenv("OPS_SLA_SNAPSHOT__LIFECYCLE_DELETE_AFTER_DAYS", "45")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "OPS_SLA_SNAPSHOT__LIFECYCLE_DELETE_AFTER_DAYS=45 would pay an early-deletion" in str(
        err.value)
    env.setenv("OPS_SLA_SNAPSHOT__LIFECYCLE_DELETE_AFTER_DAYS", "400")
    env.setenv("OPS_SLA_SNAPSHOT__TARGETS", f"{app_id('shop')}|live")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "OPS_SLA_SNAPSHOT__TARGETS: target 1: environment 'live'" in str(err.value)
