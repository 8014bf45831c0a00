"""Microsoft.Storage: storage accounts, their access keys and lifecycle
management policy, as `azure-mgmt-storage` calls them; plus a tiny blob data
plane so that a job can test an account key for real (Shared Key signature
checked against key1 or key2, exactly as Azure Storage checks it).

World shapes:
- a storage account is an ARM resource (type `Microsoft.Storage/storageAccounts`);
  its access keys live in the private member `_sandbox.keys`
  (`{"key1": "<base64>", "key2": "<base64>"}`; generated on first use when
  absent) and their creation times in the public `properties.keyCreationTime`.
- the management policy is its own resource, id `<account id>/managementPolicies/default`
  (type `Microsoft.Storage/storageAccounts/managementPolicies`), so a world file
  can seed one: `{"id": ..., "properties": {"policy": {"rules": [...]}}}`.
  An account has at most one; writing it replaces every rule.

Data plane: the account's blob endpoint is `<sandbox>/_storage/<account>/`
(answered as `properties.primaryEndpoints.blob`). Clients must name the
account in the credential, e.g.
`BlobServiceClient(url, credential={"account_name": name, "account_key": key})`
(path-style URLs do not carry the account in the host name). Served:
Get Account Information and List Containers (always empty).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape

from sandbox.server import ApiError, Request, Response, not_found, paged, route
from sandbox.world import World, public

ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
POLICY_TYPE = "Microsoft.Storage/storageAccounts/managementPolicies"
DATA_PLANE = "/_storage"  # exempted from bearer auth and api-version in sandbox/server.py
KEY_NAMES = ("key1", "key2")
CLOCK_SKEW = timedelta(minutes=15)  # Shared Key requests older than this are refused

_ACCOUNT = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")



def _account(world: World, sub: str, rg: str, name: str) -> dict[str, Any]:
    account = world.get(_ACCOUNT.format(sub=sub, rg=rg, name=name))
    if account is None or account.get("type", "").lower() != ACCOUNT_TYPE.lower():
        raise not_found(_ACCOUNT.format(sub=sub, rg=rg, name=name), f"{ACCOUNT_TYPE}/{name}")
    return account


def new_key() -> str:
    """An account key as Azure makes them: 64 random bytes, base64 (88 characters)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


def account_keys(account: dict[str, Any]) -> dict[str, str]:
    """The account's keys (caller holds world.lock), created when the world has none."""
    keys = account.setdefault("_sandbox", {}).setdefault("keys", {})
    props = account.setdefault("properties", {})
    created = props.setdefault("keyCreationTime", {})
    for key_name in KEY_NAMES:
        if not keys.get(key_name):
            keys[key_name] = new_key()
        created.setdefault(key_name, props.get("creationTime") or _iso(_now()))
    return keys


def _keys_body(account: dict[str, Any]) -> dict[str, Any]:
    keys = account_keys(account)
    created = account["properties"]["keyCreationTime"]
    # The example writes "Full"; the service answers "FULL" (the SDK's enum is case-insensitive).
    return {"keys": [{"creationTime": created[k], "keyName": k, "value": keys[k], "permissions": "FULL"}
                     for k in KEY_NAMES]}


def _public_account(req: Request, account: dict[str, Any]) -> dict[str, Any]:
    body = public(account)
    endpoints = body.setdefault("properties", {}).setdefault("primaryEndpoints", {})
    endpoints["blob"] = f"{req.base_url}{DATA_PLANE}/{account['name']}/"
    return body


# -- storage accounts ------------------------------------------------------------------
@route("GET", _ACCOUNT, "Microsoft.Storage/storageAccounts/read")
def get_account(req: Request, world: World, sub: str, rg: str, name: str):
    # specification/storage/resource-manager/Microsoft.Storage/stable/2025-08-01/examples/StorageAccountGetProperties.json
    with world.lock:
        return _public_account(req, _account(world, sub, rg, name))


@route("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts",
       "Microsoft.Storage/storageAccounts/listByResourceGroup")
def list_by_resource_group(req: Request, world: World, sub: str, rg: str):
    # specification/storage/resource-manager/Microsoft.Storage/stable/2025-08-01/examples/StorageAccountListByResourceGroup.json
    with world.lock:
        items = [_public_account(req, a)
                 for a in world.of_type(ACCOUNT_TYPE, f"/subscriptions/{sub}/resourceGroups/{rg}")]
    return paged(req, items)


@route("GET", "/subscriptions/{sub}/providers/Microsoft.Storage/storageAccounts",
       "Microsoft.Storage/storageAccounts/list")
def list_accounts(req: Request, world: World, sub: str):
    # specification/storage/resource-manager/Microsoft.Storage/stable/2025-08-01/examples/StorageAccountList.json
    with world.lock:
        items = [_public_account(req, a) for a in world.of_type(ACCOUNT_TYPE, f"/subscriptions/{sub}")]
    return paged(req, items)


@route("POST", _ACCOUNT + "/listKeys", "Microsoft.Storage/storageAccounts/listKeys/action")
def list_keys(req: Request, world: World, sub: str, rg: str, name: str):
    # specification/storage/resource-manager/Microsoft.Storage/stable/2025-08-01/examples/StorageAccountListKeys.json
    with world.lock:
        return _keys_body(_account(world, sub, rg, name))


@route("POST", _ACCOUNT + "/regenerateKey", "Microsoft.Storage/storageAccounts/regenerateKey/action")
def regenerate_key(req: Request, world: World, sub: str, rg: str, name: str):
    # specification/storage/resource-manager/Microsoft.Storage/stable/2025-08-01/examples/StorageAccountRegenerateKey.json
    body = req.json() or {}
    key_name = str(body.get("keyName", "")).lower() if isinstance(body, dict) else ""
    if key_name not in KEY_NAMES:
        raise ApiError(400, "InvalidValuesForRequestParameters",
                       "Values for request parameters are invalid: keyName.")
    with world.lock:
        account = _account(world, sub, rg, name)
        account_keys(account)[key_name] = new_key()
        account["properties"]["keyCreationTime"][key_name] = _iso(_now())
        world.version += 1
        return _keys_body(account)


# -- management policy (one per account, named "default") -------------------------------
def _policy_id(sub: str, rg: str, name: str) -> str:
    return _ACCOUNT.format(sub=sub, rg=rg, name=name) + "/managementPolicies/default"


def _check_policy_name(policy: str) -> None:
    if policy.lower() != "default":
        raise ApiError(400, "InvalidValuesForRequestParameters",
                       "Values for request parameters are invalid: managementPolicyName.")


def _public_policy(policy: dict[str, Any], sub: str, rg: str, name: str) -> dict[str, Any]:
    body = public(policy)
    body.update({"id": _policy_id(sub, rg, name), "name": "DefaultManagementPolicy", "type": POLICY_TYPE})
    return body


@route("GET", _ACCOUNT + "/managementPolicies/{policy}", "Microsoft.Storage/storageAccounts/managementPolicies/read")
def get_policy(req: Request, world: World, sub: str, rg: str, name: str, policy: str):
    # specification/storage/resource-manager/Microsoft.Storage/stable/2025-08-01/examples/StorageAccountGetManagementPolicy.json
    _check_policy_name(policy)
    with world.lock:
        _account(world, sub, rg, name)
        found = world.get(_policy_id(sub, rg, name))
        if found is None:
            raise ApiError(404, "ManagementPolicyNotFound", f"No ManagementPolicy found for account {name}")
        return _public_policy(found, sub, rg, name)


@route("PUT", _ACCOUNT + "/managementPolicies/{policy}", "Microsoft.Storage/storageAccounts/managementPolicies/write")
def put_policy(req: Request, world: World, sub: str, rg: str, name: str, policy: str):
    # specification/storage/resource-manager/Microsoft.Storage/stable/2025-08-01/examples/StorageAccountSetManagementPolicy.json
    _check_policy_name(policy)
    body = req.json() or {}
    rules = ((body.get("properties") or {}).get("policy") or {}).get("rules") if isinstance(body, dict) else None
    if not isinstance(rules, list):
        raise ApiError(400, "InvalidRequestContent", "The request content was invalid: properties.policy.rules is required.")
    names = [r.get("name") for r in rules if isinstance(r, dict)]
    if len(names) != len(rules) or not all(isinstance(n, str) and n for n in names):
        raise ApiError(400, "InvalidRequestContent", "The request content was invalid: every rule needs a name.")
    if len({n for n in names}) != len(names):
        raise ApiError(400, "InvalidRequestContent", "The request content was invalid: rule names must be unique.")
    with world.lock:
        _account(world, sub, rg, name)
        stored = {"id": _policy_id(sub, rg, name), "type": POLICY_TYPE,
                  "properties": {"lastModifiedTime": _iso(_now()),
                                 "policy": {"rules": [dict(r, enabled=r.get("enabled", True)) for r in rules]}}}
        world.put(stored)  # replaces every rule, as Azure does
        return _public_policy(stored, sub, rg, name)


@route("DELETE", _ACCOUNT + "/managementPolicies/{policy}", "Microsoft.Storage/storageAccounts/managementPolicies/delete")
def delete_policy(req: Request, world: World, sub: str, rg: str, name: str, policy: str):
    # specification/storage/resource-manager/Microsoft.Storage/stable/2025-08-01/examples/StorageAccountDeleteManagementPolicy.json
    _check_policy_name(policy)
    with world.lock:
        _account(world, sub, rg, name)
        existed = world.delete(_policy_id(sub, rg, name))
    return Response(200 if existed else 204)


# -- blob data plane (Shared Key) ---------------------------------------------------------
class StorageError(ApiError):
    """Azure Storage's XML error, with the code also in `x-ms-error-code`."""

    def __init__(self, status: int, code: str, message: str, detail: str | None = None):
        super().__init__(status, code, message, shape="storage")
        self.detail = detail

    def response(self) -> Response:
        message = f"{self.message}\nRequestId:{uuid.uuid4()}\nTime:{_iso(_now())}"
        xml = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{escape(self.code)}</Code>'
               f"<Message>{escape(message)}</Message>")
        if self.detail:
            xml += f"<AuthenticationErrorDetail>{escape(self.detail)}</AuthenticationErrorDetail>"
        xml += "</Error>"
        return Response(self.status, xml.encode(), {"Content-Type": "application/xml",
                                                    "x-ms-error-code": self.code})


def _auth_failed(detail: str) -> StorageError:
    return StorageError(403, "AuthenticationFailed",
                        "Server failed to authenticate the request. Make sure the value of Authorization "
                        "header is formed correctly including the signature.", detail)


def string_to_sign(req: Request, account_name: str) -> str:
    """Shared Key string-to-sign for the Blob service, version 2009-09-19 and later
    (learn.microsoft.com: "Authorize with Shared Key")."""
    h = req.headers
    length = h.get("content-length", "")
    standard = [req.method, h.get("content-encoding", ""), h.get("content-language", ""),
                "" if length == "0" else length, h.get("content-md5", ""), h.get("content-type", ""),
                h.get("date", ""), h.get("if-modified-since", ""), h.get("if-match", ""),
                h.get("if-none-match", ""), h.get("if-unmodified-since", ""), h.get("range", "")]
    canonical_headers = "".join(f"{k}:{' '.join(v.split())}\n"
                                for k, v in sorted(h.items()) if k.startswith("x-ms-"))
    resource = f"/{account_name}{req.path}"
    for key in sorted(req.query, key=str.lower):
        resource += f"\n{key.lower()}:{req.query[key]}"
    return "\n".join(standard) + "\n" + canonical_headers + resource


def _sign(key: str, text: str) -> str:
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_shared_key(req: Request, account_name: str, keys: dict[str, str]) -> None:
    auth = req.headers.get("authorization", "")
    if not auth:
        raise StorageError(401, "NoAuthenticationInformation",
                           "Server failed to authenticate the request. Please refer to the information "
                           "in the www-authenticate header.")
    scheme, _, credential = auth.partition(" ")
    claimed, _, signature = credential.partition(":")
    if scheme != "SharedKey" or not signature:
        raise _auth_failed(f"The authentication scheme or credential is not supported: '{scheme}'.")
    if claimed != account_name:
        raise _auth_failed(f"Issuer account '{claimed}' does not match the account being accessed.")
    stamp = req.headers.get("x-ms-date") or req.headers.get("date")
    if not stamp:
        raise _auth_failed("Request date header not specified.")
    try:
        sent = parsedate_to_datetime(stamp)
    except (TypeError, ValueError):
        raise _auth_failed(f"The Date header in the request is incorrect: '{stamp}'.") from None
    if sent < _now() - CLOCK_SKEW:
        raise _auth_failed(f"Request date header too old: '{stamp}'")
    if sent > _now() + CLOCK_SKEW:
        raise _auth_failed(f"Request date header is in the future: '{stamp}'")
    text = string_to_sign(req, account_name)
    if not any(hmac.compare_digest(_sign(k, text), signature) for k in keys.values() if k):
        raise _auth_failed(f"The MAC signature found in the HTTP request '{signature}' is not the same "
                           f"as any computed signature. Server used following string to sign: '{text}'.")


def _account_by_name(world: World, name: str) -> dict[str, Any]:
    for account in world.of_type(ACCOUNT_TYPE):
        if account.get("name", "").lower() == name.lower():
            return account
    raise StorageError(404, "ResourceNotFound", "The specified resource does not exist.")


@route("GET", DATA_PLANE + "/{account}", "Microsoft.Storage/blobServices/dataPlane")
def blob_service(req: Request, world: World, account: str):
    """GET /?restype=account&comp=properties (Get Account Information) or
    GET /?comp=list (List Containers): the calls a key test can make."""
    with world.lock:
        found = _account_by_name(world, account)
        keys = dict(account_keys(found))
        sku = (found.get("sku") or {}).get("name", "Standard_LRS")
        kind = found.get("kind", "StorageV2")
        hns = bool((found.get("properties") or {}).get("isHnsEnabled", False))
    verify_shared_key(req, found["name"], keys)
    headers = {"x-ms-version": req.headers.get("x-ms-version", ""), "Date": format_datetime(_now(), usegmt=True)}
    restype, comp = req.query.get("restype", ""), req.query.get("comp", "")
    if (restype, comp) == ("account", "properties"):
        # learn.microsoft.com: "Get Account Information" (response headers only).
        headers.update({"x-ms-sku-name": sku, "x-ms-account-kind": kind,
                        "x-ms-is-hns-enabled": str(hns).lower()})
        return Response(200, b"", headers)
    if comp == "list":
        # learn.microsoft.com: "List Containers" (the sandbox holds no containers).
        xml = (f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint='
               f'"{escape(req.base_url)}{DATA_PLANE}/{escape(found["name"])}/"><Containers /><NextMarker />'
               f"</EnumerationResults>")
        headers["Content-Type"] = "application/xml"
        return Response(200, xml.encode(), headers)
    raise StorageError(400, "InvalidQueryParameterValue",
                       "Value for one of the query parameters specified in the request URI is invalid.")
