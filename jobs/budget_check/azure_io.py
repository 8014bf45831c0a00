"""What the budget-check job reads from and writes to Azure: observe() and apply().

observe() makes, per scope, one Cost Management query (one POST per result
page, following nextLink), for a subscription scope a second one-page query
(month to date per resource group: a query takes at most 2 groupings, the
first has ServiceName and ChargeType), and one Consumption ``budgets.get``;
apply() makes exactly one call per action (a budget ``create_or_update`` or one
notification). Never decides anything (plan.py does) and never writes in
observe().

Throttling. Cost Management limits are strict (a few queries per 10 s per
tenant) and answer 429 with ``Retry-After`` and its own
``x-ms-ratelimit-microsoft.costmanagement-<bucket>-retry-after`` headers.
azure-core's RetryPolicy would retry a 429 by itself, honouring Retry-After
only and with its own retry count, so the job's wait cap
(OPS_BUDGET_CHECK__MAX_THROTTLE_WAIT_SECONDS) would not hold. Every query call
therefore passes ``retry_status=0``: azure-core hands every error *status*
straight back (it never retries a POST's dropped connection anyway), and
this module waits what ``throttle.next_wait`` says (the largest of all those
headers) within the cap, then stops: the scope's costs are then partial and
say so. A 5xx or a dropped connection is retried here too (the query only
reads), twice per page at most, within the same cap.
Consumption budget calls keep azure-core's default retries (other limits).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any, Callable

from jobs.budget_check import throttle
from jobs.budget_check.alerts import STATE_KEY, AlertState
from jobs.budget_check.budget import ObservedBudget, parse_budget
from jobs.budget_check.config import BudgetCheckSettings, ScopeBudget
from jobs.budget_check.costs import (CostData, cost_query, group_query, parse_groups, parse_rows,
                                     query_period, utc_date)
from jobs.budget_check.plan import BudgetPlan, ScopeObservation
from jobs.model import Action

log = logging.getLogger(__name__)

# Scopes observed at once. Cost Management's query limits are per tenant (QPU: about
# 12 per 10 s), so more threads only earn more 429s; two keep one scope's paging
# going while the other waits on the network.
READ_CONCURRENCY = 2
TRANSIENT_RETRIES = 2  # per page, after a 5xx or a dropped connection, within the same wait cap
MAX_THROTTLED_ATTEMPTS = 10  # per page: a 429 that asks for 0 s must not loop for ever
NO_RETRY = {"retry_status": 0}  # see the module docstring
_TRANSIENT_STATUSES = (500, 502, 503, 504)

sleep: Callable[[float], None] = time.sleep  # the one place this module waits


@dataclass
class QueryStats:
    """How one scope's cost query went, for the run report."""

    pages: int = 0  # answered pages
    throttled: int = 0  # 429 answers
    transient_errors: int = 0  # 5xx answers and dropped connections retried
    waited_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"pages": self.pages, "throttled": self.throttled,
                "transient_errors": self.transient_errors, "waited_seconds": round(self.waited_seconds, 2)}


@dataclass
class Observed:
    """One run's view of the world, and what planning made of it (for finish)."""

    budgets: list[ScopeBudget]
    scopes: list[ScopeObservation]
    state: AlertState
    etag: str | None
    stats: dict[str, QueryStats] = field(default_factory=dict)  # scope key -> query stats
    result: BudgetPlan | None = None  # set by the job's plan()


class Throttled(Exception):
    """Cost Management kept answering 429 past the wait cap."""


# -- observe ---------------------------------------------------------------------

def observe(ctx) -> Observed:
    config: BudgetCheckSettings = ctx.settings.budget_check
    data, etag = ctx.load_state(STATE_KEY)
    state = AlertState.from_json(data)
    budgets = config.scope_budgets(list(dict.fromkeys(ctx.settings.subscriptions)))
    observed = Observed(budgets, [], state, etag)
    if not budgets:
        return observed
    today = utc_date(ctx.now)
    cost_client = ctx.clients.cost  # built once, before the threads share it
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY, thread_name_prefix="budget-check-read") as pool:
        futures = [(b, pool.submit(observe_scope, cost_client, ctx.clients, b, config, today))
                   for b in budgets]
        for budget, future in futures:
            scope_observation, stats = future.result()  # observe_scope reports, never raises
            observed.scopes.append(scope_observation)
            observed.stats[budget.key] = stats
    return observed


def observe_scope(cost_client, clients, budget: ScopeBudget, config: BudgetCheckSettings,
                  today: date) -> tuple[ScopeObservation, QueryStats]:
    stats = QueryStats()
    costs, cost_error = None, None
    try:
        costs = query_costs(cost_client, budget.scope, today, config.max_throttle_wait_seconds, stats)
    except Exception as exc:  # noqa: BLE001 - reported as the scope's cost-query failure
        log.warning("could not query the costs of %s", budget.scope, exc_info=not isinstance(exc, Throttled))
        cost_error = describe(exc)
    observed_budget, budget_error = None, None
    try:
        observed_budget = read_budget(clients.consumption(subscription_of(budget.scope)), budget.scope,
                                      config.budget_name)
    except Exception as exc:  # noqa: BLE001 - reported as the scope's budget failure
        log.warning("could not read budget %s of %s", config.budget_name, budget.scope, exc_info=True)
        budget_error = describe(exc)
    log.info("observed %s: %s, budget %s", budget.scope,
             "no costs" if costs is None else f"{len(costs.rows)} cost rows in {stats.pages} page(s)"
             + (" (PARTIAL)" if costs.partial else ""),
             "unreadable" if budget_error else ("missing" if observed_budget is None else "found"))
    return ScopeObservation(budget.scope, costs=costs, cost_error=cost_error, budget=observed_budget,
                            budget_error=budget_error), stats


def query_costs(client, scope: str, today: date, cap: float, stats: QueryStats) -> CostData:
    """Every page of the scope's query (``costs.cost_query``) and, for a subscription,
    of its resource group query (``costs.group_query``). Raises when the first page
    cannot be had; a later page that cannot be had makes the data partial."""
    columns_rows, reason = _all_pages(client, scope, cost_query(today), cap, stats)
    rows = [r for columns, page in columns_rows for r in parse_rows(columns, page)]
    start = query_period(today)[0]
    groups, groups_error = (_query_groups(client, scope, today, cap, stats)
                            if "/resourcegroups/" not in scope.lower() and reason is None else (None, None))
    return CostData(tuple(rows), start, partial=reason is not None, partial_reason=reason,
                    by_resource_group=groups, groups_error=groups_error)


def _query_groups(client, scope: str, today: date, cap: float,
                  stats: QueryStats) -> tuple[dict[str, float] | None, str | None]:
    """This month's cost per resource group, or why it could not be had."""
    try:
        pages, reason = _all_pages(client, scope, group_query(today), cap, stats)
        if reason is not None:
            return None, reason
        groups: dict[str, float] = {}
        for columns, page in pages:
            for group, cost in parse_groups(columns, page).items():
                groups[group] = groups.get(group, 0.0) + cost
        return groups, None
    except Exception as exc:  # noqa: BLE001 - only the per resource group table is then missing
        log.warning("could not query the resource groups of %s", scope, exc_info=not isinstance(exc, Throttled))
        return None, describe(exc)


def _all_pages(client, scope: str, body: dict[str, Any], cap: float,
               stats: QueryStats) -> tuple[list[tuple[list, list]], str | None]:
    """(columns, rows) of every page of one query, and why pages are missing (None: none)."""
    from azure.core.rest import HttpRequest
    pages: list[tuple[list, list]] = []
    next_link: str | None = None
    page = 0
    while True:
        page += 1
        # nextLink is POSTed again with the same body (the SDK's query.usage reads one page)
        fetch = (partial(_first_page, client, scope, body) if page == 1
                 else partial(_next_page, client, HttpRequest("POST", next_link, json=body)))
        try:
            columns, page_rows, next_link = _with_waits(fetch, cap, stats)
        except Exception as exc:
            if page == 1:
                raise  # nothing to show: the scope's cost query failed
            reason = f"page {page} not read: {exc if isinstance(exc, Throttled) else describe(exc)}"
            log.warning("cost data of %s is partial: %s", scope, reason)
            return pages, reason
        stats.pages += 1
        pages.append((columns, page_rows))
        if not next_link:
            return pages, None


def _first_page(client, scope: str, body: dict[str, Any]) -> tuple[list, list, str | None]:
    result = client.query.usage(scope, body, **NO_RETRY)
    props = result.properties
    columns = [{"name": c.name, "type": c.type} for c in (props.columns or [])]
    return columns, list(props.rows or []), props.next_link


def _next_page(client, request) -> tuple[list, list, str | None]:
    response = client.send_request(request, **NO_RETRY)
    response.raise_for_status()  # HttpResponseError with the response's headers
    props = (response.json() or {}).get("properties") or {}
    return list(props.get("columns") or []), list(props.get("rows") or []), props.get("nextLink")


def _with_waits(fetch, cap: float, stats: QueryStats):
    """One page: retried after a 429 as long as the waits fit in ``cap`` (seconds,
    shared by every page of the query); after a 5xx or a dropped connection (the
    query only reads: safe to send again) twice at most, within the same cap."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    throttled = transient = 0
    while True:
        try:
            return fetch()
        except HttpResponseError as exc:
            status = exc.status_code or getattr(exc.response, "status_code", None)
            headers = dict(exc.response.headers) if exc.response is not None else {}
            if status == 429:
                stats.throttled += 1
                throttled += 1
                wait = throttle.next_wait(headers, stats.waited_seconds, cap)
                if wait is None or throttled >= MAX_THROTTLED_ATTEMPTS:
                    asked = throttle.retry_after_seconds(headers)
                    raise Throttled(
                        "throttled by Cost Management (HTTP 429"
                        + (f", retry after {asked:g} s" if asked is not None else "")
                        + f") after {throttled} attempt(s) and {stats.waited_seconds:g} s of waiting "
                        f"(cap OPS_BUDGET_CHECK__MAX_THROTTLE_WAIT_SECONDS={cap:g})") from None
            else:
                transient += 1
                wait = _transient_wait(status in _TRANSIENT_STATUSES, transient, headers, cap, stats)
                if wait is None:
                    raise
            what = f"HTTP {status}"
        except (ServiceRequestError, ServiceResponseError) as exc:
            transient += 1
            wait = _transient_wait(True, transient, {}, cap, stats)
            if wait is None:
                raise
            what = type(exc).__name__
        log.info("Cost Management query: %s, retrying in %g s", what, wait)
        if wait > 0:
            sleep(wait)
        stats.waited_seconds += wait


def _transient_wait(retryable: bool, attempt: int, headers: dict[str, str], cap: float,
                    stats: QueryStats) -> float | None:
    """Seconds before trying a failed page again (1, then 2, or what Retry-After
    asks), or None: not retryable, retried enough, or past the cap."""
    if not retryable or attempt > TRANSIENT_RETRIES:
        return None
    asked = throttle.retry_after_seconds(headers)
    wait = float(2 ** (attempt - 1)) if asked is None else asked
    if stats.waited_seconds + wait > cap:
        return None
    stats.transient_errors += 1
    return wait


def read_budget(client, scope: str, name: str) -> ObservedBudget | None:
    """The scope's budget, or None when it does not exist."""
    from azure.core.exceptions import ResourceNotFoundError
    try:
        budget = client.budgets.get(scope, name)
    except ResourceNotFoundError:
        return None
    return parse_budget(budget.as_dict())


def subscription_of(scope: str) -> str:
    """'/subscriptions/<id>[/resourceGroups/<rg>]' -> '<id>'."""
    return scope.strip("/").split("/")[1]


# -- apply ---------------------------------------------------------------------------

def apply(action: Action, ctx) -> str | None:
    """Exactly one call per action."""
    p = action.params
    if action.kind == "notify":
        from jobs.notify import send_action
        return send_action(action, ctx.notifier)
    if action.kind in ("create-budget", "update-budget"):
        body = p["body"]
        client = ctx.clients.consumption(subscription_of(p["scope"]))
        # An update carries the observed eTag and start date (budget.py): Azure refuses a
        # stale eTag (someone changed it since: the next run reads it again) and a new start date.
        saved = client.budgets.create_or_update(p["scope"], p["name"], body)
        start = (body["properties"].get("timePeriod") or {}).get("startDate", "?")[:10]
        etag = getattr(saved, "e_tag", None) or (saved.get("eTag") if hasattr(saved, "get") else None)
        if action.kind == "create-budget":
            return f"created, starts {start}"
        return f"updated in place (eTag {body.get('eTag')} -> {etag}), start date {start} kept"
    raise ValueError(f"budget-check cannot apply {action.kind}")


def describe(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    first = text.strip().splitlines()[0] if text and text.strip() else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__

