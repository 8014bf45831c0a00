"""Drives the sla-snapshot job end to end against the sandbox and Azurite, over
the estate of sandbox/worlds/sla_estate.json (5 apps in 2 subscriptions, 2
workspaces, 2 Redis caches, a storage account whose policy holds rules of
other teams), and reads back what it did."""
from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from jobs import service
from sandbox.world import load_world_file

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "sandbox" / "worlds" / "sla_estate.json"
SUB_A, SUB_B = "5a000000-0000-0000-0000-000000000001", "5a000000-0000-0000-0000-000000000002"
WS_PROD, WS_NONPROD = "5a000000-0000-0000-0000-0000000000a1", "5a000000-0000-0000-0000-0000000000a2"
APPS = ("app-shop", "app-api", "app-admin", "app-batch", "app-legacy")
ACCOUNT = (f"/subscriptions/{SUB_A}/resourceGroups/rg-sla/providers/Microsoft.Storage/"
           "storageAccounts/stslasnapshots")
POLICY = ACCOUNT + "/managementPolicies/default"
BATCH_OP = "Microsoft.Insights/metrics/getBatch"
LOGS_OP = "Microsoft.OperationalInsights/workspaces/query/read"
POLICY_WRITE = "Microsoft.Storage/storageAccounts/managementPolicies/write"
WRITE_KINDS = ("create-container", "write-snapshot", "write-rollup", "write-monthly",
               "write-conflict", "ensure-lifecycle")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def settled_hour() -> datetime:
    """A whole hour three hours back: the sandbox has every minute of the hour before it."""
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=3)


def month_boundary() -> datetime:
    """00:00 on the 1st of this month (of the month before, in this month's first hours)."""
    now = datetime.now(timezone.utc)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now - start < timedelta(hours=3):
        start = (start - timedelta(days=1)).replace(day=1)
    return start


def site_id(name: str) -> str:
    sub, rg = {"app-batch": (SUB_B, "rg-batch"), "app-legacy": (SUB_B, "rg-legacy"),
               "app-admin": (SUB_A, "rg-admin")}.get(name, (SUB_A, "rg-shop"))
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}"


def estate_world(outages: dict[str, list[dict[str, Any]]] | None = None,
                 fillers: int = 0) -> dict[str, Any]:
    """The estate; ``outages`` {app: [{"start": datetime, "minutes": n, ...overrides}]};
    ``fillers`` more production apps in subscription A (no workspace, no cache)."""
    data = load_world_file(WORLD)
    by_id = {r["id"].lower(): r for r in data["metrics"]["resources"]}
    for app, windows in (outages or {}).items():
        generator = by_id[site_id(app).lower()]["generator"]
        generator["outages"] = [dict(w, start=iso(w["start"])) for w in windows]
    targets = [data["settings"]["OPS_SLA_SNAPSHOT__TARGETS"]]
    for i in range(fillers):
        rid = (f"/subscriptions/{SUB_A}/resourceGroups/rg-fill/providers/Microsoft.Web/sites/"
               f"app-fill-{i:02d}")
        data["metrics"]["resources"].append({"id": rid, "region": "westeurope", "generator": {
            "kind": "app_service", "requests_per_minute": 5 + i % 7, "pattern": "flat",
            "noise": 0.1, "error_rate": 0.001}})
        targets.append(f"{rid}|production")
    data["settings"]["OPS_SLA_SNAPSHOT__TARGETS"] = ";".join(targets)
    return data


class Estate:
    def __init__(self, app_env, world, monkeypatch, data: dict[str, Any] | None = None,
                 **settings: str):
        self.env, self.monkeypatch = app_env, monkeypatch
        self.data = copy.deepcopy(data if data is not None else estate_world())
        world(self.data)
        self.container = f"sla-{uuid.uuid4().hex[:12]}"  # Azurite lives for the whole session
        self.configure(STORAGE_CONTAINER=self.container, **{
            k.removeprefix("OPS_SLA_SNAPSHOT__"): v for k, v in self.data["settings"].items()})
        self.configure(**settings)
        self.log: list[dict[str, Any]] = []

    def configure(self, **settings: str) -> None:
        for key, value in settings.items():
            name = key if key.startswith("OPS_") else f"OPS_SLA_SNAPSHOT__{key.upper()}"
            self.monkeypatch.setenv(name, value)
        service.reset()

    def run(self, now: datetime, dry_run: bool = False) -> dict[str, Any]:
        before = len(self.env.sandbox.request_log())
        report = service.run("sla-snapshot", trigger="cli", dry_run=dry_run, now=now)
        self.log = self.env.sandbox.request_log()[before:]
        return report

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [e for e in self.log if e["operation"] == operation]

    # -- the snapshot container -----------------------------------------------------
    @property
    def _container(self):
        return service.environment().clients.sla_snapshot_blob_service.get_container_client(
            self.container)

    def blobs(self) -> dict[str, str]:
        """name -> etag of every blob in the snapshot container ({} before it exists)."""
        if not self._container.exists():
            return {}
        return {b.name: b.etag for b in self._container.list_blobs()}

    def read(self, name: str) -> bytes:
        return self._container.download_blob(name).readall()

    def read_json(self, name: str) -> dict[str, Any]:
        return json.loads(self.read(name))

    # -- the world --------------------------------------------------------------------
    def policy_rules(self) -> list[dict[str, Any]]:
        policy = self.env.world.get(POLICY)
        return copy.deepcopy(policy["properties"]["policy"]["rules"]) if policy else []

    def add_points(self, app: str, metric: str, points: list[tuple[datetime, float]]) -> None:
        """Late data: explicit values replacing the generated ones at their minutes."""
        with self.env.world.lock:
            for resource in self.env.world.section("metrics", {})["resources"]:
                if resource["id"].lower() == site_id(app).lower():
                    resource.setdefault("points", {})[metric] = [[iso(t), v] for t, v in points]


def writes(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["kind"], a["target"]) for a in report["actions"] if a["kind"] in WRITE_KINDS]


def by_status(report: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in report["actions"]:
        out.setdefault(a["status"], []).append(f"{a['kind']} {a['target']}")
    return out
