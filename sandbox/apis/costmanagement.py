"""Microsoft.CostManagement: cost queries and forecasts, computed from the world's cost rows.

Operations (route -> operation name, for faults and the request log)
  POST {scope}/providers/Microsoft.CostManagement/query     Microsoft.CostManagement/query/action
  POST {scope}/providers/Microsoft.CostManagement/forecast  Microsoft.CostManagement/forecast/action
  where {scope} is /subscriptions/{id} or /subscriptions/{id}/resourceGroups/{rg}. The scope as
  Azure's docs write it, "/subscriptions/{id}/" (trailing slash, so the URL has "//providers"),
  works too.
  Throttling is the server's: a fault rule on "Microsoft.CostManagement/*" answers 429 with
  Retry-After and the x-ms-ratelimit-microsoft.costmanagement-*-retry-after headers.

World section "costs" (an object; every key optional):
  {
    "currency": "USD",              # the billing currency of every subscription not named below
    "billing_currencies": {"00000000-0000-0000-0000-000000000002": "EUR"},  # per subscription: its
                                    #   billing account's currency (query Currency column, budget spend unit)
    "today": "2025-03-14",          # pins the clock (tests); default: the real UTC date
    "data_through": "yesterday",    # a date expression: the last day with cost data. Cost data lags
                                    #   8-24 h, so no row exists after this day (the job reports freshness
                                    #   from the newest UsageDate it sees)
    "last_day_fraction": 1.0,       # < 1: the data_through day is still partial (only this share of its
                                    #   cost is in); it is then not a "complete" day for forecasts
    "history_months": 2,            # rows start on the first of the month this many months back
    "seed": 1,                      # seeds the daily noise (deterministic per generator and day)
    "page_size": 1000,              # rows per page of a query answer (Azure's is 1000); default: the
                                    #   sandbox's page size (5 in tests); the request's $top overrides both
    "forecast_lookback_days": 7,    # complete days averaged by forecasts
    "require_etag_on_update": false,  # budgets (consumption.py): refuse an update without eTag
    "generators": [                 # one cost series per (subscription, resource group, service)
      {"subscription": "00000000-0000-0000-0000-000000000001", "resource_group": "rg-shopfront-dev",
       "service": "Azure App Service", "daily": 3.2,
       "from": "month_start",       # optional date expressions bounding the series
       "to": null,
       "noise": 0.05,               # relative day-to-day noise (seeded, gaussian, clipped at 3 sigma)
       "weekend_factor": 1.0,       # multiplier on Saturdays and Sundays
       "growth_per_day": 0.0,       # compound growth per day since the series starts (steady growth)
       "spikes": [{"date": "today-4", "amount": 38.0}],   # extra cost on one day
       "charge_type": "Usage",      # the ChargeType dimension: Usage (default), Purchase or Refund
       "location": "West Europe", "resource_id": "...", "resource_type": "...", "tags": {"env": "dev"}}
    ],
    "rows": [                       # explicit rows, added to the generated ones
      {"date": "today-2", "subscription": "...", "resource_group": "...", "service": "...", "cost": 1.5,
       "charge_type": "Purchase"}   # optional, as for generators: a one-off charge (reservation,
    ]                               #   marketplace); a Refund has a negative cost
  }

Date expressions: an ISO date ("2025-03-14"), "today", "yesterday", "month_start", optionally with
an offset in days or months: "today-3", "today+1", "month_start+4", "month_start-2m".

Query (POST .../query), the real request shape (QueryDefinition):
  type ActualCost | AmortizedCost | Usage (all answer the same amounts: no reservations modelled);
  timeframe MonthToDate | BillingMonthToDate | TheLastMonth | TheLastBillingMonth | WeekToDate |
  Custom (+ timePeriod {from, to}, whole days, both inclusive);
  dataset.granularity Daily | Monthly | None (absent = None);
  dataset.aggregation {alias: {name: PreTaxCost|Cost|CostUSD|PreTaxCostUSD, function: Sum}}
  (default: PreTaxCost for Usage, Cost otherwise); dataset.grouping up to 2 of
  {type: Dimension, name: ServiceName|MeterCategory|ResourceGroup|ResourceGroupName|SubscriptionId|
  SubscriptionName|ResourceId|ResourceLocation|ResourceType|ChargeType|PublisherType} or
  {type: TagKey, name: <tag>}; dataset.filter with and/or/not/dimensions/tags (operator In).
  Answer: properties.columns = aggregations (named by the aggregation's *name*, e.g. PreTaxCost),
  then UsageDate (Number yyyymmdd) or BillingMonth (Datetime), then the groupings (a TagKey grouping
  gives TagKey and TagValue), then Currency; rows sorted by date then group values; properties.nextLink
  is the same URL with $skiptoken when rows remain: POST it again with the same body (the SDK's
  query.usage returns one page; follow next_link with client.send_request or params={"$skiptoken"}).

Forecast (POST .../forecast), the real request shape (ForecastDefinition): timeframe Custom with
  timePeriod, dataset.granularity Daily or None, one aggregation (name Cost|PreTaxCost|...), filter;
  includeActualCost, includeFreshPartialCost (both default false). Computed simply:
  - complete days are those up to data_through (the day before it when last_day_fraction < 1);
  - the forecast for each day after the last complete day is the average daily usage cost (ChargeType
    Usage: one-off purchases and refunds are never projected) of the last forecast_lookback_days
    complete days (matching scope and filter; days without rows count 0);
  - includeActualCost adds the actual days in the window (CostStatus "Actual"); with
    includeFreshPartialCost the partial day is reported as Actual (its partial cost) and forecasting
    starts the day after it, otherwise the partial day is forecast like any future day.
  Columns: <aggregation name>, UsageDate (Daily only), CostStatus, Currency. Grouping is refused
  (Azure's forecast cannot be grouped).

Error codes and messages marked "unverified" below follow the ARM shape but their wording could
not be found in public sources.
"""
from __future__ import annotations

import base64
import calendar
import random
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable
from urllib.parse import urlencode

from sandbox.server import ApiError, Request, route
from sandbox.world import World

DEFAULT_PAGE_SIZE = 1000  # Azure's page of query rows
MAX_PAGE_SIZE = 5000
COST_NAMES = {"pretaxcost": "PreTaxCost", "cost": "Cost", "costusd": "CostUSD", "pretaxcostusd": "PreTaxCostUSD"}
TIMEFRAMES = {"monthtodate", "billingmonthtodate", "thelastmonth", "thelastbillingmonth", "weektodate", "custom"}
# Dimension name (lower case) -> (canonical column name, row field).
DIMENSIONS = {
    "servicename": ("ServiceName", "service"),
    "metercategory": ("MeterCategory", "service"),
    "resourcegroup": ("ResourceGroup", "resource_group"),
    "resourcegroupname": ("ResourceGroupName", "resource_group"),
    "subscriptionid": ("SubscriptionId", "subscription"),
    "subscriptionname": ("SubscriptionName", "subscription_name"),
    "resourceid": ("ResourceId", "resource_id"),
    "resourcelocation": ("ResourceLocation", "location"),
    "resourcetype": ("ResourceType", "resource_type"),
    "chargetype": ("ChargeType", "charge_type"),
    "publishertype": ("PublisherType", "publisher_type"),
}


# -- the clock and date expressions ----------------------------------------------
def costs_section(world: World) -> dict[str, Any]:
    return world.section("costs", {})


def today(world: World) -> date:
    pinned = costs_section(world).get("today")
    return date.fromisoformat(pinned) if pinned else datetime.now(timezone.utc).date()


def add_months(d: date, months: int) -> date:
    month0 = d.month - 1 + months
    year, month = d.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


_DATE_EXPR = re.compile(r"^(today|yesterday|month_start)\s*(?:([+-])\s*(\d+)\s*(m|d)?)?$", re.IGNORECASE)


def resolve_date(expr: str | None, now: date) -> date | None:
    """A date expression (see the module docstring) as a date, relative to `now`."""
    if expr is None:
        return None
    expr = str(expr).strip()
    m = _DATE_EXPR.match(expr)
    if not m:
        return date.fromisoformat(expr[:10])
    base = {"today": now, "yesterday": now - timedelta(days=1),
            "month_start": now.replace(day=1)}[m.group(1).lower()]
    if m.group(2):
        n = int(m.group(3)) * (1 if m.group(2) == "+" else -1)
        base = add_months(base, n) if (m.group(4) or "").lower() == "m" else base + timedelta(days=n)
    return base


def month_end(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def data_through(world: World) -> date:
    return resolve_date(costs_section(world).get("data_through", "yesterday"), today(world))


def last_complete_day(world: World) -> date:
    """The newest day whose cost is final (the data_through day is partial when
    last_day_fraction < 1)."""
    through = data_through(world)
    return through - timedelta(days=1) if _last_day_fraction(world) < 1 else through


def _last_day_fraction(world: World) -> float:
    return float(costs_section(world).get("last_day_fraction", 1.0))


def currency(world: World, subscription: str | None = None) -> str:
    """The billing currency of a subscription (its billing account's), or the world's default."""
    section = costs_section(world)
    by_subscription = {k.lower(): v for k, v in (section.get("billing_currencies") or {}).items()}
    return by_subscription.get((subscription or "").lower(), section.get("currency", "USD"))


# -- cost rows ------------------------------------------------------------------------
def cost_rows(world: World) -> list[dict[str, Any]]:
    """Every cost row of the world (one per generator and day, plus explicit rows),
    up to data_through. Fields: date, subscription, resource_group, service, cost and
    the optional location, resource_id, resource_type, tags, subscription_name.
    Read-only for callers: computed once per world generation and day."""
    with world.lock:
        now = today(world)
        key = (world.generation, now, data_through(world))
        cached = getattr(world, "_cost_rows", None)
        if cached is None or cached[0] != key:
            world._cost_rows = cached = (key, _generate_rows(world, now))
        return cached[1]


def _generate_rows(world: World, now: date) -> list[dict[str, Any]]:
    with world.lock:
        section = costs_section(world)
        through = data_through(world)
        fraction = _last_day_fraction(world)
        first = add_months(now.replace(day=1), -int(section.get("history_months", 2)))
        seed = section.get("seed", 1)
        rows: list[dict[str, Any]] = []
        for index, gen in enumerate(section.get("generators", [])):
            start = max(first, resolve_date(gen.get("from"), now) or first)
            end = min(through, resolve_date(gen.get("to"), now) or through)
            spikes: dict[date, float] = {}
            for spike in gen.get("spikes", []):
                day = resolve_date(spike["date"], now)
                spikes[day] = spikes.get(day, 0.0) + float(spike["amount"])
            day = start
            while day <= end:
                rng = random.Random(f"{seed}|{index}|{day.isoformat()}")
                amount = float(gen.get("daily", 0.0))
                if day.weekday() >= 5:
                    amount *= float(gen.get("weekend_factor", 1.0))
                amount *= (1 + float(gen.get("growth_per_day", 0.0))) ** (day - start).days
                amount *= 1 + float(gen.get("noise", 0.0)) * max(-3.0, min(3.0, rng.gauss(0, 1)))
                amount = max(0.0, amount) + spikes.get(day, 0.0)
                if day == through:
                    amount *= fraction
                rows.append(_row(gen, day, amount))
                day += timedelta(days=1)
        for explicit in section.get("rows", []):
            day = resolve_date(explicit["date"], now)
            if first <= day <= through:
                rows.append(_row(explicit, day, float(explicit["cost"])))
        return rows


def _row(spec: dict[str, Any], day: date, amount: float) -> dict[str, Any]:
    return {"date": day, "subscription": spec["subscription"], "resource_group": spec.get("resource_group", ""),
            "service": spec["service"], "cost": round(amount, 8),
            "subscription_name": spec.get("subscription_name", spec["subscription"]),
            "location": spec.get("location", "West Europe"), "resource_id": spec.get("resource_id", ""),
            "resource_type": spec.get("resource_type", ""), "tags": spec.get("tags", {}),
            "charge_type": spec.get("charge_type", "Usage"), "publisher_type": "Azure"}


def parse_scope(scope: str) -> tuple[str, str | None]:
    """(subscription id, resource group or None) of a subscription or resource group scope."""
    parts = [p for p in scope.split("/") if p]
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        if len(parts) >= 4 and parts[2].lower() == "resourcegroups":
            return parts[1], parts[3]
        return parts[1], None
    raise ApiError(400, "BadRequest", f"Invalid scope '{scope}'.")  # unverified


def in_scope(row: dict[str, Any], subscription: str, resource_group: str | None) -> bool:
    if row["subscription"].lower() != subscription.lower():
        return False
    return resource_group is None or row["resource_group"].lower() == resource_group.lower()


def matches(row: dict[str, Any], flt: dict[str, Any] | None) -> bool:
    """A Cost Management / budget filter (and, or, not, dimensions, tags; operator In)."""
    if not flt:
        return True
    lowered = {k.lower(): v for k, v in flt.items()}
    if lowered.get("and"):
        if not all(matches(row, f) for f in lowered["and"]):
            return False
    if lowered.get("or"):
        if not any(matches(row, f) for f in lowered["or"]):
            return False
    if lowered.get("not"):
        if matches(row, lowered["not"]):
            return False
    if lowered.get("dimensions"):
        expr = lowered["dimensions"]
        field = _dimension(expr.get("name", ""))[1]
        if not _compare(str(row.get(field, "")), expr):
            return False
    if lowered.get("tags"):
        expr = lowered["tags"]
        tags = {k.lower(): v for k, v in row.get("tags", {}).items()}
        if expr.get("name", "").lower() not in tags or not _compare(str(tags[expr["name"].lower()]), expr):
            return False
    return True


def _compare(value: str, expr: dict[str, Any]) -> bool:
    operator = str(expr.get("operator", "In")).lower()
    values = [str(v).lower() for v in expr.get("values", [])]
    if operator in ("in", "equal", "equals"):
        return value.lower() in values
    if operator == "contains":
        return any(v in value.lower() for v in values)
    raise ApiError(400, "BadRequest", f"Invalid query definition: operator '{expr.get('operator')}' "
                                      f"is not supported.")  # unverified


def _dimension(name: str) -> tuple[str, str]:
    try:
        return DIMENSIONS[name.lower()]
    except KeyError:
        raise ApiError(400, "BadRequest", f"Invalid query definition: Invalid dimension name '{name}'. "
                                          f"Valid names are: {', '.join(c for c, _ in DIMENSIONS.values())}."
                       ) from None  # unverified


def daily_totals(world: World, subscription: str, resource_group: str | None,
                 flt: dict[str, Any] | None = None, usage_only: bool = False) -> dict[date, float]:
    """Cost per day for a scope (and optional filter); only ChargeType Usage with usage_only."""
    totals: dict[date, float] = {}
    for row in cost_rows(world):
        if usage_only and row["charge_type"].lower() != "usage":
            continue
        if in_scope(row, subscription, resource_group) and matches(row, flt):
            totals[row["date"]] = totals.get(row["date"], 0.0) + row["cost"]
    return totals


def average_complete_day(world: World, totals: dict[date, float]) -> float:
    """The mean cost of the last forecast_lookback_days complete days (days without rows
    count 0; days before the history starts are left out)."""
    lookback = int(costs_section(world).get("forecast_lookback_days", 7))
    last = last_complete_day(world)
    first = add_months(today(world).replace(day=1), -int(costs_section(world).get("history_months", 2)))
    days = [last - timedelta(days=i) for i in range(lookback) if last - timedelta(days=i) >= first]
    return sum(totals.get(d, 0.0) for d in days) / len(days) if days else 0.0


# -- helpers shared by the handlers -------------------------------------------------
def _body(req: Request) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "Invalid query definition: the request body is required.")  # unverified
    return {k.lower(): v for k, v in body.items()}


def _lower_keys(value: Any) -> dict[str, Any]:
    return {k.lower(): v for k, v in value.items()} if isinstance(value, dict) else {}


def _parse_day(value: Any, what: str) -> date:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        raise ApiError(400, "BadRequest", f"Invalid query definition: '{value}' is not a valid {what}.") from None


def _window(world: World, body: dict[str, Any], timeframes: set[str]) -> tuple[date, date]:
    timeframe = str(body.get("timeframe", "")).lower()
    if timeframe not in timeframes:
        raise ApiError(400, "BadRequest", f"Invalid query definition: timeframe '{body.get('timeframe')}' "
                                          f"is not supported.")  # unverified
    now = today(world)
    if timeframe in ("monthtodate", "billingmonthtodate"):
        return now.replace(day=1), now
    if timeframe in ("thelastmonth", "thelastbillingmonth"):
        first = add_months(now.replace(day=1), -1)
        return first, month_end(first)
    if timeframe == "weektodate":
        return now - timedelta(days=now.weekday()), now
    period = _lower_keys(body.get("timeperiod"))
    if "from" not in period or "to" not in period:
        raise ApiError(400, "BadRequest", "Invalid query definition: timePeriod with from and to is "
                                          "required when timeframe is Custom.")  # unverified
    start, end = _parse_day(period["from"], "from date"), _parse_day(period["to"], "to date")
    if end < start:
        raise ApiError(400, "BadRequest", "Invalid query definition: timePeriod.to must be after "
                                          "timePeriod.from.")  # unverified
    return start, end


def _aggregations(dataset: dict[str, Any], cost_type: str) -> list[str]:
    aggregation = dataset.get("aggregation") or {}
    if not aggregation:
        return ["PreTaxCost" if cost_type == "usage" else "Cost"]
    names = []
    for alias, spec in aggregation.items():
        spec = _lower_keys(spec)
        name = str(spec.get("name", ""))
        if name.lower() not in COST_NAMES:
            raise ApiError(400, "BadRequest", f"Invalid query definition: aggregation '{alias}' uses "
                                              f"'{name}', which the sandbox does not model (it has "
                                              f"{', '.join(COST_NAMES.values())}).")
        if str(spec.get("function", "Sum")).lower() != "sum":
            raise ApiError(400, "BadRequest", f"Invalid query definition: function "
                                              f"'{spec.get('function')}' is not supported.")  # unverified
        names.append(COST_NAMES[name.lower()])
    return names


def _granularity(dataset: dict[str, Any], allowed: Iterable[str]) -> str:
    granularity = str(dataset.get("granularity") or "None")
    if granularity.lower() not in allowed:
        raise ApiError(400, "BadRequest", f"Invalid query definition: granularity '{granularity}' is "
                                          f"not supported.")  # unverified
    return granularity.lower()


def _page(req: Request, world: World, rows: list[list[Any]]) -> tuple[list[list[Any]], str | None]:
    token = req.query.get("$skiptoken")
    try:
        start = int(base64.b64decode(token).decode()) if token else 0
    except ValueError:
        raise ApiError(400, "BadRequest", "The skip token is invalid.") from None  # unverified
    try:
        size = int(req.query.get("$top") or costs_section(world).get("page_size") or req.page_size
                   or DEFAULT_PAGE_SIZE)
    except ValueError:
        raise ApiError(400, "BadRequest", "$top must be a number.") from None  # unverified
    size = max(1, min(size, MAX_PAGE_SIZE))
    next_link = None
    if start + size < len(rows):
        query = {k: v for k, v in req.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = base64.b64encode(str(start + size).encode()).decode()
        # As Azure writes it: ...query?api-version=...&$skiptoken=AQAAAA%3D%3D
        next_link = f"{req.base_url}{req.path}?{urlencode(query, safe='$')}"
    return rows[start:start + size], next_link


def _result(scope: str, kind: str, columns: list[dict[str, str]], rows: list[list[Any]],
            next_link: str | None) -> dict[str, Any]:
    # Ids without a leading slash and the null members, as in the examples and the service's answers
    # (azure-rest-api-specs cost-management .../2025-03-01/examples/SubscriptionQuery.json, issue #5005).
    name = str(uuid.uuid4())
    return {"id": f"{scope.strip('/')}/providers/Microsoft.CostManagement/{kind}/{name}", "name": name,
            "type": f"Microsoft.CostManagement/{kind}", "location": None, "sku": None, "eTag": None,
            "properties": {"nextLink": next_link, "columns": columns, "rows": rows}}


def _scope(sub: str, rg: str | None) -> str:
    return f"/subscriptions/{sub}" + (f"/resourceGroups/{rg}" if rg else "")


# -- query ------------------------------------------------------------------------------
# Shapes: specification/cost-management/resource-manager/Microsoft.CostManagement/stable/2025-03-01/
# examples/SubscriptionQuery.json, SubscriptionQueryGrouping.json, ResourceGroupQuery.json; paging
# (nextLink with $skiptoken, POSTed again) as reported in Azure/azure-rest-api-specs#23405.
@route("POST", "/subscriptions/{sub}/providers/Microsoft.CostManagement/query",
       "Microsoft.CostManagement/query/action")
@route("POST", "/subscriptions/{sub}//providers/Microsoft.CostManagement/query",
       "Microsoft.CostManagement/query/action")
def query_subscription(req: Request, world: World, sub: str):
    return _query(req, world, sub, None)


@route("POST", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CostManagement/query",
       "Microsoft.CostManagement/query/action")
def query_resource_group(req: Request, world: World, sub: str, rg: str):
    return _query(req, world, sub, rg)


def _query(req: Request, world: World, sub: str, rg: str | None) -> dict[str, Any]:
    body = _body(req)
    cost_type = str(body.get("type", "")).lower()
    if cost_type not in ("actualcost", "amortizedcost", "usage"):
        raise ApiError(400, "BadRequest", f"Invalid query definition: type '{body.get('type')}' is not "
                                          f"supported.")  # unverified
    start, end = _window(world, body, TIMEFRAMES)
    dataset = _lower_keys(body.get("dataset"))
    aggregations = _aggregations(dataset, cost_type)
    granularity = _granularity(dataset, ("daily", "monthly", "none"))
    groupings = [_lower_keys(g) for g in dataset.get("grouping") or []]
    if len(groupings) > 2:
        raise ApiError(400, "BadRequest", "Invalid query definition: a query can have at most 2 "
                                          "groupings.")  # unverified
    group_columns: list[str] = []
    for g in groupings:
        if str(g.get("type", "")).lower() == "tagkey":
            group_columns += ["TagKey", "TagValue"]
        elif str(g.get("type", "")).lower() == "dimension":
            group_columns.append(_dimension(str(g.get("name", "")))[0])
        else:
            raise ApiError(400, "BadRequest", f"Invalid query definition: grouping type '{g.get('type')}' "
                                              f"is not supported.")  # unverified
    flt = dataset.get("filter")

    totals: dict[tuple, float] = {}
    for row in cost_rows(world):
        if not (start <= row["date"] <= end and in_scope(row, sub, rg) and matches(row, flt)):
            continue
        if granularity == "daily":
            key: tuple = (int(row["date"].strftime("%Y%m%d")),)
        elif granularity == "monthly":
            key = (row["date"].replace(day=1).strftime("%Y-%m-%dT00:00:00"),)
        else:
            key = ()
        for g in groupings:
            if str(g.get("type")).lower() == "tagkey":
                tags = {k.lower(): (k, v) for k, v in row["tags"].items()}
                key += tags.get(str(g["name"]).lower(), ("", ""))
            else:
                key += (str(row.get(_dimension(str(g["name"]))[1], "")),)
        totals[key] = totals.get(key, 0.0) + row["cost"]

    columns = [{"name": name, "type": "Number"} for name in aggregations]
    if granularity == "daily":
        columns.append({"name": "UsageDate", "type": "Number"})
    elif granularity == "monthly":
        columns.append({"name": "BillingMonth", "type": "Datetime"})
    columns += [{"name": name, "type": "String"} for name in group_columns]
    columns.append({"name": "Currency", "type": "String"})
    money = currency(world, sub)
    rows = [[round(total, 8)] * len(aggregations) + list(key) + [money]
            for key, total in sorted(totals.items(), key=lambda kv: [str(k).lower() for k in kv[0]])]
    page, next_link = _page(req, world, rows)
    return _result(_scope(sub, rg), "query", columns, page, next_link)


# -- forecast ------------------------------------------------------------------------------
# Shapes: specification/cost-management/resource-manager/Microsoft.CostManagement/stable/2025-03-01/
# examples/SubscriptionForecast.json (columns PreTaxCost|Cost, UsageDate, CostStatus, Currency).
@route("POST", "/subscriptions/{sub}/providers/Microsoft.CostManagement/forecast",
       "Microsoft.CostManagement/forecast/action")
@route("POST", "/subscriptions/{sub}//providers/Microsoft.CostManagement/forecast",
       "Microsoft.CostManagement/forecast/action")
def forecast_subscription(req: Request, world: World, sub: str):
    return _forecast(req, world, sub, None)


@route("POST", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CostManagement/forecast",
       "Microsoft.CostManagement/forecast/action")
def forecast_resource_group(req: Request, world: World, sub: str, rg: str):
    return _forecast(req, world, sub, rg)


def _forecast(req: Request, world: World, sub: str, rg: str | None) -> dict[str, Any]:
    body = _body(req)
    cost_type = str(body.get("type", "")).lower()
    if cost_type not in ("actualcost", "amortizedcost", "usage"):
        raise ApiError(400, "BadRequest", f"Invalid forecast definition: type '{body.get('type')}' is not "
                                          f"supported.")  # unverified
    start, end = _window(world, body, {"custom"})
    dataset = _lower_keys(body.get("dataset"))
    if dataset.get("grouping"):
        raise ApiError(400, "BadRequest", "Invalid forecast definition: grouping is not supported "
                                          "by forecast.")  # unverified
    aggregations = _aggregations(dataset, cost_type)
    granularity = _granularity(dataset, ("daily", "none"))
    include_actual = bool(body.get("includeactualcost", False))
    include_partial = bool(body.get("includefreshpartialcost", False))

    totals = daily_totals(world, sub, rg, dataset.get("filter"))
    # One-off charges (Purchase, Refund) are actuals on their day, never projected.
    average = average_complete_day(world, daily_totals(world, sub, rg, dataset.get("filter"), usage_only=True))
    last_complete = last_complete_day(world)
    partial = data_through(world) if _last_day_fraction(world) < 1 else None
    last_actual = partial if (include_partial and partial) else last_complete

    series: list[tuple[date, float, str]] = []
    day = start
    while day <= end:
        if day <= last_actual:
            if include_actual:
                series.append((day, totals.get(day, 0.0), "Actual"))
        else:
            series.append((day, average, "Forecast"))
        day += timedelta(days=1)

    money = currency(world, sub)
    columns = [{"name": name, "type": "Number"} for name in aggregations]
    if granularity == "daily":
        columns.append({"name": "UsageDate", "type": "Number"})
        rows = [[round(v, 8)] * len(aggregations) + [int(d.strftime("%Y%m%d")), status, money]
                for d, v, status in series]
    else:
        rows = []
        for status in ("Actual", "Forecast"):
            values = [v for _, v, s in series if s == status]
            if values:
                rows.append([round(sum(values), 8)] * len(aggregations) + [status, money])
    columns += [{"name": "CostStatus", "type": "String"}, {"name": "Currency", "type": "String"}]
    return _result(_scope(sub, rg), "query", columns, rows, None)
