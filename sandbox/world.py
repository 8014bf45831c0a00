"""The sandbox's world: everything the fake Azure holds, seeded from a JSON
world file (format in sandbox/README.md) and changed by API calls.

`resources` are ARM resources keyed by id (case-insensitive, as ARM ids are).
A resource's `_sandbox` member holds what Azure keeps but never returns
(storage keys, Redis keys, the plan features a downgrade checks); it is
stripped from every response by `public()`. Other sections (`secrets`,
`costs`, `metrics`, `logs`, ...) belong to the API module that serves them.

All access goes through `world.lock` (the server is threaded).
"""
from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterable


class World:
    def __init__(self, data: dict[str, Any] | None = None):
        self.lock = threading.RLock()
        self._initial = copy.deepcopy(data or {})
        self.hooks: dict[str, Callable[..., Any]] = {}  # e.g. real PostgreSQL/Redis appliers
        self.reset()

    @classmethod
    def from_file(cls, path: str | Path) -> "World":
        return cls(load_world_file(path))

    def reset(self, data: dict[str, Any] | None = None) -> None:
        with self.lock:
            if data is not None:
                self._initial = copy.deepcopy(data)
            seed = copy.deepcopy(self._initial)
            self.resources: dict[str, dict[str, Any]] = {}
            for resource in seed.pop("resources", []):
                self.resources[resource["id"].lower()] = resource
            self.sections: dict[str, Any] = seed
            self.operations: dict[str, dict[str, Any]] = {}
            self.version = 0
            self.generation = getattr(self, "generation", 0) + 1  # bumps on every reset (caches key on it)
        for reset_hook in [h for k, h in self.hooks.items() if k.startswith("reset:")]:
            reset_hook(self)

    # -- resources -----------------------------------------------------------------
    def get(self, resource_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.resources.get(resource_id.lower())

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.resources[resource["id"].lower()] = resource
            self.version += 1
            return resource

    def delete(self, resource_id: str) -> dict[str, Any] | None:
        with self.lock:
            self.version += 1
            return self.resources.pop(resource_id.lower(), None)

    def of_type(self, rtype: str, scope: str = "") -> list[dict[str, Any]]:
        """Resources of an ARM type under a scope (subscription or resource group id),
        in a stable order."""
        rtype, scope = rtype.lower(), scope.lower().rstrip("/")
        with self.lock:
            return [r for key, r in sorted(self.resources.items())
                    if r.get("type", "").lower() == rtype and (not scope or key.startswith(scope + "/"))]

    def section(self, name: str, default: Any) -> Any:
        with self.lock:
            return self.sections.setdefault(name, default)

    def subscriptions(self) -> Iterable[str]:
        with self.lock:
            return sorted({key.split("/")[2] for key in self.resources})

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            data = copy.deepcopy(self.sections)
            data["resources"] = copy.deepcopy(list(self.resources.values()))
            return json.loads(json.dumps(data, default=str))


def public(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as Azure returns it (without sandbox-private members)."""
    return {k: copy.deepcopy(v) for k, v in resource.items() if k != "_sandbox"}


def resource_group_id(resource_id: str) -> str:
    parts = resource_id.split("/")
    return "/".join(parts[:5])


def load_world_file(path: str | Path) -> dict[str, Any]:
    """Read a world file. `"include": ["other.json", ...]` (paths relative to the
    file) merges other files first: lists are concatenated, objects merged."""
    path = Path(path)
    data = json.loads(path.read_text())
    merged: dict[str, Any] = {}
    for name in data.pop("include", []):
        _merge(merged, load_world_file(path.parent / name))
    _merge(merged, data)
    return merged


def _merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = into[key] + value
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
