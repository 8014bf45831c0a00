"""Microsoft.Storage in the sandbox through the real StorageManagementClient, and
its Shared Key data plane through the real BlobServiceClient."""
import json
import ssl
import urllib.error
import urllib.request

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-shopfront-dev"
ACCOUNT = "stshopfrontdev"
SEEDED_KEY1 = "cQWwLL18wG9Ix+FBKz863g/zBQfLtAkxLaKBxFmTV39NgGfMwkrlH5FLT5r1PTTgZP9OrEY9bSOiE0GMAcKU1w=="


def _blob(app_env, clients, key: str) -> BlobServiceClient:
    url = clients.storage_mgmt(SUB).storage_accounts.get_properties(RG, ACCOUNT).primary_endpoints.blob
    return BlobServiceClient(url, credential={"account_name": ACCOUNT, "account_key": key},
                             connection_verify=str(app_env.ca_file))


def _keys(clients) -> dict[str, str]:
    return {k.key_name: k.value for k in clients.storage_mgmt(SUB).storage_accounts.list_keys(RG, ACCOUNT).keys_property}


def test_get_account_hides_keys_and_points_blob_at_the_sandbox(app_env, clients):
    account = clients.storage_mgmt(SUB).storage_accounts.get_properties(RG, ACCOUNT)
    assert (account.name, account.sku.name, account.kind) == (ACCOUNT, "Standard_LRS", "StorageV2")
    assert account.primary_endpoints.blob == f"{app_env.sandbox.url}/_storage/{ACCOUNT}/"
    raw = json.dumps(app_env.world.snapshot())  # the world holds the key ...
    assert SEEDED_KEY1 in raw
    assert SEEDED_KEY1 not in json.dumps(account.as_dict())  # ... Azure never returns it here


def test_list_keys(app_env, clients):
    result = clients.storage_mgmt(SUB).storage_accounts.list_keys(RG, ACCOUNT)
    assert [(k.key_name, k.permissions) for k in result.keys_property] == [("key1", "FULL"), ("key2", "FULL")]
    assert result.keys_property[0].value == SEEDED_KEY1
    assert all(k.creation_time is not None for k in result.keys_property)
    # The Key Vault secret the rotation reads holds the same key.
    assert clients.secrets.get_secret("shopfront-storage-key").value == SEEDED_KEY1


def test_regenerate_one_key_keeps_the_other(app_env, clients):
    mgmt = clients.storage_mgmt(SUB).storage_accounts
    before = _keys(clients)
    created_before = mgmt.get_properties(RG, ACCOUNT).key_creation_time.key2
    after = {k.key_name: k.value for k in mgmt.regenerate_key(RG, ACCOUNT, {"keyName": "key2"}).keys_property}
    assert after["key1"] == before["key1"] and after["key2"] != before["key2"]
    assert _keys(clients) == after
    assert mgmt.get_properties(RG, ACCOUNT).key_creation_time.key2 > created_before
    with pytest.raises(HttpResponseError) as err:
        mgmt.regenerate_key(RG, ACCOUNT, {"keyName": "key3"})
    assert err.value.status_code == 400


def test_shared_key_data_plane_follows_regeneration(app_env, clients):
    old = _keys(clients)
    info = _blob(app_env, clients, old["key1"]).get_account_information()
    assert (info["sku_name"], info["account_kind"]) == ("Standard_LRS", "StorageV2")
    assert list(_blob(app_env, clients, old["key2"]).list_containers()) == []

    mgmt = clients.storage_mgmt(SUB).storage_accounts
    new = {k.key_name: k.value for k in mgmt.regenerate_key(RG, ACCOUNT, {"keyName": "key1"}).keys_property}
    with pytest.raises(ClientAuthenticationError) as err:
        _blob(app_env, clients, old["key1"]).get_account_information()
    assert err.value.status_code == 403
    assert err.value.error_code == "AuthenticationFailed"
    assert _blob(app_env, clients, new["key1"]).get_account_information()["sku_name"] == "Standard_LRS"
    assert _blob(app_env, clients, old["key2"]).get_account_information()  # the other key still works


def test_data_plane_refuses_unsigned_requests_and_wrong_accounts(app_env, clients):
    ctx = ssl.create_default_context(cafile=str(app_env.ca_file))
    url = f"{app_env.sandbox.url}/_storage/{ACCOUNT}/?restype=account&comp=properties"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, context=ctx)
    assert err.value.code == 401 and err.value.headers["x-ms-error-code"] == "NoAuthenticationInformation"
    mgmt = clients.storage_mgmt(SUB).storage_accounts
    staging_key = mgmt.list_keys("rg-shopfront-staging", "stshopfrontstaging").keys_property[0].value
    with pytest.raises(ClientAuthenticationError):  # another account's key is no key for this one
        _blob(app_env, clients, staging_key).get_account_information()


def test_get_account_that_does_not_exist(app_env, clients):
    with pytest.raises(ResourceNotFoundError) as err:
        clients.storage_mgmt(SUB).storage_accounts.get_properties(RG, "stnosuchaccount")
    assert err.value.error.code == "ResourceNotFound"


def test_management_policy_is_one_document_replaced_on_write(app_env, clients):
    policies = clients.storage_mgmt(SUB).management_policies
    seeded = policies.get(RG, ACCOUNT, "default")
    assert seeded.name == "DefaultManagementPolicy"
    assert seeded.type == "Microsoft.Storage/storageAccounts/managementPolicies"
    assert [r.name for r in seeded.policy.rules] == ["data-platform-archive-exports"]

    ours = {"enabled": True, "name": "ops-delete-run-records", "type": "Lifecycle",
            "definition": {"filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["ops-runs/"]},
                           "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 90}}}}}
    merged = [r.as_dict() for r in seeded.policy.rules] + [ours]
    written = policies.create_or_update(RG, ACCOUNT, "default", {"properties": {"policy": {"rules": merged}}})
    assert [r.name for r in written.policy.rules] == ["data-platform-archive-exports", "ops-delete-run-records"]
    assert written.last_modified_time is not None
    assert [r.name for r in policies.get(RG, ACCOUNT, "default").policy.rules] == [
        "data-platform-archive-exports", "ops-delete-run-records"]

    # Writing replaces every rule: the other team's rule is gone if not carried over.
    policies.create_or_update(RG, ACCOUNT, "default", {"properties": {"policy": {"rules": [ours]}}})
    assert [r.name for r in policies.get(RG, ACCOUNT, "default").policy.rules] == ["ops-delete-run-records"]

    policies.delete(RG, ACCOUNT, "default")
    with pytest.raises(ResourceNotFoundError) as err:
        policies.get(RG, ACCOUNT, "default")
    assert err.value.error.code == "ManagementPolicyNotFound"
    policies.delete(RG, ACCOUNT, "default")  # deleting what is not there does not fail


def test_management_policy_validation(app_env, clients):
    policies = clients.storage_mgmt(SUB).management_policies
    with pytest.raises(HttpResponseError) as err:
        policies.get(RG, ACCOUNT, "custom")
    assert err.value.status_code == 400
    rule = {"name": "same", "type": "Lifecycle", "definition": {"actions": {}}}
    with pytest.raises(HttpResponseError) as err:
        policies.create_or_update(RG, ACCOUNT, "default", {"properties": {"policy": {"rules": [rule, rule]}}})
    assert err.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):  # no policy on an account without one
        policies.get("rg-shopfront-staging", "stshopfrontstaging", "default")
