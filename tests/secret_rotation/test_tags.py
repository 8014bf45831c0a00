"""The tag grammar: what is rotated and how; every fault named with the secret."""
import pytest

from jobs.secret_rotation import tags as T

SUB = "00000000-0000-0000-0000-000000000001"
PG = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql"
REDIS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Cache/Redis/cache"
STORAGE = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st"
SITE = f"/subscriptions/{SUB}/resourceGroups/rg-apps/providers/Microsoft.Web/sites/app-one"


def spec(tags, name="s"):
    return T.parse(name, tags, 90)


@pytest.mark.parametrize("tags", [None, {}, {"owner": "team"}, {"rotation-id": "leftover"}])
def test_untagged_secrets_are_left_alone(tags):
    assert spec(tags) is None


@pytest.mark.parametrize("tags, expected", [
    ({"rotation-kind": "generated"}, ("generated", T.LOCAL, None, 90)),
    ({"rotation-kind": "Generated ", "rotation-period-days": "30"}, ("generated", T.LOCAL, None, 30)),
    ({"rotation-kind": "redis-key", "rotation-resource": REDIS, "rotation-credential": "Primary"},
     ("redis-key", T.DUAL, "primary", 90)),
    ({"rotation-kind": "redis", "rotation-resource": REDIS, "rotation-credential": "secondary"},
     ("redis-key", T.DUAL, "secondary", 90)),
    ({"rotation-kind": "storage", "rotation-resource": STORAGE, "rotation-credential": "key2"},
     ("storage-key", T.DUAL, "key2", 90)),
    ({"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "admin_user"},
     ("postgres-password", T.SINGLE_ROLE, "admin_user", 90)),
    ({"rotation-kind": "postgres-password", "rotation-resource": PG, "rotation-credential": "app_b",
      "rotation-roles": "app_a, app_b", "rotation-admin-secret": "db-admin"},
     ("postgres-password", T.ALTERNATE_ROLES, "app_b", 90)),
])
def test_valid_tag_sets(tags, expected):
    s = spec(tags)
    assert (s.kind, s.mode, s.credential, s.period_days) == expected


def test_next_credential_alternates_or_stays():
    assert spec({"rotation-kind": "redis-key", "rotation-resource": REDIS,
                 "rotation-credential": "primary"}).next_credential() == "secondary"
    assert spec({"rotation-kind": "storage-key", "rotation-resource": STORAGE,
                 "rotation-credential": "key2"}).next_credential() == "key1"
    alt = spec({"rotation-kind": "postgres-password", "rotation-resource": PG, "rotation-credential": "app_b",
                "rotation-roles": "app_a,app_b", "rotation-admin-secret": "db-admin"})
    assert (alt.next_credential(), alt.roles, alt.admin_secret) == ("app_a", ("app_a", "app_b"), "db-admin")
    single = spec({"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app"})
    assert single.next_credential() == "app" and not single.keeps_previous
    assert (single.subscription, single.resource_group, single.resource_name) == (SUB, "rg", "psql")


def test_consumers_short_and_full_forms():
    s = spec({"rotation-kind": "redis-key", "rotation-resource": REDIS, "rotation-credential": "primary",
              "rotation-consumers": f"rg-apps/app-one, {SITE}"})
    assert s.consumers == (SITE, SITE)


@pytest.mark.parametrize("tags, fault", [
    ({"rotation-period-days": "30"}, "rotation-kind is missing (it has rotation-period-days)"),
    ({"rotation-kind": "mysql"}, "rotation-kind 'mysql' is not one of generated, postgres-password"),
    ({"rotation-kind": "generated", "rotation-period-days": "every month"},
     "rotation-period-days must be a whole number of days from 1 to 3650, got 'every month'"),
    ({"rotation-kind": "generated", "rotation-period-days": "0"}, "from 1 to 3650, got '0'"),
    ({"rotation-kind": "generated", "rotation-resource": REDIS}, "rotation-resource not used by kind generated"),
    ({"rotation-kind": "generated", "rotation-consumers": "rg/app"}, "needs a full resource id"),
    ({"rotation-kind": "redis-key", "rotation-credential": "primary"}, "rotation-resource is missing"),
    ({"rotation-kind": "redis-key", "rotation-resource": "cache", "rotation-credential": "primary"},
     "rotation-resource is not a resource id"),
    ({"rotation-kind": "redis-key", "rotation-resource": STORAGE, "rotation-credential": "primary"},
     "is a Microsoft.Storage/storageAccounts, but kind redis-key needs a Microsoft.Cache/Redis"),
    ({"rotation-kind": "redis-key", "rotation-resource": REDIS}, "rotation-credential is missing"),
    ({"rotation-kind": "redis-key", "rotation-resource": REDIS, "rotation-credential": "key1"},
     "rotation-credential 'key1' is not primary or secondary"),
    ({"rotation-kind": "storage-key", "rotation-resource": STORAGE, "rotation-credential": "primary"},
     "rotation-credential 'primary' is not key1 or key2"),
    ({"rotation-kind": "storage-key", "rotation-resource": STORAGE, "rotation-credential": "key1",
      "rotation-roles": "a,b"}, "rotation-roles not used by kind storage-key"),
    ({"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "app-user"},
     "'app-user' is not a plain PostgreSQL role name"),
    ({"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "a", "rotation-roles": "a"},
     "rotation-roles must name two different roles"),
    ({"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "c",
      "rotation-roles": "a,b", "rotation-admin-secret": "adm"}, "rotation-credential 'c' is not one of"),
    ({"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "a", "rotation-roles": "a,b"},
     "rotation-roles needs rotation-admin-secret"),
    ({"rotation-kind": "postgres", "rotation-resource": PG, "rotation-credential": "a",
      "rotation-admin-secret": "s"}, "rotation-admin-secret names the secret itself"),
    ({"rotation-kind": "redis-key", "rotation-resource": REDIS, "rotation-credential": "primary",
      "rotation-consumers": "not an app"}, "neither rg/app nor an app's resource id"),
    ({"rotation-kind": "redis-key", "rotation-resource": REDIS, "rotation-credential": "primary",
      "rotation-consumers": REDIS}, "is not an App Service app"),
    ({"rotation-kind": "generated", **{f"t{i}": "x" for i in range(12)}}, "Key Vault allows 15"),
])
def test_malformed_tag_sets_name_the_secret_and_the_fault(tags, fault):
    with pytest.raises(T.TagError) as err:
        spec(tags)
    assert err.value.secret == "s"
    assert str(err.value).startswith("s: ")
    assert fault in err.value.fault


def test_names_that_do_not_fit_a_pending_secret():
    with pytest.raises(T.TagError, match="too long for its pending secret"):
        T.parse("x" * 120, {"rotation-kind": "generated"})
    with pytest.raises(T.TagError, match="reserved for pending rotations"):
        T.parse("db--pending", {"rotation-kind": "generated"})
