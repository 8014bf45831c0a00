"""What the dev-hours job observes: web apps (with their slots) and App Service
plans, as plain frozen data that azure_io fills in and plan.py decides on.

No Azure imports here: azure_io maps SDK models onto these.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from jobs.dev_hours.skus import AppFeatures, Sku

RUNNING, STOPPED = "Running", "Stopped"


@dataclass(frozen=True)
class Slot:
    name: str  # "staging"
    state: str  # "Running" / "Stopped" as Azure reports it


@dataclass(frozen=True)
class Site:
    """A web or function app (its production slot) and what its plan must support."""

    id: str  # /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Web/sites/<name>
    name: str
    subscription: str
    resource_group: str
    state: str  # "Running" / "Stopped"
    plan_id: str  # serverFarmId
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    kind: str = "app"
    always_on: bool = False
    slots: tuple[Slot, ...] = ()
    vnet_integrated: bool = False
    custom_tls_domains: bool = False  # custom host names with TLS bindings

    @property
    def slot_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.slots)

    def slot_id(self, slot: str) -> str:
        return f"{self.id}/slots/{slot}"

    def features(self) -> AppFeatures:
        return AppFeatures(self.name, self.slot_names, self.always_on, self.vnet_integrated,
                           self.custom_tls_domains)


@dataclass(frozen=True)
class Plan:
    """An App Service plan (server farm)."""

    id: str
    name: str
    subscription: str
    resource_group: str
    sku: Sku
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    number_of_sites: int | None = None  # as Azure counts them; None when not reported
    # its own app list (AppServicePlans_ListWebApps), read before a scale-down; None: not read
    hosted: tuple[Site, ...] | None = field(default=None, hash=False)


def tag(tags: Mapping[str, str] | None, name: str) -> str | None:
    """A tag's value; Azure tag names are case-insensitive."""
    wanted = name.lower()
    for key, value in (tags or {}).items():
        if key.lower() == wanted:
            return value
    return None
