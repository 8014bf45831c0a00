"""Long-running operations: the 201/202 answers and the status URLs clients poll.

Handlers call `accepted(...)`: the change itself is made at once (as Azure
starts work at once); the operation reports `InProgress` for `polls` status
reads, then `Succeeded`. Shapes follow ARM's async operation guidelines
(azure-resource-manager-rpc: "Asynchronous Operations"): `Azure-AsyncOperation`
answers `{"status": ...}`, `Location` answers 202 until done, then the result.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sandbox.server import ApiError, Request, Response, route
from sandbox.world import World

POLLS = 1


def accepted(req: Request, world: World, *, subscription: str, provider: str, location: str,
             result: Any = None, status: int = 202, azure_async: bool = True,
             location_header: bool = True, lro_delay_ms: int = 100) -> Response:
    op_id = str(uuid.uuid4())
    with world.lock:
        world.operations[op_id] = {"polls_left": POLLS, "result": result,
                                   "startTime": datetime.now(timezone.utc).isoformat()}
    base = f"/subscriptions/{subscription}/providers/{provider}/locations/{location}"
    api = req.query.get("api-version", "")
    headers = {"retry-after-ms": str(lro_delay_ms)}
    if azure_async:
        headers["Azure-AsyncOperation"] = req.url(f"{base}/azureAsyncOperation/{op_id}", **{"api-version": api})
    if location_header:
        headers["Location"] = req.url(f"{base}/operationResults/{op_id}", **{"api-version": api})
    body = result if status == 201 else None
    return Response(status, body, headers)


def _advance(world: World, op_id: str) -> dict[str, Any]:
    with world.lock:
        op = world.operations.get(op_id)
        if op is None:
            raise ApiError(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
        if op["polls_left"] > 0:
            op["polls_left"] -= 1
            return {"done": False, **op}
        return {"done": True, **op}


@route("GET", "/subscriptions/{sub}/providers/{provider}/locations/{location}/azureAsyncOperation/{op}",
       "operations/status")
def operation_status(req: Request, world: World, sub: str, provider: str, location: str, op: str):
    state = _advance(world, op)
    body = {"name": op, "status": "Succeeded" if state["done"] else "InProgress",
            "startTime": state["startTime"]}
    if state["done"]:
        body["endTime"] = datetime.now(timezone.utc).isoformat()
    return Response(200, body, {} if state["done"] else {"retry-after-ms": "100"})


@route("GET", "/subscriptions/{sub}/providers/{provider}/locations/{location}/operationResults/{op}",
       "operations/result")
def operation_result(req: Request, world: World, sub: str, provider: str, location: str, op: str):
    state = _advance(world, op)
    if not state["done"]:
        return Response(202, None, {"Location": req.url(req.path, **req.query), "retry-after-ms": "100"})
    return Response(200, state["result"]) if state["result"] is not None else Response(204)
