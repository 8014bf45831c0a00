"""Key Vault secrets (data plane), as `azure-keyvault-secrets` calls them.

Faithful where a rotation job depends on it: versions (listed in version-id
order, which is random hex, not time order), tags per version (a new version
does not inherit them), disabled versions refusing reads (403 SecretDisabled),
soft delete (a deleted name cannot be set again until purged or recovered:
409 ObjectIsDeletedButRecoverable), purge and recover. Recovery is asynchronous,
as in Azure: for a while after the recover call the secret still answers 404 and
a write 409 ObjectIsBeingRecovered (the SDK's poller waits it out). Secret ids
use the request's own base URL.

World section `secrets` (seeded from the world file), a list of:

    {"name": "shopfront-db-password",      # 1-127 of [0-9a-zA-Z-]
     "value": "...",                        # the current (latest) version
     "content_type": "text/plain",          # optional
     "tags": {"rotation-kind": "postgres"}, # optional, of the latest version only
     "enabled": true,                       # optional, default true
     "created": "2026-09-01T08:00:00Z",     # optional ISO time or relative to the world's
                                            # loading ("-30d", "+12h"); default: world load
     "updated": "...",                      # optional, default: created
     "expires": "+5d", "not_before": "...", # optional, times as above
     "version": "0f3c...",                  # optional 32-hex id, default: derived from name and position
     "versions": [                          # optional OLDER versions, oldest first, same
        {"value": "...", "created": "...", "enabled": false, "tags": {}, ...}],   # keys as above
     "deleted": {"deleted_date": "...",     # optional: seeded as soft-deleted
                 "scheduled_purge_date": "..."}}

World section `keyvault_timing` (optional): {"recover_seconds": 1.5}, how long a
recovery takes (default 0: at once), and "recover_settle_seconds": how much longer
a write (PUT) of the recovered name still answers 409 ObjectIsBeingRecovered
although reads work (Azure/azure-sdk-for-net#31581; default 0).

The handlers keep their working state in the section `keyvault` (built from
`secrets` on first use after each world reset). Values are never logged.
"""
from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from sandbox.server import ApiError, Request, Response, paged, route
from sandbox.world import World

RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90
_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_HELP = "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"


class KeyVaultError(ApiError):
    """Key Vault's error shape: {"error": {"code", "message", "innererror": {"code"}}}."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None):
        super().__init__(status, code, message, shape="keyvault")
        self.inner = inner

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return Response(self.status, {"error": error}, dict(self.headers))


def secret_not_found(name: str, version: str = "") -> KeyVaultError:
    # The service's message, e.g. Azure/azure-sdk-for-js#25489.
    name_id = f"{name}/{version}" if version else name
    return KeyVaultError(404, "SecretNotFound",
                         f"A secret with (name/id) {name_id} was not found in this key vault. If you "
                         f"recently deleted this secret you may be able to recover it using the correct "
                         f"recovery command. {_HELP}")


def deleted_secret_not_found(name: str) -> KeyVaultError:
    # As answered for GET /deletedsecrets/{name} (Azure/azure-sdk-for-net#26027).
    return KeyVaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")


def secret_disabled() -> KeyVaultError:
    # Azure/azure-sdk-for-js#24756: 403 Forbidden, innererror SecretDisabled.
    return KeyVaultError(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                         "SecretDisabled")


def deleted_but_recoverable(name: str) -> KeyVaultError:
    return KeyVaultError(409, "Conflict",
                         f"Secret {name} is currently in a deleted but recoverable state, and its name "
                         f"cannot be reused; in this state, the secret can only be recovered or purged.",
                         "ObjectIsDeletedButRecoverable")


def being_recovered(name: str) -> KeyVaultError:
    # As answered while a recovery runs (hashicorp/terraform-provider-azurerm#12285).
    return KeyVaultError(409, "Conflict", f"Secret {name} is currently being recovered and cannot be "
                         "re-created; retry later.", "ObjectIsBeingRecovered")


def bad_parameter(message: str) -> KeyVaultError:
    return KeyVaultError(400, "BadParameter", message)


# -- state -------------------------------------------------------------------------
_RELATIVE = re.compile(r"^([+-]\d+)([dhm])$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60}


def _unix(value: Any, default: int | None = None, now: int | None = None) -> int | None:
    """Unix seconds from a number, an ISO time or (world files) a time relative
    to the world's loading, e.g. "-30d", "+5d", "+12h"."""
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)):
        return int(value)
    relative = _RELATIVE.match(str(value))
    if relative:
        return int(now if now is not None else time.time()) + int(relative[1]) * _UNIT_SECONDS[relative[2]]
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


def _seed_version(name: str, spec: dict[str, Any], index: int, loaded_at: int) -> dict[str, Any]:
    created = _unix(spec.get("created"), loaded_at, loaded_at)
    # Stable across resets, and (like Key Vault's) unrelated to creation order.
    version = spec.get("version") or hashlib.sha256(f"{name.lower()}/{index}".encode()).hexdigest()[:32]
    return {
        "version": version.lower(),
        "value": spec.get("value", ""),
        "content_type": spec.get("content_type"),
        "tags": dict(spec.get("tags") or {}),
        "enabled": bool(spec.get("enabled", True)),
        "created": created,
        "updated": _unix(spec.get("updated"), created, loaded_at),
        "exp": _unix(spec.get("expires"), None, loaded_at),
        "nbf": _unix(spec.get("not_before"), None, loaded_at),
    }


def _store(world: World) -> dict[str, Any]:
    """The working state (caller holds world.lock): {lower name: secret}."""
    store = world.sections.get("keyvault")
    if store is None:
        loaded_at = int(time.time())
        store = {}
        for spec in world.section("secrets", []):
            name = spec["name"]
            older = list(spec.get("versions") or [])
            versions = [_seed_version(name, v, i, loaded_at) for i, v in enumerate(older)]
            versions.append(_seed_version(name, spec, len(older), loaded_at))
            deleted = spec.get("deleted")
            store[name.lower()] = {
                "name": name,
                "versions": versions,  # creation order; the last is the current version
                "deleted": None if not deleted else {
                    "deleted_date": _unix(deleted.get("deleted_date"), loaded_at, loaded_at),
                    "scheduled_purge_date": _unix(deleted.get("scheduled_purge_date"),
                                                  loaded_at + RECOVERABLE_DAYS * 86400, loaded_at)},
            }
        world.sections["keyvault"] = store
    return store


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise bad_parameter(f"The request URI contains an invalid name: {name}")


def _recovering(secret: dict[str, Any]) -> bool:
    """Recovered, but the recovery has not completed yet."""
    return time.time() < secret.get("recovery_done_at", 0)


def _live(world: World, name: str) -> dict[str, Any]:
    secret = _store(world).get(name.lower())
    if secret is None or secret["deleted"] or _recovering(secret):
        raise secret_not_found(name)
    return secret


def _find_version(secret: dict[str, Any], version: str) -> dict[str, Any]:
    if not version:
        return secret["versions"][-1]
    for v in secret["versions"]:
        if v["version"] == version.lower():
            return v
    raise secret_not_found(secret["name"], version)


def _page_size(req: Request) -> int:
    """The sandbox's page size, or less when the client asks (`maxresults`, at most 25)."""
    try:
        wanted = int(req.query.get("maxresults", "0"))
    except ValueError:
        raise bad_parameter("maxresults must be an integer between 1 and 25.") from None
    return min(req.page_size, wanted) if wanted > 0 else req.page_size


# -- shapes --------------------------------------------------------------------------
def _attributes(v: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": v["enabled"]}
    if v["nbf"] is not None:
        attrs["nbf"] = v["nbf"]
    if v["exp"] is not None:
        attrs["exp"] = v["exp"]
    attrs.update({"created": v["created"], "updated": v["updated"],
                  "recoverableDays": RECOVERABLE_DAYS, "recoveryLevel": RECOVERY_LEVEL})
    return attrs


def _bundle(req: Request, secret: dict[str, Any], v: dict[str, Any], *, value: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if value:
        body["value"] = v["value"]
    body["id"] = f"{req.base_url}/secrets/{secret['name']}/{v['version']}"
    if v["content_type"] is not None:
        body["contentType"] = v["content_type"]
    body["attributes"] = _attributes(v)
    if v["tags"]:
        body["tags"] = dict(v["tags"])
    return body


def _item(req: Request, secret: dict[str, Any], v: dict[str, Any], *, versioned: bool) -> dict[str, Any]:
    item = _bundle(req, secret, v, value=False)
    if not versioned:
        item["id"] = f"{req.base_url}/secrets/{secret['name']}"
    return item


def _deleted(req: Request, secret: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    deleted = secret["deleted"]
    return {"recoveryId": f"{req.base_url}/deletedsecrets/{secret['name']}",
            "deletedDate": deleted["deleted_date"],
            "scheduledPurgeDate": deleted["scheduled_purge_date"], **body}


# -- handlers -------------------------------------------------------------------------
# Routes with a literal last segment come before /secrets/{name}/{version}.
@route("GET", "/secrets/{name}/versions", "KeyVault/secrets/versions/list")
def list_versions(req: Request, world: World, name: str):
    # specification/keyvault/data-plane/Secrets/examples/2026-04-01/GetSecretVersions-example.json
    with world.lock:
        secret = _live(world, name)
        # Not in time order, as Key Vault: ordered by version id (random hex).
        items = [_item(req, secret, v, versioned=True)
                 for v in sorted(secret["versions"], key=lambda v: v["version"])]
        return paged(req, items, _page_size(req))


@route("GET", "/secrets", "KeyVault/secrets/list")
def list_secrets(req: Request, world: World):
    # specification/keyvault/data-plane/Secrets/examples/2026-04-01/GetSecrets-example.json
    with world.lock:
        live = [s for s in _store(world).values() if not s["deleted"] and not _recovering(s)]
        items = [_item(req, s, s["versions"][-1], versioned=False)
                 for s in sorted(live, key=lambda s: s["name"].lower())]
        return paged(req, items, _page_size(req))


@route("PUT", "/secrets/{name}", "KeyVault/secrets/set")
def set_secret(req: Request, world: World, name: str):
    # specification/keyvault/data-plane/Secrets/examples/2026-04-01/SetSecret-example.json
    _check_name(name)
    body = req.json() or {}
    if not isinstance(body, dict) or not isinstance(body.get("value"), str):
        raise bad_parameter("Property 'value' is required and must be a string.")
    attrs = body.get("attributes") or {}
    now = int(time.time())
    with world.lock:
        store = _store(world)
        secret = store.get(name.lower())
        if secret is not None and secret["deleted"]:
            raise deleted_but_recoverable(secret["name"])
        if secret is not None and time.time() < secret.get("recovery_settled_at", 0):
            raise being_recovered(secret["name"])
        if secret is None:
            secret = store[name.lower()] = {"name": name, "versions": [], "deleted": None}
        version = {"version": uuid.uuid4().hex, "value": body["value"],
                   "content_type": body.get("contentType"), "tags": dict(body.get("tags") or {}),
                   "enabled": bool(attrs.get("enabled", True)), "created": now, "updated": now,
                   "exp": _unix(attrs.get("exp")), "nbf": _unix(attrs.get("nbf"))}
        secret["versions"].append(version)
        world.version += 1
        return _bundle(req, secret, version, value=True)


@route("GET", "/secrets/{name}", "KeyVault/secrets/get")
def get_latest(req: Request, world: World, name: str):
    return get_secret(req, world, name, "")


@route("GET", "/secrets/{name}/{version}", "KeyVault/secrets/get")
def get_secret(req: Request, world: World, name: str, version: str):
    # specification/keyvault/data-plane/Secrets/stable/2026-04-01/examples/GetSecret-example.json
    with world.lock:
        secret = _live(world, name)
        v = _find_version(secret, version)
        if not v["enabled"]:
            raise secret_disabled()
        return _bundle(req, secret, v, value=True)


@route("PATCH", "/secrets/{name}", "KeyVault/secrets/update")
def update_latest(req: Request, world: World, name: str):
    return update_secret(req, world, name, "")


@route("PATCH", "/secrets/{name}/{version}", "KeyVault/secrets/update")
def update_secret(req: Request, world: World, name: str, version: str):
    # specification/keyvault/data-plane/Secrets/examples/2026-04-01/UpdateSecret-example.json
    body = req.json() or {}
    attrs = body.get("attributes") or {}
    with world.lock:
        secret = _live(world, name)
        v = _find_version(secret, version)
        if "contentType" in body:
            v["content_type"] = body["contentType"]
        if body.get("tags") is not None:
            v["tags"] = dict(body["tags"])
        if attrs.get("enabled") is not None:
            v["enabled"] = bool(attrs["enabled"])
        if "exp" in attrs:
            v["exp"] = _unix(attrs["exp"])
        if "nbf" in attrs:
            v["nbf"] = _unix(attrs["nbf"])
        v["updated"] = int(time.time())
        world.version += 1
        return _bundle(req, secret, v, value=False)


@route("DELETE", "/secrets/{name}", "KeyVault/secrets/delete")
def delete_secret(req: Request, world: World, name: str):
    # specification/keyvault/data-plane/Secrets/examples/2026-04-01/DeleteSecret-example.json
    now = int(time.time())
    with world.lock:
        secret = _live(world, name)
        secret["deleted"] = {"deleted_date": now,
                             "scheduled_purge_date": now + RECOVERABLE_DAYS * 86400}
        world.version += 1
        return _deleted(req, secret, _bundle(req, secret, secret["versions"][-1], value=False))


def _deleted_secret(world: World, name: str) -> dict[str, Any]:
    secret = _store(world).get(name.lower())
    if secret is None or not secret["deleted"]:
        raise deleted_secret_not_found(name)
    return secret


@route("GET", "/deletedsecrets", "KeyVault/deletedsecrets/list")
def list_deleted(req: Request, world: World):
    # specification/keyvault/data-plane/Secrets/stable/2026-04-01/examples/GetDeletedSecrets-example.json
    with world.lock:
        gone = [s for s in _store(world).values() if s["deleted"]]
        items = [_deleted(req, s, _item(req, s, s["versions"][-1], versioned=False))
                 for s in sorted(gone, key=lambda s: s["name"].lower())]
        return paged(req, items, _page_size(req))


@route("GET", "/deletedsecrets/{name}", "KeyVault/deletedsecrets/get")
def get_deleted(req: Request, world: World, name: str):
    # specification/keyvault/data-plane/Secrets/stable/2026-04-01/examples/GetDeletedSecret-example.json
    with world.lock:
        secret = _deleted_secret(world, name)
        return _deleted(req, secret, _bundle(req, secret, secret["versions"][-1], value=False))


@route("DELETE", "/deletedsecrets/{name}", "KeyVault/deletedsecrets/purge")
def purge_deleted(req: Request, world: World, name: str):
    # specification/keyvault/data-plane/Secrets/examples/2026-04-01/PurgeDeletedSecret-example.json
    with world.lock:
        secret = _deleted_secret(world, name)
        del _store(world)[secret["name"].lower()]
        world.version += 1
    return Response(204)


@route("POST", "/deletedsecrets/{name}/recover", "KeyVault/deletedsecrets/recover")
def recover_deleted(req: Request, world: World, name: str):
    # specification/keyvault/data-plane/Secrets/examples/2026-04-01/RecoverDeletedSecret-example.json
    with world.lock:
        secret = _deleted_secret(world, name)
        secret["deleted"] = None
        timing = world.section("keyvault_timing", {})
        secret["recovery_done_at"] = time.time() + float(timing.get("recover_seconds", 0))
        secret["recovery_settled_at"] = (secret["recovery_done_at"]
                                         + float(timing.get("recover_settle_seconds", 0)))
        world.version += 1
        return _bundle(req, secret, secret["versions"][-1], value=False)
