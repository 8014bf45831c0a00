"""Settings of the dev-hours job (app settings OPS_DEV_HOURS__*).

Validated once when the app's settings load; each message names what is wrong
so the app can report ``OPS_DEV_HOURS__<FIELD>: <message>``. Lists are written
``a,b,c``; prices ``P1v3=0.169,B1=0.018``. Never holds a secret.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from jobs.config_types import CommaList, split_commas

from jobs.dev_hours.schedule import (ScheduleError, canonical_calendar, canonical_zone,
                                     parse_schedule)
from jobs.dev_hours.skus import SKU_NAME, sku_from_name



def _parse_prices(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    prices: dict[str, Any] = {}
    for item in split_commas(value):
        name, sep, price = item.partition("=")
        if not sep or not name.strip() or not price.strip():
            raise ValueError(f"'{item}' is not NAME=PRICE (e.g. P1v3=0.169)")
        prices[name.strip()] = price.strip()
    return prices


def _split_dates(value: Any) -> Any:
    items = split_commas(value)
    for item in items if isinstance(items, list) else ():
        if isinstance(item, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", item):
            raise ValueError(f"'{item}' is not a date YYYY-MM-DD")
    return items


def _tag_name(value: str) -> str:
    value = value.strip()
    if not value or _BAD_TAG_NAME_CHARS & set(value) or len(value) > 512:
        raise ValueError(f"'{value}' is not a usable tag name (1-512 characters, none of <>%&\\?/)")
    return value


DateList = Annotated[list[date], NoDecode, BeforeValidator(_split_dates)]
PriceList = Annotated[dict[str, float], NoDecode, BeforeValidator(_parse_prices)]

_SUBSCRIPTION_ID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_BAD_TAG_NAME_CHARS = set("<>%&\\?/")


class DevHoursSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscriptions: CommaList = []  # empty: the app-wide OPS_SUBSCRIPTIONS
    resource_groups: CommaList = []  # empty: all
    opt_in_tag: str = "ops-dev-hours"
    # timezone and holidays come before default_schedule, which is checked with them
    timezone: str = "Europe/London"  # IANA zone of schedules without tz=
    holiday_country: str | None = None  # "GB", "US-NY"
    holiday_dates: DateList = []  # extra off days, YYYY-MM-DD
    default_schedule: str = "Mon-Fri 08:00-19:00"  # used when the opt-in tag says "default"
    deny_subscriptions: CommaList = []
    deny_name_pattern: str | None = None  # extra to the built-in production pattern (app, slot, plan, group)
    deny_tag_keys: CommaList = []  # extra to environment, env, stage, tier, lifecycle
    deny_tag_values: CommaList = []  # extra to prod, production, prd (+ digits); matched as words
    max_actions_per_run: int = Field(default=50, ge=1, le=1000)  # changes; marker tags are not counted
    scale_down_capacity: int = Field(default=1, ge=1, le=30)
    scale_down_sku: str | None = None  # e.g. "B1"; None keeps the SKU
    prices: PriceList = {}  # hourly price per instance, by SKU name

    @field_validator("subscriptions", "deny_subscriptions")
    @classmethod
    def _subscription_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _SUBSCRIPTION_ID.match(v)]
        if bad:
            raise ValueError(f"not a subscription id: {', '.join(bad)} "
                             "(expected a GUID like 00000000-0000-0000-0000-000000000000)")
        return [v.lower() for v in value]

    @field_validator("resource_groups", "deny_tag_values")
    @classmethod
    def _lowercase(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]

    @field_validator("opt_in_tag")
    @classmethod
    def _tag_name(cls, value: str) -> str:
        return _tag_name(value)

    @field_validator("deny_tag_keys")
    @classmethod
    def _tag_names(cls, value: list[str]) -> list[str]:
        return [_tag_name(v).lower() for v in value]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            return canonical_zone(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("holiday_country")
    @classmethod
    def _calendar(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return canonical_calendar(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("deny_name_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("scale_down_sku")
    @classmethod
    def _sku(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            sku = sku_from_name(value.strip())
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if sku.tier in ("Dynamic", "ElasticPremium", "FlexConsumption", "Isolated", "IsolatedV2",
                        "WorkflowStandard"):
            raise ValueError(f"{sku.name} ({sku.tier}) cannot be a scale-down target; "
                             "use a Free, Shared, Basic, Standard or Premium SKU")
        return sku.name

    @field_validator("prices")
    @classmethod
    def _prices(cls, value: dict[str, float]) -> dict[str, float]:
        for name, price in value.items():
            if not SKU_NAME.match(name):
                raise ValueError(f"'{name}' is not an App Service SKU name (e.g. B1, S1, P1v3)")
            if price < 0:
                raise ValueError(f"price of {name} is negative")
        return {name: float(price) for name, price in value.items()}

    @field_validator("default_schedule")
    @classmethod
    def _default_schedule(cls, value: str, info: ValidationInfo) -> str:
        try:
            parse_schedule(value, zone=info.data.get("timezone", "UTC"),
                           holiday_calendar=info.data.get("holiday_country"),
                           holiday_dates=info.data.get("holiday_dates", ()))
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()
