"""Settings of the budget-check job (app settings OPS_BUDGET_CHECK__*).

Validated once when the app's settings load; each message names what is wrong
so the app reports ``OPS_BUDGET_CHECK__<FIELD>: <message>``. Never holds a
secret. Must never import ``jobs.settings`` (it imports this module).

Scopes (``OPS_BUDGET_CHECK__SCOPES``), either a comma list::

    /subscriptions/<guid>=500:USD, /subscriptions/<guid>/resourceGroups/rg-web=200

(``SCOPE[=AMOUNT[:CURRENCY]]``; a bare subscription GUID is a subscription
scope; a missing amount or currency takes ``__AMOUNT`` / ``__CURRENCY``), or a
JSON list of objects when a scope needs its own thresholds or contacts::

    [{"scope": "/subscriptions/<guid>", "amount": 500, "currency": "USD",
      "thresholds": "80% actual, 100% forecast", "contact_emails": ["a@x.org"]}]

No scopes: every subscription of ``OPS_SUBSCRIPTIONS`` with the shared values.

Thresholds (``__THRESHOLDS``, default ``80% actual, 100% forecast``): a comma
list of ``<percent>% [actual|forecast]`` or ``<money> [actual|forecast]``
(``$400``, ``400 USD``; the kind defaults to actual). Money is turned into a
percentage of the scope's amount ($400 of $500 = 80), since Azure budget
notifications are percentages (0-1000, two decimals), at most 5 per budget.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from jobs.config_types import CommaList, split_commas

ThresholdKind = Literal["actual", "forecast"]
MAX_NOTIFICATIONS = 5  # Azure's limit per budget
MAX_THRESHOLD_PERCENT = 1000.0  # Azure's limit for a Cost budget notification

_GUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
_SCOPE = re.compile(rf"^/subscriptions/({_GUID})(?:/resourceGroups/([-\w._()]{{1,90}}))?/?$",
                    re.IGNORECASE)
_BARE_GUID = re.compile(rf"^{_GUID}$")
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
_ACTION_GROUP = re.compile(rf"^/subscriptions/{_GUID}/resourceGroups/[-\w._()]+/providers/"
                           r"microsoft\.insights/actionGroups/[^/]+$", re.IGNORECASE)
_BUDGET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
_THRESHOLD = re.compile(
    r"^(?P<pre>[$€£]|[A-Za-z]{3}\s+)?\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<post>%|[A-Za-z]{3}\b)?"
    r"\s*(?P<kind>[A-Za-z]+)?$")
_KINDS = {"actual": "actual", "forecast": "forecast", "forecasted": "forecast"}





# -- thresholds -------------------------------------------------------------------

@dataclass(frozen=True)
class Threshold:
    """One threshold as written in settings: a percentage or an amount of money."""

    value: float
    unit: Literal["percent", "money"]
    kind: ThresholdKind
    currency: str | None = None  # of a money threshold written with a symbol or code

    def __str__(self) -> str:
        if self.unit == "percent":
            return f"{self.value:g}% {self.kind}"
        return f"{self.value:g} {self.currency} {self.kind}" if self.currency else f"{self.value:g} {self.kind}"

    def percent_of(self, amount: float, currency: str) -> float:
        """The percentage of ``amount`` this threshold stands for (2 decimals, as Azure keeps)."""
        if self.unit == "percent":
            percent = self.value
        else:
            if self.currency and self.currency != currency:
                raise ValueError(f"threshold '{self}' is in {self.currency} but the budget is in {currency}")
            percent = self.value / amount * 100
        percent = round(percent, 2)
        if not 0 < percent <= MAX_THRESHOLD_PERCENT:
            raise ValueError(f"threshold '{self}' is {percent:g}% of {amount:g} {currency}; "
                             f"Azure takes more than 0% and at most {MAX_THRESHOLD_PERCENT:g}%")
        return percent


def parse_threshold(text: str) -> Threshold:
    """'80%', '80% actual', '100 % forecast', '$400', '400 USD actual' -> Threshold."""
    match = _THRESHOLD.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a threshold (e.g. '80% actual', '$400', '100% forecast')")
    pre, post = (match["pre"] or "").strip(), match["post"] or ""
    kind_word = (match["kind"] or "actual").lower()
    if kind_word not in _KINDS:
        raise ValueError(f"'{text}': '{match['kind']}' is not actual or forecast")
    if pre and post:
        raise ValueError(f"'{text}' gives its unit twice")
    value = float(match["num"])
    if post == "%":
        return Threshold(value, "percent", _KINDS[kind_word])
    if not pre and not post:
        raise ValueError(f"'{text}' needs a unit: '{match['num']}%' for a percentage of the "
                         f"budget, '${match['num']}' or '{match['num']} USD' for money")
    code = _SYMBOLS.get(pre) or (pre or post).upper()
    return Threshold(value, "money", _KINDS[kind_word], code)


@dataclass(frozen=True)
class BudgetThreshold:
    """A threshold resolved for one scope: a percentage of its amount."""

    percent: float
    kind: ThresholdKind
    written: str  # as in settings, for people

    @property
    def key(self) -> str:
        """'actual-80', 'forecast-100': names the threshold in state and notifications."""
        return f"{self.kind}-{self.percent:g}"

    def limit(self, amount: float) -> float:
        return amount * self.percent / 100

    def __str__(self) -> str:
        return f"{self.percent:g}% {self.kind}"


@dataclass(frozen=True)
class ScopeBudget:
    """One budget scope with everything resolved: what plan and budget.py use."""

    scope: str  # /subscriptions/<guid>[/resourceGroups/<name>]
    amount: float
    currency: str
    thresholds: tuple[BudgetThreshold, ...]
    contact_emails: tuple[str, ...] = ()
    action_groups: tuple[str, ...] = ()
    contact_roles: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.scope.lower()

    @property
    def resource_group(self) -> str | None:
        match = _SCOPE.match(self.scope)
        return match.group(2) if match else None

    @property
    def label(self) -> str:
        """'subscription <guid>' or 'resource group rg-web (subscription <guid>)', for titles."""
        match = _SCOPE.match(self.scope)
        if not match:
            return self.scope
        if match.group(2):
            return f"resource group {match.group(2)} (subscription {match.group(1)})"
        return f"subscription {match.group(1)}"


def canonical_scope(value: str) -> str:
    """'<guid>' or any-cased '/subscriptions/<guid>/resourcegroups/<rg>' -> canonical form."""
    value = value.strip()
    if _BARE_GUID.match(value):
        return f"/subscriptions/{value.lower()}"
    match = _SCOPE.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a budget scope (expected /subscriptions/<guid> or "
                         "/subscriptions/<guid>/resourceGroups/<name>)")
    sub, group = match.group(1).lower(), match.group(2)
    return f"/subscriptions/{sub}/resourceGroups/{group}" if group else f"/subscriptions/{sub}"


def resolve_thresholds(written: list[str], amount: float, currency: str) -> tuple[BudgetThreshold, ...]:
    """Settings' thresholds -> percentages of ``amount``; refuses more than Azure keeps."""
    if not written:
        raise ValueError("at least one threshold is needed (e.g. '80% actual')")
    if len(written) > MAX_NOTIFICATIONS:
        raise ValueError(f"{len(written)} thresholds given; an Azure budget keeps at most "
                         f"{MAX_NOTIFICATIONS} notifications")
    out: list[BudgetThreshold] = []
    for text in written:
        t = parse_threshold(text)
        resolved = BudgetThreshold(t.percent_of(amount, currency), t.kind, str(t))
        twin = next((o for o in out if o.key == resolved.key), None)
        if twin:
            raise ValueError(f"'{twin.written}' and '{resolved.written}' are the same threshold "
                             f"({resolved})")
        out.append(resolved)
    return tuple(sorted(out, key=lambda b: (b.kind, b.percent)))


# -- scopes -----------------------------------------------------------------------

def _parse_scopes(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"looks like JSON but is not valid JSON: {exc.msg} at character {exc.pos}") from None
    specs = []
    for item in split_commas(text):
        scope, sep, rest = item.partition("=")
        spec: dict[str, Any] = {"scope": scope.strip()}
        if sep:
            amount, _, currency = rest.partition(":")
            if not amount.strip():
                raise ValueError(f"'{item}' is not SCOPE=AMOUNT[:CURRENCY] (e.g. /subscriptions/<guid>=500:USD)")
            spec["amount"] = amount.strip()
            if currency.strip():
                spec["currency"] = currency.strip()
        specs.append(spec)
    return specs


class ScopeSpec(BaseModel):
    """One scope as written in settings; unset fields take the shared settings."""

    model_config = ConfigDict(extra="forbid")

    scope: str
    amount: float | None = Field(default=None, gt=0)
    currency: str | None = None
    thresholds: CommaList | None = None
    contact_emails: CommaList | None = None
    action_groups: CommaList | None = None

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        return canonical_scope(value)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return _currency_code(value) if value is not None else None

    @field_validator("contact_emails")
    @classmethod
    def _emails(cls, value: list[str] | None) -> list[str] | None:
        return _emails(value) if value is not None else None

    @field_validator("action_groups")
    @classmethod
    def _groups(cls, value: list[str] | None) -> list[str] | None:
        return _action_groups(value) if value is not None else None


def _currency_code(value: str) -> str:
    code = value.strip().upper()
    if not _CURRENCY.match(code):
        raise ValueError(f"'{value}' is not a three-letter currency code (e.g. USD, EUR)")
    return code


def _emails(value: list[str]) -> list[str]:
    bad = [v for v in value if not _EMAIL.match(v)]
    if bad:
        raise ValueError(f"not an email address: {', '.join(bad)}")
    return [v.lower() for v in value]


def _action_groups(value: list[str]) -> list[str]:
    bad = [v for v in value if not _ACTION_GROUP.match(v)]
    if bad:
        raise ValueError(f"not an action group id: {', '.join(bad)} (expected /subscriptions/<guid>/"
                         "resourceGroups/<rg>/providers/microsoft.insights/actionGroups/<name>)")
    return value


class BudgetCheckSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # amount, currency and thresholds come before scopes, which are checked with them
    amount: float = Field(default=500.0, gt=0)  # monthly, in the scope's billing currency
    currency: str = "USD"
    thresholds: CommaList = ["80% actual", "100% forecast"]
    contact_emails: CommaList = []  # the Azure budget's own email alerts
    action_groups: CommaList = []  # action group resource ids for the Azure budget
    contact_roles: CommaList = []  # e.g. Owner, Contributor
    scopes: Annotated[list[ScopeSpec], NoDecode, BeforeValidator(_parse_scopes)] = []

    budget_name: str = "ops-monthly"
    manage_budget: bool = True  # create/update the Azure budget; False only reports drift
    operator: Literal["GreaterThan", "GreaterThanOrEqualTo"] = "GreaterThan"
    locale: str = "en-us"

    forecast_window_days: int = Field(default=7, ge=3, le=28)  # trailing run rate of complete days
    data_settle_hours: float = Field(default=24.0, ge=0, le=96)  # a day is complete this long after it ends
    spike_factor: float = Field(default=3.0, gt=1)  # a day this many times its trailing median
    spike_window_days: int = Field(default=7, ge=3, le=28)
    anomaly_min_amount: float = Field(default=10.0, ge=0)  # smaller amounts are never flagged
    top_services: int = Field(default=3, ge=1, le=10)  # services named in an alert

    max_throttle_wait_seconds: float = Field(default=60.0, ge=0, le=600)  # total, per scope query
    max_data_age_days: int = Field(default=2, ge=1, le=31)  # older last complete day: stale

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return _currency_code(value)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if "amount" in info.data and "currency" in info.data:
            resolve_thresholds(value, info.data["amount"], info.data["currency"])
        return [str(parse_threshold(v)) for v in value]

    @field_validator("contact_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return _emails(value)

    @field_validator("action_groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return _action_groups(value)

    @field_validator("budget_name")
    @classmethod
    def _budget_name(cls, value: str) -> str:
        if not _BUDGET_NAME.match(value):
            raise ValueError(f"'{value}' is not a budget name (1-63 letters, digits, - or _)")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[ScopeSpec], info: ValidationInfo) -> list[ScopeSpec]:
        seen: set[str] = set()
        for spec in value:
            if spec.scope.lower() in seen:
                raise ValueError(f"{spec.scope} is given twice")
            seen.add(spec.scope.lower())
            if {"amount", "currency", "thresholds"} <= set(info.data):
                try:
                    _resolve(spec, info.data["amount"], info.data["currency"], info.data["thresholds"],
                             [], [], [])
                except ValueError as exc:
                    raise ValueError(f"{spec.scope}: {exc}") from None
        return value

    def scope_budgets(self, default_subscriptions: list[str] = ()) -> list[ScopeBudget]:
        """Every scope to check: the configured ones, else one per default subscription."""
        specs = self.scopes or [ScopeSpec(scope=s) for s in default_subscriptions]
        return [_resolve(s, self.amount, self.currency, self.thresholds, self.contact_emails,
                         self.action_groups, self.contact_roles) for s in specs]


def _resolve(spec: ScopeSpec, amount: float, currency: str, thresholds: list[str],
             emails: list[str], groups: list[str], roles: list[str]) -> ScopeBudget:
    amount = spec.amount if spec.amount is not None else amount
    currency = spec.currency or currency
    return ScopeBudget(
        scope=spec.scope, amount=amount, currency=currency,
        thresholds=resolve_thresholds(spec.thresholds if spec.thresholds is not None else thresholds,
                                      amount, currency),
        contact_emails=tuple(spec.contact_emails if spec.contact_emails is not None else emails),
        action_groups=tuple(spec.action_groups if spec.action_groups is not None else groups),
        contact_roles=tuple(roles))
