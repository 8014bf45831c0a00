"""Microsoft.Consumption budgets, with Azure's rules and spend computed from the world's cost rows.

Operations (route -> operation name, for faults and the request log); {scope} is
/subscriptions/{id} or /subscriptions/{id}/resourceGroups/{rg} (the documented form
"/subscriptions/{id}/", which puts "//providers" in the URL, works too):
  GET    {scope}/providers/Microsoft.Consumption/budgets          Microsoft.Consumption/budgets/list
  GET    {scope}/providers/Microsoft.Consumption/budgets/{name}   Microsoft.Consumption/budgets/read
  PUT    {scope}/providers/Microsoft.Consumption/budgets/{name}   Microsoft.Consumption/budgets/write
  DELETE {scope}/providers/Microsoft.Consumption/budgets/{name}   Microsoft.Consumption/budgets/delete

World section "budgets" (a list; each entry is a budget as Azure returns it, plus its scope):
  {"scope": "/subscriptions/00000000-0000-0000-0000-000000000001",
   "name": "shopfront-nonprod-monthly",
   "eTag": "\\"1d34d016a593709\\"",                 # optional: generated when absent
   "properties": {"category": "Cost", "amount": 600, "timeGrain": "Monthly",
                  "timePeriod": {"startDate": "month_start-5m", "endDate": null},
                  "filter": {...},                   # optional, as Azure's BudgetFilter
                  "notifications": {"Actual_GreaterThan_80_Percent": {"enabled": true,
                      "operator": "GreaterThan", "threshold": 80, "thresholdType": "Actual",
                      "contactEmails": ["..."], "contactGroups": [], "contactRoles": []}}}}
  startDate/endDate may be date expressions (costmanagement.py: "month_start-5m", "today", ISO).
  Entries are normalised in place on first use (id, type, dates as ISO datetimes, eTag).

currentSpend and forecastSpend are computed on every read (Azure evaluates them about once a
day; the sandbox is always current up to the cost data's `data_through`):
  currentSpend  = the cost rows of the budget's scope (and filter) in the current budget period
                  (calendar month / quarter / year for Monthly / Quarterly / Annually and the
                  Billing* grains), up to data_through (a partial last day included);
  forecastSpend = the complete days of the period + later one-off charges (Purchase, Refund), once
                  + (average complete day of usage, as the forecast API computes it) x (days left
                  in the period, the partial day included).
  unit = the subscription's billing currency (costs.billing_currencies, else costs.currency).

PUT rules (what Azure enforces; messages marked "unverified" could not be found in public sources):
  - category Cost; amount > 0; timeGrain Monthly|Quarterly|Annually|BillingMonth|BillingQuarter|
    BillingAnnual; timePeriod.startDate required.
  - startDate must be the first of a month, on or after 2017-06-01, at most 12 months ahead, and,
    for a new budget, not before the start of the current time-grain period (unverified wording).
  - the start date of an existing budget cannot change: 400 "Start date of budgets cannot be
    updated. Please delete and create a new budget." (wording seen in deployment failures).
  - eTag is optional, as Azure documents; a stale eTag is refused with 400, code "400", "There are
    changes made to Budget {name}. Please get the latest budget to avoid overwrite." (the wording
    Azure answered in MicrosoftDocs/azure-docs#34023). costs.require_etag_on_update = true makes
    an update without an eTag fail the same way.
  - at most 5 notifications; each: enabled (bool), operator EqualTo|GreaterThan|
    GreaterThanOrEqualTo, threshold a percentage 0.01-1000, thresholdType Actual|Forecasted
    (default Actual), at least one of contactEmails / contactGroups (sub and RG scopes),
    contactGroups are action group resource ids, contactRoles free role names.
  Create answers 201, update 200; delete answers 200 with no body (DeleteBudget.json).
Errors use Consumption's numeric-string codes ("400", "404") in ARM's {"error": {code, message}}.
"""
from __future__ import annotations

import copy
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sandbox.apis import costmanagement as cm
from sandbox.server import ApiError, Request, Response, paged, route
from sandbox.world import World

RESOURCE_TYPE = "Microsoft.Consumption/budgets"
TIME_GRAINS = {"monthly": "Monthly", "quarterly": "Quarterly", "annually": "Annually",
               "billingmonth": "BillingMonth", "billingquarter": "BillingQuarter", "billingannual": "BillingAnnual"}
OPERATORS = {"equalto": "EqualTo", "greaterthan": "GreaterThan", "greaterthanorequalto": "GreaterThanOrEqualTo"}
THRESHOLD_TYPES = {"actual": "Actual", "forecasted": "Forecasted"}
MAX_NOTIFICATIONS = 5
EARLIEST_START = date(2017, 6, 1)


def _bad(message: str) -> ApiError:
    return ApiError(400, "400", message)


def _iso(d: date) -> str:
    return f"{d.isoformat()}T00:00:00Z"


def _parse_datetime(value: Any, what: str) -> date:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        raise _bad(f"The {what} '{value}' is not a valid date.") from None  # unverified


def _new_etag() -> str:
    return f'"{uuid.uuid4().hex[:15]}"'


# -- the stored budgets -------------------------------------------------------------------
def _budgets(world: World) -> list[dict[str, Any]]:
    """The world's budgets, normalised (resolved dates, id, type, eTag)."""
    budgets = world.section("budgets", [])
    now = cm.today(world)
    for budget in budgets:
        if budget.get("_normalised"):
            continue
        scope = "/" + budget["scope"].strip("/")
        budget["scope"] = scope
        budget.setdefault("type", RESOURCE_TYPE)
        budget["id"] = f"{scope.lstrip('/')}/providers/{RESOURCE_TYPE}/{budget['name']}"
        budget.setdefault("eTag", _new_etag())
        props = budget.setdefault("properties", {})
        period = props.setdefault("timePeriod", {})
        start = cm.resolve_date(period.get("startDate"), now) or now.replace(day=1)
        period["startDate"] = _iso(start)
        end = cm.resolve_date(period.get("endDate"), now)
        period["endDate"] = _iso(end or cm.add_months(start, 120))
        budget["_normalised"] = True
    return budgets


def _find(world: World, scope: str, name: str) -> dict[str, Any] | None:
    for budget in _budgets(world):
        if budget["scope"].lower() == scope.lower() and budget["name"].lower() == name.lower():
            return budget
    return None


def _not_found(name: str) -> ApiError:
    return ApiError(404, "404", f"Budget '{name}' was not found.")  # unverified wording


# -- spend -------------------------------------------------------------------------------------
def _period(grain: str, now: date) -> tuple[date, date]:
    grain = grain.lower()
    if grain in ("quarterly", "billingquarter"):
        start = date(now.year, 3 * ((now.month - 1) // 3) + 1, 1)
        return start, cm.add_months(start, 3) - timedelta(days=1)
    if grain in ("annually", "billingannual"):
        return date(now.year, 1, 1), date(now.year, 12, 31)
    return now.replace(day=1), cm.month_end(now)


def _spend(world: World, budget: dict[str, Any]) -> tuple[float, float]:
    """(current spend, forecast spend) of a budget's current period."""
    props = budget["properties"]
    subscription, resource_group = cm.parse_scope(budget["scope"])
    start, end = _period(props.get("timeGrain", "Monthly"), cm.today(world))
    totals = cm.daily_totals(world, subscription, resource_group, props.get("filter"))
    usage = cm.daily_totals(world, subscription, resource_group, props.get("filter"), usage_only=True)
    current = sum(v for d, v in totals.items() if start <= d <= end)
    last_complete = cm.last_complete_day(world)
    complete = sum(v for d, v in totals.items() if start <= d <= min(end, last_complete))
    later_one_off = sum(v - usage.get(d, 0.0) for d, v in totals.items() if last_complete < d <= end)
    days_left = (end - max(last_complete, start - timedelta(days=1))).days
    forecast = complete + later_one_off + cm.average_complete_day(world, usage) * max(0, days_left)
    return round(current, 2), round(forecast, 2)


def _public(world: World, budget: dict[str, Any]) -> dict[str, Any]:
    # Shape: specification/consumption/Consumption.Management/examples/2024-08-01/Budget.json
    body = {k: copy.deepcopy(v) for k, v in budget.items() if k not in ("scope", "_normalised")}
    current, forecast = _spend(world, budget)
    unit = cm.currency(world, cm.parse_scope(budget["scope"])[0])  # the billing account's currency
    body["properties"]["currentSpend"] = {"amount": current, "unit": unit}
    body["properties"]["forecastSpend"] = {"amount": forecast, "unit": unit}
    return body


# -- handlers -------------------------------------------------------------------------------------
def _scope(sub: str, rg: str | None) -> str:
    return f"/subscriptions/{sub}" + (f"/resourceGroups/{rg}" if rg else "")


# Shape: specification/consumption/Consumption.Management/examples/2024-08-01/BudgetsList.json
@route("GET", "/subscriptions/{sub}/providers/Microsoft.Consumption/budgets", "Microsoft.Consumption/budgets/list")
@route("GET", "/subscriptions/{sub}//providers/Microsoft.Consumption/budgets",
       "Microsoft.Consumption/budgets/list")
def list_subscription(req: Request, world: World, sub: str):
    return _list(req, world, _scope(sub, None))


@route("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Consumption/budgets",
       "Microsoft.Consumption/budgets/list")
def list_resource_group(req: Request, world: World, sub: str, rg: str):
    return _list(req, world, _scope(sub, rg))


def _list(req: Request, world: World, scope: str) -> dict[str, Any]:
    with world.lock:
        items = [_public(world, b) for b in _budgets(world) if b["scope"].lower() == scope.lower()]
    # Azure lists a scope's budgets in one page; the sandbox pages like every ARM list.
    return paged(req, items)


# Shape: specification/consumption/Consumption.Management/examples/2024-08-01/Budget.json
@route("GET", "/subscriptions/{sub}/providers/Microsoft.Consumption/budgets/{name}",
       "Microsoft.Consumption/budgets/read")
@route("GET", "/subscriptions/{sub}//providers/Microsoft.Consumption/budgets/{name}",
       "Microsoft.Consumption/budgets/read")
def get_subscription(req: Request, world: World, sub: str, name: str):
    return _get(world, _scope(sub, None), name)


@route("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Consumption/budgets/{name}",
       "Microsoft.Consumption/budgets/read")
def get_resource_group(req: Request, world: World, sub: str, rg: str, name: str):
    return _get(world, _scope(sub, rg), name)


def _get(world: World, scope: str, name: str) -> dict[str, Any]:
    with world.lock:
        budget = _find(world, scope, name)
        if budget is None:
            raise _not_found(name)
        return _public(world, budget)


# Shape: specification/consumption/Consumption.Management/examples/2024-08-01/CreateOrUpdateBudget.json
@route("PUT", "/subscriptions/{sub}/providers/Microsoft.Consumption/budgets/{name}",
       "Microsoft.Consumption/budgets/write")
@route("PUT", "/subscriptions/{sub}//providers/Microsoft.Consumption/budgets/{name}",
       "Microsoft.Consumption/budgets/write")
def put_subscription(req: Request, world: World, sub: str, name: str):
    return _put(req, world, _scope(sub, None), name)


@route("PUT", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Consumption/budgets/{name}",
       "Microsoft.Consumption/budgets/write")
def put_resource_group(req: Request, world: World, sub: str, rg: str, name: str):
    return _put(req, world, _scope(sub, rg), name)


def _put(req: Request, world: World, scope: str, name: str) -> Response:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise _bad("The budget properties are required.")  # unverified
    with world.lock:
        existing = _find(world, scope, name)
        if existing is not None:
            etag = body.get("eTag")
            require = cm.costs_section(world).get("require_etag_on_update", False)
            if (etag is not None and etag != existing["eTag"]) or (etag is None and require):
                raise _bad(f"There are changes made to Budget {existing['name']}. Please get the latest "
                           f"budget to avoid overwrite. (Request ID: {uuid.uuid4()})")
        props = _validated(world, body["properties"], existing)
        budget = {"scope": scope, "name": existing["name"] if existing else name, "type": RESOURCE_TYPE,
                  "id": f"{scope.lstrip('/')}/providers/{RESOURCE_TYPE}/{existing['name'] if existing else name}",
                  "eTag": _new_etag(), "properties": props, "_normalised": True}
        budgets = world.section("budgets", [])
        if existing is not None:
            budgets[budgets.index(existing)] = budget
        else:
            budgets.append(budget)
        world.version += 1
        return Response(200 if existing else 201, _public(world, budget))


def _validated(world: World, props: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """The properties to store, or the error Azure answers."""
    props = {k: v for k, v in props.items() if k not in ("currentSpend", "forecastSpend")}
    if str(props.get("category", "")).lower() != "cost":
        raise _bad(f"Invalid budget category '{props.get('category')}'. Supported: Cost.")  # unverified
    try:
        amount = float(props.get("amount"))
    except (TypeError, ValueError):
        raise _bad("The budget amount is required and must be a number.") from None  # unverified
    if amount <= 0:
        raise _bad("The budget amount must be greater than 0.")  # unverified
    grain = TIME_GRAINS.get(str(props.get("timeGrain", "")).lower())
    if grain is None:
        raise _bad(f"Invalid time grain '{props.get('timeGrain')}'. Supported: "
                   f"{', '.join(TIME_GRAINS.values())}.")  # unverified
    props["timeGrain"] = grain
    period = props.get("timePeriod") or {}
    if not period.get("startDate"):
        raise _bad("The budget time period start date is required.")  # unverified
    start = _parse_datetime(period["startDate"], "start date")
    now = cm.today(world)
    if existing is not None:
        old_start = _parse_datetime(existing["properties"]["timePeriod"]["startDate"], "start date")
        if start != old_start:
            raise _bad("Start date of budgets cannot be updated. Please delete and create a new budget.")
    else:
        if start.day != 1:
            raise _bad("Budget start date must be the first day of the month.")  # unverified
        if start < EARLIEST_START:
            raise _bad("Budget start date must be on or after June 1, 2017.")  # unverified
        if start > cm.add_months(now.replace(day=1), 12):
            raise _bad("Budget start date cannot be more than twelve months in the future.")  # unverified
        if start < _period(grain, now)[0]:
            raise _bad("Budget start date in the past must be within the current time grain "
                       "period.")  # unverified
    end = _parse_datetime(period["endDate"], "end date") if period.get("endDate") else cm.add_months(start, 120)
    if end <= start:
        raise _bad("Budget end date must be after the start date.")  # unverified
    props["timePeriod"] = {"startDate": _iso(start), "endDate": _iso(end)}
    props["notifications"] = _notifications(props.get("notifications") or {})
    return props


def _notifications(notifications: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(notifications, dict):
        raise _bad("Notifications must be a dictionary of notification name to notification.")  # unverified
    if len(notifications) > MAX_NOTIFICATIONS:
        raise _bad(f"A budget can have up to {MAX_NOTIFICATIONS} notifications; "
                   f"{len(notifications)} were given.")  # unverified wording
    result = {}
    for key, n in notifications.items():
        n = dict(n or {})
        if not isinstance(n.get("enabled"), bool):
            raise _bad(f"Notification '{key}': enabled is required.")  # unverified
        operator = OPERATORS.get(str(n.get("operator", "")).lower())
        if operator is None:
            raise _bad(f"Notification '{key}': invalid operator '{n.get('operator')}'. Supported: "
                       f"{', '.join(OPERATORS.values())}.")  # unverified
        n["operator"] = operator
        try:
            threshold = float(n.get("threshold"))
        except (TypeError, ValueError):
            raise _bad(f"Notification '{key}': threshold is required.") from None  # unverified
        if not 0.01 <= threshold <= 1000:
            raise _bad(f"Notification '{key}': threshold must be a percentage between 0.01 and 1000; "
                       f"got {n.get('threshold')}.")  # unverified
        threshold_type = THRESHOLD_TYPES.get(str(n.get("thresholdType", "Actual")).lower())
        if threshold_type is None:
            raise _bad(f"Notification '{key}': invalid thresholdType '{n.get('thresholdType')}'. "
                       f"Supported: Actual, Forecasted.")  # unverified
        n["thresholdType"] = threshold_type
        emails, groups = n.get("contactEmails") or [], n.get("contactGroups") or []
        if not emails and not groups:
            raise _bad(f"Notification '{key}': at least one contact email or contact group is "
                       f"required.")  # unverified
        for group in groups:
            if "/providers/microsoft.insights/actiongroups/" not in str(group).lower():
                raise _bad(f"Notification '{key}': contact group '{group}' is not an action group "
                           f"resource id.")  # unverified
        n["contactEmails"] = list(emails)
        result[key] = n
    return result


# Shape: specification/consumption/Consumption.Management/examples/2024-08-01/DeleteBudget.json
@route("DELETE", "/subscriptions/{sub}/providers/Microsoft.Consumption/budgets/{name}",
       "Microsoft.Consumption/budgets/delete")
@route("DELETE", "/subscriptions/{sub}//providers/Microsoft.Consumption/budgets/{name}",
       "Microsoft.Consumption/budgets/delete")
def delete_subscription(req: Request, world: World, sub: str, name: str):
    return _delete(world, _scope(sub, None), name)


@route("DELETE", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Consumption/budgets/{name}",
       "Microsoft.Consumption/budgets/delete")
def delete_resource_group(req: Request, world: World, sub: str, rg: str, name: str):
    return _delete(world, _scope(sub, rg), name)


def _delete(world: World, scope: str, name: str) -> Response:
    with world.lock:
        budget = _find(world, scope, name)
        if budget is None:
            raise _not_found(name)
        world.section("budgets", []).remove(budget)
        world.version += 1
    return Response(200)
