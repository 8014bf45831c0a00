"""Microsoft.DBforPostgreSQL/flexibleServers, as `azure-mgmt-postgresqlflexibleservers`
calls it: get, list, and update (a long-running PATCH). A new
`administratorLoginPassword` is applied to a real local PostgreSQL server
(ALTER ROLE, see sandbox/databases.py) and, as on Azure, never returned.

World shape: a server is an ARM resource (type
`Microsoft.DBforPostgreSQL/flexibleServers`) with `properties.administratorLogin`;
private members in `_sandbox`:
    "administratorLoginPassword": "...",            # the admin role's password
    "roles": [{"name": "shopfront_app", "password": "..."}]   # optional app roles
All servers share one real PostgreSQL, so give each a distinct administratorLogin.
When it runs, `properties.fullyQualifiedDomainName` is 127.0.0.1 and the port is
in the tag `sandbox-port` (and SANDBOX_POSTGRES_PORT).
"""
from __future__ import annotations

from typing import Any

from sandbox.apis.operations import accepted
from sandbox.server import ApiError, Request, not_found, paged, route
from sandbox.world import World, public

SERVER_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"
PASSWORD_HOOK = "postgres:password"  # registered by sandbox/databases.py: fn(server, login, password)

_SERVER = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}"


def _server(world: World, sub: str, rg: str, name: str) -> dict[str, Any]:
    server = world.get(_SERVER.format(sub=sub, rg=rg, name=name))
    if server is None or server.get("type", "").lower() != SERVER_TYPE.lower():
        raise not_found(_SERVER.format(sub=sub, rg=rg, name=name), f"{SERVER_TYPE}/{name}")
    return server



def _public_server(server: dict[str, Any]) -> dict[str, Any]:
    body = public(server)
    body.get("properties", {}).pop("administratorLoginPassword", None)  # write-only, as Azure
    return body


@route("GET", _SERVER, "Microsoft.DBforPostgreSQL/flexibleServers/read")
def get_server(req: Request, world: World, sub: str, rg: str, name: str):
    # specification/postgresql/DBforPostgreSQL.Management/examples/2025-06-01-preview/ServersGet.json
    with world.lock:
        return _public_server(_server(world, sub, rg, name))


@route("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers",
       "Microsoft.DBforPostgreSQL/flexibleServers/listByResourceGroup")
def list_by_resource_group(req: Request, world: World, sub: str, rg: str):
    # specification/postgresql/DBforPostgreSQL.Management/examples/2025-06-01-preview/ServersListByResourceGroup.json
    with world.lock:
        items = [_public_server(s) for s in world.of_type(SERVER_TYPE, f"/subscriptions/{sub}/resourceGroups/{rg}")]
    return paged(req, items)


@route("GET", "/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL/flexibleServers",
       "Microsoft.DBforPostgreSQL/flexibleServers/list")
def list_servers(req: Request, world: World, sub: str):
    # specification/postgresql/DBforPostgreSQL.Management/examples/2025-06-01-preview/ServersListBySubscription.json
    with world.lock:
        items = [_public_server(s) for s in world.of_type(SERVER_TYPE, f"/subscriptions/{sub}")]
    return paged(req, items)


@route("PATCH", _SERVER, "Microsoft.DBforPostgreSQL/flexibleServers/write")
def update_server(req: Request, world: World, sub: str, rg: str, name: str):
    # specification/postgresql/DBforPostgreSQL.Management/examples/2025-06-01-preview/ServersUpdate.json
    # (202 with Azure-AsyncOperation and Location; the final GET returns the server).
    body = req.json() or {}
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
    changes = dict(body.get("properties") or {})
    password = changes.pop("administratorLoginPassword", None)
    if password is not None and (not isinstance(password, str) or not password):
        raise ApiError(400, "InvalidParameterValue", "Invalid value given for parameter administratorLoginPassword.")
    with world.lock:
        server = _server(world, sub, rg, name)
        props = server.setdefault("properties", {})
        if password is not None:
            apply = world.hooks.get(PASSWORD_HOOK)
            if apply:  # the real PostgreSQL takes the new password before Azure answers
                apply(server, props.get("administratorLogin", ""), password)
            server.setdefault("_sandbox", {})["administratorLoginPassword"] = password
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(props.get(key), dict):
                props[key].update(value)
            else:
                props[key] = value
        if "tags" in body:
            server["tags"] = dict(body["tags"] or {})
        if body.get("sku"):
            server["sku"] = dict(body["sku"])
        world.version += 1
        location = str(server.get("location", "eastus")).replace(" ", "").lower()
        result = _public_server(server)
    return accepted(req, world, subscription=sub, provider="Microsoft.DBforPostgreSQL",
                    location=location, result=result)
