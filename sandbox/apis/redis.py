"""Microsoft.Cache/Redis: caches and their access keys, as `azure-mgmt-redis`
calls them. The keys are applied to a real local Redis server (see
sandbox/databases.py): both keys are valid passwords at once, so regenerating
one revokes only that one, as on Azure.

World shape: a cache is an ARM resource (type `Microsoft.Cache/Redis`); its
keys live in the private member `_sandbox.keys`
(`{"primaryKey": "...", "secondaryKey": "..."}`; generated when absent).
When the real server runs, `properties.hostName`/`port`/`sslPort` point at it.
"""
from __future__ import annotations

import base64
import secrets
from typing import Any

from sandbox.server import ApiError, Request, not_found, paged, route
from sandbox.world import World, public

CACHE_TYPE = "Microsoft.Cache/Redis"
KEY_FIELDS = {"primary": "primaryKey", "secondary": "secondaryKey"}
APPLY_HOOK = "redis:keys"  # registered by sandbox/databases.py: fn(world) -> None

_CACHE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Cache/redis/{name}"


def new_key() -> str:
    """An access key as Azure makes them: 32 random bytes, base64 (44 characters)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def cache_keys(cache: dict[str, Any]) -> dict[str, str]:
    """The cache's keys (caller holds world.lock), created when the world has none."""
    keys = cache.setdefault("_sandbox", {}).setdefault("keys", {})
    for field in KEY_FIELDS.values():
        if not keys.get(field):
            keys[field] = new_key()
    return keys


def all_keys(world: World) -> list[str]:
    """Every key of every cache: the passwords the real Redis accepts."""
    with world.lock:
        return [k for cache in world.of_type(CACHE_TYPE) for k in cache_keys(cache).values()]


def _cache(world: World, sub: str, rg: str, name: str) -> dict[str, Any]:
    cache = world.get(_CACHE.format(sub=sub, rg=rg, name=name))
    if cache is None or cache.get("type", "").lower() != CACHE_TYPE.lower():
        raise not_found(_CACHE.format(sub=sub, rg=rg, name=name), f"Microsoft.Cache/Redis/{name}")
    return cache



@route("GET", _CACHE, "Microsoft.Cache/redis/read")
def get_cache(req: Request, world: World, sub: str, rg: str, name: str):
    # specification/redis/resource-manager/Microsoft.Cache/stable/2024-11-01/examples/RedisCacheGet.json
    with world.lock:
        return public(_cache(world, sub, rg, name))


@route("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Cache/redis",
       "Microsoft.Cache/redis/listByResourceGroup")
def list_by_resource_group(req: Request, world: World, sub: str, rg: str):
    # specification/redis/resource-manager/Microsoft.Cache/stable/2024-11-01/examples/RedisCacheListByResourceGroup.json
    with world.lock:
        items = [public(c) for c in world.of_type(CACHE_TYPE, f"/subscriptions/{sub}/resourceGroups/{rg}")]
    return paged(req, items)


@route("GET", "/subscriptions/{sub}/providers/Microsoft.Cache/redis", "Microsoft.Cache/redis/list")
def list_caches(req: Request, world: World, sub: str):
    # specification/redis/resource-manager/Microsoft.Cache/stable/2024-11-01/examples/RedisCacheList.json
    with world.lock:
        items = [public(c) for c in world.of_type(CACHE_TYPE, f"/subscriptions/{sub}")]
    return paged(req, items)


@route("POST", _CACHE + "/listKeys", "Microsoft.Cache/redis/listKeys/action")
def list_keys(req: Request, world: World, sub: str, rg: str, name: str):
    # specification/redis/resource-manager/Microsoft.Cache/stable/2024-11-01/examples/RedisCacheListKeys.json
    with world.lock:
        keys = cache_keys(_cache(world, sub, rg, name))
        return {"primaryKey": keys["primaryKey"], "secondaryKey": keys["secondaryKey"]}


@route("POST", _CACHE + "/regenerateKey", "Microsoft.Cache/redis/regenerateKey/action")
def regenerate_key(req: Request, world: World, sub: str, rg: str, name: str):
    # specification/redis/resource-manager/Microsoft.Cache/stable/2024-11-01/examples/RedisCacheRegenerateKey.json
    body = req.json() or {}
    key_type = str(body.get("keyType", "")).lower() if isinstance(body, dict) else ""
    if key_type not in KEY_FIELDS:
        raise ApiError(400, "InvalidRequestContent",
                       "The request content was invalid: keyType must be 'Primary' or 'Secondary'.")
    with world.lock:
        keys = cache_keys(_cache(world, sub, rg, name))
        keys[KEY_FIELDS[key_type]] = new_key()
        world.version += 1
        apply = world.hooks.get(APPLY_HOOK)
        if apply:  # the real Redis accepts the new key, and no longer the old one
            apply(world)
        return {"primaryKey": keys["primaryKey"], "secondaryKey": keys["secondaryKey"]}
