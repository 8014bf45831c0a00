"""What the dev-hours job reads from and writes to Azure: observe() and apply().

observe() lists web apps and App Service plans once per scope and maps the SDK
models onto resources.py; apply() makes exactly one SDK call per action. Never
decides anything (plan.py does) and never writes in observe().

Reads (DOMAIN.md: reads 250 burst then 25/s per subscription and principal):

1. Per subscription: one paged list of plans (always subscription-wide: a
   site's plan may sit in another resource group, and the plan's production
   tag is part of the deny rule) and one paged list of sites (subscription-wide,
   or per configured resource group).
2. Slots are not in the subscription-wide site list, and most runs need none:
   only an app whose transition is due (its slots are stopped or started too,
   and a slot name can deny it) or an app on a plan about to be scaled down
   (slots forbid Basic and below) needs them. A first, pure planning pass over
   what step 1 saw names those apps; their slots are then read once per
   resource group (``includeSlots=true``) where a group has several of them,
   else once per app. Between transitions a run reads step 1 only, so reads per
   run do not grow with the number of runs nor, in steady state, with the
   number of apps. With OPS_DEV_HOURS__RESOURCE_GROUPS set, step 1 lists each
   group with its slots and step 2 is not needed.
3. A plan about to be scaled down: its own app list (``list_web_apps``), once per
   off period, since apps in other resource groups share plans and a production
   app the run cannot see must stop the scale-down. A failed read fails the run
   and leaves the plan as it is.

Subscriptions, resource groups and resource ids are compared without case: a
scope given twice in other casing is read (and its apps written) once.

Always On: Resource Manager lists and gets sites with ``siteConfig`` values null
(azure-rest-api-specs#12104); only a downgrade below Basic depends on it, so
``config/web`` is read for those apps alone, and only then.

State lives in the run store (DevHoursJob.finish says why), read here with its etag.
"""
from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from jobs.dev_hours.config import DevHoursSettings
from jobs.dev_hours.plan import plan as plan_run
from jobs.dev_hours.resources import Plan, Site, Slot, tag
from jobs.dev_hours.skus import BASIC, Sku, sku_from_name, tier_rank
from jobs.dev_hours.state import MARKER_TAG, RESTORE_TAG, STATE_KEY, State
from jobs.dev_hours.targets import classify
from jobs.model import Action

log = logging.getLogger(__name__)

# List calls in flight while observing. A run reads a few lists per subscription plus
# one per resource group with due apps: within the 250-read burst, refilled by the
# next 15-minute timer run at 25/s.
READ_CONCURRENCY = 8
SITE_TYPE, SLOT_TYPE = "microsoft.web/sites", "microsoft.web/sites/slots"
TLS_BOUND = ("snienabled", "ipbasedenabled")


@dataclass
class Observed:
    """One run's view of the world, and what planning made of it (for finish)."""

    sites: list[Site]
    plans: list[Plan]
    state: State
    etag: str | None
    errors: list[str] = field(default_factory=list)  # scopes that could not be read
    planned: State | None = None  # set by the job's plan(): the state if every action succeeds
    detailed: set[str] = field(default_factory=set)  # apps (ids, lower-case) with slots read
    missing: str | None = None  # state absent: when the last run that applied ran, if known


class AzureRefusal(Exception):
    """Azure refused a change (App Service's 4xx validation error): ``azure_message`` is Azure's,
    ``code`` its error code ("Conflict")."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(f"refused by Azure: {message}")
        self.azure_message, self.code = message, code  # not `message`: the runner describes by it


# -- observe ---------------------------------------------------------------------

def observe(ctx) -> Observed:
    config: DevHoursSettings = ctx.settings.dev_hours
    data, etag = ctx.load_state(STATE_KEY)
    state = State.from_json(data)
    subscriptions = unique(config.subscriptions or ctx.settings.subscriptions, str.lower)
    groups = unique(config.resource_groups, str.lower)
    observed = Observed([], [], state, etag)
    if etag is None:
        observed.missing = _earlier_real_run(ctx)
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY, thread_name_prefix="dev-hours-read") as pool:
        listed = [(sub, pool.submit(_list_subscription, ctx.clients.web(sub), groups))
                  for sub in subscriptions]
        for sub, future in listed:
            try:
                sites, plans = future.result()
            except Exception as exc:  # noqa: BLE001 - the other subscriptions still run
                log.warning("could not list App Service in subscription %s", sub, exc_info=True)
                observed.errors.append(f"subscription {sub}: could not list sites and plans: "
                                       f"{describe(exc)}")
                continue
            observed.sites += sites
            observed.plans += plans
        observed.sites = unique(observed.sites, lambda s: s.id.lower())
        observed.plans = unique(observed.plans, lambda p: p.id.lower())
        if groups:  # the listing carried every slot
            observed.detailed = {s.id.lower() for s in observed.sites}
        wanted, scaled = needs_details(observed.sites, observed.plans, state, ctx.now, config)
        add_details(ctx.clients, observed, wanted, config, pool)
        add_plan_apps(ctx.clients, observed, scaled, pool)
    if etag is None:
        lost = state_lost(observed.sites, observed.plans, observed.missing)
        if lost:
            observed.errors.append(lost)
    return observed


def unique(items, key) -> list:
    """``items`` without repeats by ``key`` (ids and names differ only in case in Azure), in order."""
    seen: dict[Any, Any] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())


def _earlier_real_run(ctx) -> str | None:
    """The time of the last run that applied, when the latest report is one; None otherwise
    (a dry run's report says nothing about the state)."""
    try:
        latest = ctx.store.latest(ctx.job)
    except Exception:  # noqa: BLE001 - only evidence: the markers still tell
        log.warning("could not read the latest report of %s", ctx.job, exc_info=True)
        return None
    if latest and not latest.get("dry_run"):
        return str(latest.get("started_at") or "an earlier run")
    return None


def state_lost(sites: list[Site], plans: list[Plan], earlier: str | None) -> str | None:
    """A run-level error when the job's state is absent though a run that applied left
    evidence (its report, the markers on the apps, the restore tags on the plans): the run
    storage was lost or replaced. None for a first run."""
    marked = sorted(s.name for s in sites if tag(s.tags, MARKER_TAG) is not None)
    scaled = sorted(p.name for p in plans if tag(p.tags, RESTORE_TAG) is not None)
    if not (earlier or marked or scaled):
        return None
    evidence = [f"a run that applied changes at {earlier}"] if earlier else []
    if marked:
        names = ", ".join(marked[:5]) + ("..." if len(marked) > 5 else "")
        evidence.append(f"{len(marked)} app(s) tagged {MARKER_TAG} ({names})")
    if scaled:
        evidence.append(f"{len(scaled)} plan(s) tagged {RESTORE_TAG}")
    return (f"the job's state (state/dev-hours/{STATE_KEY}.json in the run store) is missing though "
            f"{' and '.join(evidence)}: the run storage was lost or replaced. Rebuilt from the tags "
            "on the resources: apps marked as stopped by this job are started at their next on; "
            "any other app stopped now is taken as stopped by hand")


def add_all_details(clients, observed: Observed, now, config: DevHoursSettings) -> None:
    """Slots of every target (for an explanation of the days ahead, not only of now)."""
    plans_by_id = {p.id.lower(): p for p in observed.plans}
    wanted = {s.id.lower() for s in observed.sites
              if classify(s, plans_by_id.get((s.plan_id or "").lower()), now, config).status == "target"}
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY, thread_name_prefix="dev-hours-read") as pool:
        add_details(clients, observed, wanted, config, pool)


def _list_subscription(client, groups: list[str]) -> tuple[list[Site], list[Plan]]:
    plans = [plan_from_model(p) for p in client.app_service_plans.list()]
    if not groups:
        return sites_from_models(client.web_apps.list()), plans
    from azure.core.exceptions import ResourceNotFoundError
    items = []
    for rg in groups:
        try:
            items += list(client.web_apps.list_by_resource_group(rg, include_slots=True))
        except ResourceNotFoundError:  # the configured group is in another subscription
            log.debug("no resource group %s in this subscription", rg)
    return sites_from_models(items, slots_listed=True), plans


def needs_details(sites: list[Site], plans: list[Plan], state: State, now, config: DevHoursSettings
                  ) -> tuple[set[str], set[str]]:
    """(ids, lower-case, of the apps whose slots (and, for a downgrade below
    Basic, Always On) this run needs, ids of the plans whose own app lists it
    needs): targets whose transition or override is due (their slots are stopped
    or started with them), and every target of a plan that a first, pure planning
    pass would scale down (slots forbid Basic and below), and those plans. That
    pass leaves out the plans' site counts and own app lists, not read yet; every
    other rule only gets stricter once slots are known, so it names a superset of
    the plans the real pass scales down."""
    plans_by_id = {p.id.lower(): p for p in plans}
    classified = [classify(s, plans_by_id.get((s.plan_id or "").lower()), now, config) for s in sites]
    targets = [c for c in classified if c.status == "target"]
    wanted = set()
    for c in targets:
        event = c.event(now)
        record = state.sites.get(c.site.id.lower())
        if event is not None and (record is None or record.applied != event.id):
            wanted.add(c.site.id.lower())
    blind = [replace(p, number_of_sites=None, hosted=()) for p in plans]
    actions, _ = plan_run(sites, blind, state, now, config)
    considered = {a.target.lower() for a in actions if a.kind == "scale-down-plan"}
    # apps started that are not targets (opt-in tag removed): their slots start too
    wanted |= {a.target.lower() for a in actions if a.kind == "start-site" and not a.verdict}
    wanted |= {c.site.id.lower() for c in targets if (c.site.plan_id or "").lower() in considered}
    return wanted, {a.target.lower() for a in actions if a.kind == "scale-down-plan" and not a.verdict}


def add_plan_apps(clients, observed: Observed, wanted: set[str], pool: ThreadPoolExecutor) -> None:
    """Each ``wanted`` plan's own app list (one paged read per plan about to be scaled
    down): it names apps the run's listing cannot show (other resource groups)."""
    reads = {p.id.lower(): pool.submit(_plan_apps, clients.web(p.subscription), p)
             for p in observed.plans if p.id.lower() in wanted}
    plans = []
    for p in observed.plans:
        if p.id.lower() in reads:
            try:
                p = replace(p, hosted=reads[p.id.lower()].result())
            except Exception as exc:  # noqa: BLE001 - the plan is not scaled (hosted stays None)
                log.warning("could not list the apps of plan %s", p.id, exc_info=True)
                observed.errors.append(f"plan {p.name}: could not list its apps, not scaled down: "
                                       f"{describe(exc)}")
        plans.append(p)
    observed.plans = plans


def _plan_apps(client, plan: Plan) -> tuple[Site, ...]:
    return tuple(sites_from_models(client.app_service_plans.list_web_apps(plan.resource_group, plan.name)))


def add_details(clients, observed: Observed, wanted: set[str], config: DevHoursSettings,
                pool: ThreadPoolExecutor) -> None:
    """Read the slots (unless read already) and, for a downgrade below Basic,
    Always On of the ``wanted`` apps."""
    unread = wanted - observed.detailed
    slots: dict[str, tuple[Slot, ...]] = {}
    by_group: dict[tuple[str, str], list[Site]] = {}
    for site in observed.sites:
        if site.id.lower() in unread:
            by_group.setdefault((site.subscription, site.resource_group), []).append(site)
    reads = []
    for (sub, rg), members in sorted(by_group.items()):
        client = clients.web(sub)
        if len(members) > 1:  # one paged read for the group instead of one per app
            reads.append(pool.submit(_group_slots, client, rg))
        else:
            reads.append(pool.submit(_site_slots, client, members[0]))
    for future in reads:
        # A failed read fails the run (after the SDK's retries): planning without
        # an app, or without its slots, could restore or downgrade its plan wrongly.
        slots.update(future.result())
    observed.detailed |= unread
    always_on = {}
    if config.scale_down_sku and (tier_rank(sku_from_name(config.scale_down_sku)) or 0) < BASIC:
        always_on = {s.id.lower(): pool.submit(_always_on, clients.web(s.subscription), s)
                     for s in observed.sites if s.id.lower() in wanted and s.always_on is None}
    if not slots and not always_on:
        return
    sites = []
    for site in observed.sites:
        key = site.id.lower()
        if key in slots:
            site = replace(site, slots=slots[key])
        if key in always_on:
            try:
                site = replace(site, always_on=always_on[key].result())
            except Exception as exc:  # noqa: BLE001 - assume it is on: never try a refused downgrade
                observed.errors.append(f"could not read the configuration of {site.name}: {describe(exc)}")
                site = replace(site, always_on=True)
        sites.append(site)
    observed.sites = sites


def _group_slots(client, resource_group: str) -> dict[str, tuple[Slot, ...]]:
    items = client.web_apps.list_by_resource_group(resource_group, include_slots=True)
    found: dict[str, list[Slot]] = {}
    for item in items:
        if (item.type or "").lower() == SITE_TYPE:
            found.setdefault(item.id.lower(), [])
        elif (item.type or "").lower() == SLOT_TYPE:
            parent = item.id.lower().rsplit("/slots/", 1)[0]
            found.setdefault(parent, []).append(slot_from_model(item))
    return {k: tuple(sorted(v, key=lambda s: s.name)) for k, v in found.items()}


def _site_slots(client, site: Site) -> dict[str, tuple[Slot, ...]]:
    slots = [slot_from_model(s) for s in client.web_apps.list_slots(site.resource_group, site.name)]
    return {site.id.lower(): tuple(sorted(slots, key=lambda s: s.name))}


def _always_on(client, site: Site) -> bool:
    config = client.web_apps.get_configuration(site.resource_group, site.name)
    return bool(config.always_on)


# -- SDK models -> resources.py ---------------------------------------------------------

def sites_from_models(items: Iterable[Any], slots_listed: bool = False) -> list[Site]:
    """Sites (with their slots when the listing included them)."""
    sites, slots = [], {}
    for item in items:
        if (item.type or "").lower() == SLOT_TYPE:
            slots.setdefault(item.id.lower().rsplit("/slots/", 1)[0], []).append(slot_from_model(item))
        else:
            sites.append(site_from_model(item))
    if slots_listed:
        sites = [replace(s, slots=tuple(sorted(slots.get(s.id.lower(), []), key=lambda x: x.name)))
                 for s in sites]
    return sites


def site_from_model(item: Any) -> Site:
    parts = item.id.split("/")
    site_config = getattr(item, "site_config", None)
    always_on = getattr(site_config, "always_on", None) if site_config is not None else None
    tls = any(_wire(getattr(b, "ssl_state", None)).lower() in TLS_BOUND
              for b in (getattr(item, "host_name_ssl_states", None) or ()))
    return Site(id=item.id, name=item.name, subscription=parts[2],
                resource_group=getattr(item, "resource_group", None) or parts[4],
                state=item.state or "Unknown", plan_id=item.server_farm_id or "",
                tags=dict(item.tags or {}), kind=item.kind or "app",
                # None: not reported (Resource Manager's lists); read in add_details when a
                # downgrade below Basic depends on it, else it counts as off
                always_on=always_on,  # type: ignore[arg-type]
                vnet_integrated=bool(getattr(item, "virtual_network_subnet_id", None)),
                custom_tls_domains=tls)


def _wire(value: Any) -> str:
    """An SDK value as it came on the wire: azure-mgmt-web gives enums (SslState), whose
    str() is their member name ("SslState.SNI_ENABLED"), not the value ("SniEnabled")."""
    return str(getattr(value, "value", value) or "")


def slot_from_model(item: Any) -> Slot:
    return Slot(name=item.name.rsplit("/", 1)[-1], state=item.state or "Unknown")


def plan_from_model(item: Any) -> Plan:
    parts = item.id.split("/")
    sku = item.sku
    name = sku.name if sku else "unknown"
    try:
        known = sku_from_name(name)
    except ValueError:
        known = Sku(name, "", name, "", 1)
    capacity = sku.capacity if sku and sku.capacity else 1
    return Plan(id=item.id, name=item.name, subscription=parts[2], resource_group=parts[4],
                sku=Sku(name=name, tier=(sku.tier if sku and sku.tier else known.tier),
                        size=(sku.size if sku and sku.size else known.size),
                        family=(sku.family if sku and sku.family else known.family),
                        capacity=int(capacity)),
                tags=dict(item.tags or {}), number_of_sites=item.number_of_sites)


# -- apply ---------------------------------------------------------------------------

def apply(action: Action, ctx) -> str | None:
    """Exactly one Resource Manager write per action."""
    p = action.params
    web = ctx.clients.web(p["subscription"])
    kind = action.kind
    if kind == "stop-site":
        web.web_apps.stop(p["resource_group"], p["site"])
        return "stopped"
    if kind == "start-site":
        web.web_apps.start(p["resource_group"], p["site"])
        return "started"
    if kind == "stop-slot":
        web.web_apps.stop_slot(p["resource_group"], p["site"], p["slot"])
        return f"slot {p['slot']} stopped"
    if kind == "start-slot":
        web.web_apps.start_slot(p["resource_group"], p["site"], p["slot"])
        return f"slot {p['slot']} started"
    if kind in ("mark-site", "unmark-site"):
        # A PATCH's tags replace them all: merged with the tags observed this run.
        tags = plan_tags(p.get("current_tags") or {}, p.get("tags") or {}, p.get("remove_tags") or ())
        web.web_apps.update(p["resource_group"], p["site"], {"tags": tags})
        return "marked" if kind == "mark-site" else "marker removed"
    if kind in ("scale-down-plan", "restore-plan"):
        sku = p["sku"]
        body = {"sku": {k: sku[k] for k in ("name", "tier", "size", "family", "capacity")},
                "tags": plan_tags(p.get("current_tags") or {}, p.get("tags") or {},
                                  p.get("remove_tags") or ())}
        try:
            # One PATCH carries the SKU and the restore tag: tags in a PATCH replace
            # them all, hence the merge with the tags observed this run.
            web.app_service_plans.update(p["resource_group"], p["plan"], body)
        except Exception as exc:
            refusal = azure_refusal(exc)
            if refusal:
                raise AzureRefusal(refusal, error_code(exc)) from None
            raise
        return f"{sku['name']} x{sku['capacity']}"
    raise ValueError(f"dev-hours cannot apply {kind}")


def plan_tags(current: Mapping[str, str], add: Mapping[str, str], remove: Iterable[str]) -> dict[str, str]:
    """A plan's tags after a change (tag names are case-insensitive in Azure)."""
    dropped = {n.lower() for n in remove} | {n.lower() for n in add}
    merged = {k: v for k, v in current.items() if k.lower() not in dropped}
    merged.update(add)
    return merged


def azure_refusal(exc: BaseException) -> str | None:
    """The message of a 4xx validation error (App Service's PascalCase body or
    ARM's ``{"error": ...}``); None for other failures (network, 5xx, throttling)."""
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
    if response is None or status is None or not 400 <= int(status) < 500 or status in (401, 403, 429):
        return None
    message = _error_field(response, "message")
    if message:
        return message.strip()
    text = getattr(exc, "message", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else f"HTTP {status}"


def error_code(exc: BaseException) -> str:
    """Azure's error code of a failed call (App Service's `Code` or ARM's `error.code`), else
    the HTTP status."""
    code = _error_field(getattr(exc, "response", None), "code")
    if code:
        return code
    status = getattr(exc, "status_code", None)
    return f"HTTP {status}" if status else type(exc).__name__


def _error_field(response, name: str) -> str | None:
    """``name`` ("message", "code") of an error body: App Service's PascalCase top level
    (``Message``, ``Code``) or ARM's ``{"error": {...}}``, either case."""
    try:
        body = json.loads(response.text()) if response is not None else None
    except (ValueError, TypeError, AttributeError):
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error") or body.get("Error")
    found = body.get(name.capitalize()) or body.get(name) or (
        (error.get(name) or error.get(name.capitalize())) if isinstance(error, dict) else None)
    return str(found) if found else None


def describe(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    first = text.strip().splitlines()[0] if text and text.strip() else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__
