"""App Service plan SKUs: what they are called, how they rank, which app
features each tier can host, and what an instance-hour costs.

Pure knowledge and arithmetic: no Azure imports, no I/O. Prices come only
from the settings; an unknown price stays unknown, never guessed.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Mapping

SKU_NAME = re.compile(r"^(F|D|B|S|P|I|EP|Y|FC|WS)(\d+)(m?v\d+)?$", re.I)

_TIERS = {"F": "Free", "D": "Shared", "B": "Basic", "S": "Standard", "P": "Premium",
          "I": "Isolated", "EP": "ElasticPremium", "Y": "Dynamic", "FC": "FlexConsumption",
          "WS": "WorkflowStandard"}

# Rank of a tier: higher hosts more features. Tiers without a rank are not
# dedicated plans (Consumption, Elastic Premium...) and are never scaled.
FREE, SHARED, BASIC, STANDARD, PREMIUM, ISOLATED = range(6)
SCALABLE_RANKS = (BASIC, STANDARD, PREMIUM)
MAX_INSTANCES = {FREE: 1, SHARED: 1, BASIC: 3, STANDARD: 10, PREMIUM: 30, ISOLATED: 100}


@dataclass(frozen=True)
class Sku:
    """A plan's SKU and instance count, as Azure reports them."""

    name: str  # "P1v3"
    tier: str  # "PremiumV3"
    size: str  # "P1v3"
    family: str  # "Pv3"
    capacity: int  # instances

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Sku":
        return cls(name=str(data["name"]), tier=str(data["tier"]), size=str(data.get("size") or data["name"]),
                   family=str(data.get("family") or ""), capacity=int(data["capacity"]))

    def label(self) -> str:
        return f"{self.name} x{self.capacity} ({self.tier})"

    def same_as(self, other: "Sku") -> bool:
        return self.name.lower() == other.name.lower() and self.capacity == other.capacity


def sku_from_name(name: str, capacity: int = 1) -> Sku:
    """'b1' -> Sku(B1, Basic, B1, B, 1); 'P1v3' -> PremiumV3 / Pv3. ValueError if unknown."""
    m = SKU_NAME.match((name or "").strip())
    if not m:
        raise ValueError(f"'{name}' is not an App Service SKU name (e.g. B1, S1, P1v3)")
    prefix, number, version = m.group(1).upper(), m.group(2), (m.group(3) or "").lower()
    tier = _TIERS[prefix]
    if version:
        memory = "M" if version.startswith("m") else ""
        level = version.lstrip("m")  # "v3"
        tier = f"{tier}{'0' if prefix == 'P' and number == '0' else ''}{memory}{level.upper()}"
    canonical = f"{prefix}{number}{version}"
    family = prefix + version
    return Sku(name=canonical, tier=tier, size=canonical, family=family, capacity=capacity)


def tier_rank(sku: Sku) -> int | None:
    """FREE..ISOLATED, or None for plans that are not dedicated instances."""
    tier = (sku.tier or "").lower()
    for prefix, rank in (("free", FREE), ("shared", SHARED), ("basic", BASIC),
                         ("standard", STANDARD), ("premium", PREMIUM), ("isolated", ISOLATED)):
        if tier.startswith(prefix):
            return rank
    return None


def _size_number(sku: Sku) -> int | None:
    m = SKU_NAME.match(sku.name)
    return int(m.group(2)) if m else None


def hourly_price(sku: Sku, prices: Mapping[str, float]) -> float | None:
    """Price per hour of all the SKU's instances, or None when the price is unknown."""
    by_name = {name.lower(): price for name, price in prices.items()}
    price = by_name.get(sku.name.lower())
    return None if price is None else price * sku.capacity


def is_cheaper_sku(candidate: Sku, current: Sku, prices: Mapping[str, float]) -> bool:
    """True when moving to ``candidate`` is a real downgrade (per instance)."""
    new, old = tier_rank(candidate), tier_rank(current)
    if new is None or old is None:
        return False
    if new != old:
        return new < old
    one_new, one_old = replace(candidate, capacity=1), replace(current, capacity=1)
    p_new, p_old = hourly_price(one_new, prices), hourly_price(one_old, prices)
    if p_new is not None and p_old is not None:
        return p_new < p_old
    a, b = _size_number(candidate), _size_number(current)
    return candidate.family.lower() == current.family.lower() and a is not None and b is not None and a < b


@dataclass(frozen=True)
class AppFeatures:
    """What one app (with its slots) needs from its plan's tier."""

    name: str
    slot_names: tuple[str, ...] = ()
    always_on: bool = False
    vnet_integrated: bool = False
    custom_tls_domains: bool = False


def refusals(target: Sku, apps: Iterable[AppFeatures]) -> list[str]:
    """Why ``target`` cannot host these apps (empty when it can)."""
    rank = tier_rank(target)
    if rank is None:
        return [f"{target.name} ({target.tier}) is not a dedicated plan"]
    found = []
    for app in apps:
        if app.slot_names and rank < STANDARD:
            found.append(f"{app.name} has deployment slots ({', '.join(app.slot_names)}), "
                         "which need Standard or higher")
        if app.always_on and rank < BASIC:
            found.append(f"{app.name} uses Always On, which needs Basic or higher")
        if app.vnet_integrated and rank < BASIC:
            found.append(f"{app.name} uses VNet integration, which needs Basic or higher")
        if app.custom_tls_domains and rank < BASIC:
            found.append(f"{app.name} has custom domains with TLS, which need Basic or higher")
    return found


@dataclass(frozen=True)
class Savings:
    """What a scale-down saves: per hour, and over ``hours_off`` when known."""

    before: Sku
    after: Sku
    hours_off: float | None
    hourly_before: float | None
    hourly_after: float | None

    @property
    def hourly_saving(self) -> float | None:
        if self.hourly_before is None or self.hourly_after is None:
            return None
        return self.hourly_before - self.hourly_after

    @property
    def saving(self) -> float | None:
        per_hour = self.hourly_saving
        return None if per_hour is None or self.hours_off is None else per_hour * self.hours_off

    def describe(self) -> str:
        if self.hourly_saving is None:
            missing = [s.name for s, p in ((self.before, self.hourly_before),
                                            (self.after, self.hourly_after)) if p is None]
            return (f"saving unknown: no price for {' and '.join(dict.fromkeys(missing))} "
                    "(OPS_DEV_HOURS__PRICES)")
        text = (f"saves {self.hourly_saving:.3f}/h ({self.before.label()} {self.hourly_before:.3f}/h "
                f"-> {self.after.label()} {self.hourly_after:.3f}/h)")
        if self.hours_off is not None:
            text += f", about {self.saving:.2f} over {self.hours_off:.1f} h off"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before.to_json(), "after": self.after.to_json(),
                "hours_off": _round(self.hours_off), "hourly_before": _round(self.hourly_before),
                "hourly_after": _round(self.hourly_after), "hourly_saving": _round(self.hourly_saving),
                "saving": _round(self.saving)}


def estimate_savings(before: Sku, after: Sku, prices: Mapping[str, float],
                     hours_off: float | None = None) -> Savings:
    """Money saved by running ``after`` instead of ``before`` for ``hours_off`` hours."""
    return Savings(before=before, after=after, hours_off=hours_off,
                   hourly_before=hourly_price(before, prices), hourly_after=hourly_price(after, prices))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
