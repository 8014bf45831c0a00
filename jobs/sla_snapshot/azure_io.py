"""What the sla-snapshot job reads from and writes to Azure: observe() and apply().

observe() reads, per run (never writes):

1. App metrics: ``Requests`` and ``Http5xx`` (Total) over the three days before
   the period end, through the metrics batch API: per batch of
   ``queries.metric_batches`` (<= 50 resources of one subscription and resource
   type) two calls (``queries.app_metric_fetches``): hourly totals (PT1H) for
   the older part of the 1 d and 3 d burn windows, per minute (PT1M) for the
   period and the last 6 hours. Sent through the MetricsClient's pipeline and
   read as raw JSON (``metrics_batch`` says why), one batch at a time, reduced
   at once to one array of ints per metric.
2. Cache metrics: ``allcachehits`` / ``allcachemisses`` (Total) over the period,
   batched the same way.
3. Latency: one Logs query per workspace (every role of the workspace at once).
4. Blobs of each app in the snapshot container: the snapshot of the period (if
   already written), the month's rollup with its etag, whether the final report
   of the month before exists (one listing), and the rollup of that month when
   its report is still due.
5. The storage account's management policy, as raw REST JSON, when
   ``OPS_SLA_SNAPSHOT__STORAGE_ACCOUNT_ID`` is set.
6. The alert state (job state ``alerts``) with its etag.

A failed read of one app's data (a metrics batch, a Logs query, a blob) stops
that app's snapshot this run (snapshots are written once, so a partial one
would stick) and is reported; the other apps go on.

apply() makes exactly one SDK call per action: conditional blob uploads (a
write-once blob only if absent, the rollup only if unchanged since read), one
management-policy PUT of the merged raw JSON, one notification.
"""
from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from jobs.model import Action
from jobs.sla_snapshot.alerts import STATE_KEY
from jobs.sla_snapshot.config import SlaSnapshotSettings, Target
from jobs.sla_snapshot.latency import Latency
from jobs.sla_snapshot.queries import (APP_METRICS, APP_NAMESPACE, CACHE_METRICS, CACHE_NAMESPACE,
                                       app_metric_fetches, latency_query, metric_batches,
                                       parse_latency_rows)
from jobs.sla_snapshot.sli import Block, CacheCounts, MinuteSeries
from jobs.sla_snapshot.snapshot import (Period, content_type, final_report_due, monthly_paths,
                                        rollup_path, snapshot_path, snapshot_period)

log = logging.getLogger(__name__)

READ_CONCURRENCY = 8  # metrics batches, Logs queries and blob reads in flight while observing
POLICY_NAME = "default"  # an account's one management policy


@dataclass
class Blob:
    """A blob as read: its bytes (None: absent) and etag."""

    data: bytes | None = None
    etag: str | None = None


@dataclass
class AppView:
    """What one run read about one app."""

    target: Target
    series: MinuteSeries | None = None
    latency: Latency | None = None  # None: no workspace configured
    cache: CacheCounts | None = None  # None: no Redis configured
    snapshot: Blob = field(default_factory=Blob)  # the period's snapshot, if written already
    conflicts: set[str] = field(default_factory=set)  # differing versions kept beside it
    rollup: Blob = field(default_factory=Blob)  # the month's rollup
    due: str | None = None  # the month whose final report is still to be written
    final_rollup: Blob = field(default_factory=Blob)  # that month's rollup, when not the period's
    final_blobs: dict[str, bytes | None] = field(default_factory=dict)  # report path -> bytes
    problems: list[str] = field(default_factory=list)  # why this run takes no snapshot of it


@dataclass
class Lifecycle:
    account_id: str
    subscription: str
    resource_group: str
    account: str
    policy: dict[str, Any] | None = None  # raw REST JSON; None: the account has none
    error: str | None = None  # the policy could not be read


@dataclass
class Observed:
    period: Period
    container: str
    container_exists: bool
    apps: list[AppView]
    lifecycle: Lifecycle | None
    alert_state: dict[str, Any]
    alert_etag: str | None
    calls: dict[str, int]  # SDK calls this observe made, by kind
    # Set by the job's plan(), for finish():
    planned_alerts: dict[str, Any] | None = None
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # app -> this run's
    notes: dict[str, str] = field(default_factory=dict)  # app -> what became of its snapshot


class BlobChanged(Exception):
    """A blob was written by someone else between this run's read and its write."""


# -- clients ---------------------------------------------------------------------

def snapshot_container(ctx):
    return ctx.clients.sla_snapshot_blob_service.get_container_client(
        ctx.settings.sla_snapshot.storage_container)


# -- observe ---------------------------------------------------------------------

def observe(ctx) -> Observed:
    s: SlaSnapshotSettings = ctx.settings.sla_snapshot
    period = snapshot_period(ctx.now, s.period, s.ingestion_delay_minutes)
    calls: dict[str, int] = {}
    container = snapshot_container(ctx)
    _count(calls, "blob:container-exists")
    exists = container.exists()
    state, etag = ctx.load_state(STATE_KEY)
    apps = {t.app_id: AppView(t) for t in s.targets}
    lifecycle = _lifecycle_target(s.storage_account_id)
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY, thread_name_prefix="sla-read") as pool:
        jobs: list[tuple[str, Future, Callable[[Any], None], Callable[[str], None]]] = []

        def submit(what: str, fn, on_result, on_error, *args) -> None:
            jobs.append((what, pool.submit(fn, *args), on_result, on_error))

        # 1. app metrics, batched; a few calls per batch (one per grain)
        fetches = app_metric_fetches(period.start, period.end)
        for batch in metric_batches(t.app_id for t in s.targets):
            _count(calls, "metrics:getBatch", len(fetches))
            submit(f"app metrics of {_span(batch)}", _app_series, _setter(apps, "series", batch),
                   _failer(apps, batch, "its app metrics batch"), ctx.clients.metrics, batch, fetches)
        # 2. cache metrics, batched
        by_redis: dict[str, list[str]] = {}
        for t in s.targets:
            if t.redis_id:
                by_redis.setdefault(t.redis_id, []).append(t.app_id)
        for batch in metric_batches(by_redis):
            owners = [app for rid in batch for app in by_redis[rid]]
            _count(calls, "metrics:getBatch")
            submit(f"cache metrics of {_span(batch)}", _cache_counts,
                   _cache_setter(apps, by_redis, batch),
                   _failer(apps, owners, "its cache metrics batch"), ctx.clients.metrics, batch, period)
        # 3. latency, one Logs query per workspace
        by_workspace: dict[str, list[Target]] = {}
        for t in s.targets:
            if t.workspace_id:
                by_workspace.setdefault(t.workspace_id, []).append(t)
        for workspace, members in sorted(by_workspace.items()):
            _count(calls, "logs:query")
            submit(f"the latency query of workspace {workspace}", _latency,
                   _latency_setter(apps, members),
                   _failer(apps, [t.app_id for t in members], f"latency query of workspace {workspace}"),
                   ctx.clients.logs, workspace, [t.role for t in members], period, s)
        # 4. blobs of each app
        for view in apps.values():
            submit(f"the blobs of {view.target.app_id}", _read_app_blobs, lambda _: None,
                   _failer(apps, [view.target.app_id], "reading its blobs"),
                   container, view, period, exists, calls)
        # 5. lifecycle policy
        if lifecycle is not None:
            _count(calls, "storage:managementPolicies/get")
            submit(f"the management policy of {lifecycle.account_id}", _read_policy,
                   lambda policy: setattr(lifecycle, "policy", policy),
                   lambda error: setattr(lifecycle, "error", error),
                   ctx.clients.storage_mgmt(lifecycle.subscription), lifecycle)
        for what, future, on_result, on_error in jobs:
            try:
                on_result(future.result())
            except Exception as exc:  # noqa: BLE001 - one read's failure never stops the others
                log.warning("could not read %s: %s", what, describe(exc))
                on_error(describe(exc))
    return Observed(period=period, container=s.storage_container, container_exists=exists,
                    apps=list(apps.values()), lifecycle=lifecycle, alert_state=state,
                    alert_etag=etag, calls=calls)


def _span(ids: list[str]) -> str:
    return ids[0] if len(ids) == 1 else f"{len(ids)} resources ({ids[0]} ...)"


_COUNT_LOCK = threading.Lock()


def _count(calls: dict[str, int], kind: str, n: int = 1) -> None:
    with _COUNT_LOCK:  # readers count from several threads
        calls[kind] = calls.get(kind, 0) + n


def _setter(apps: dict[str, AppView], attribute: str, ids: list[str]):
    def put(found: dict[str, Any]) -> None:
        for app_id in ids:
            if app_id in found:
                setattr(apps[app_id], attribute, found[app_id])
            else:
                apps[app_id].problems.append("app metrics: the batch answered nothing for this app")
    return put


def _cache_setter(apps: dict[str, AppView], by_redis: dict[str, list[str]], batch: list[str]):
    def put(found: dict[str, CacheCounts]) -> None:
        for redis_id in batch:
            for app_id in by_redis[redis_id]:
                if redis_id in found:
                    apps[app_id].cache = found[redis_id]
                else:
                    apps[app_id].problems.append("cache metrics: the batch answered nothing for its cache")
    return put


def _latency_setter(apps: dict[str, AppView], members: list[Target]):
    def put(by_role: dict[str, Latency]) -> None:
        for t in members:
            apps[t.app_id].latency = by_role.get(t.role.lower(), Latency())
    return put


def _failer(apps: dict[str, AppView], ids: list[str], what: str):
    def fail(error: str) -> None:
        for app_id in ids:
            apps[app_id].problems.append(f"{what} failed: {error}")
    return fail


BATCH_API_VERSION = "2024-02-01"  # the metrics batch (getBatch) API
INTERVALS = {1: "PT1M", 5: "PT5M", 60: "PT1H", 1440: "P1D"}  # minutes -> ISO 8601 interval
# Per-minute batches read at once. An answer holds 50 apps x 2 metrics x 360 minutes (a day:
# 1440) as JSON objects; parsing is CPU-bound (the GIL), so more at once saves no time and
# only adds their memory: one at a time keeps the peak flat whatever the number of apps.
_MINUTE_BATCHES = threading.Semaphore(1)


def metrics_batch(client, ids: list[str], namespace: str, names: tuple[str, ...],
                  start: datetime, end: datetime, minutes: int) -> dict[str, dict[str, list[int]]]:
    """One metrics batch call (``POST /subscriptions/{id}/metrics:getBatch``, Total,
    interval ``minutes``): resource id (lower-case) -> metric name -> one Total per
    interval from ``start`` (summed over time series, rounded; no data: 0).

    Sent through the MetricsClient's pipeline (endpoint, credential, retries) and
    read as raw JSON: its query_resources() makes model objects of every data
    point, about 14 s for 50 apps x 3 days at PT1M where this takes under one.
    Streamed (the pipeline does not parse the body a first time) and parsed once,
    each data point becoming an (interval, total) pair as it is read, not a dict:
    a quarter of the memory while a batch is parsed."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest
    subscription = ids[0].split("/")[2]
    size = max(1, int((end - start).total_seconds() // 60) // minutes)
    request = HttpRequest(
        "POST", f"/subscriptions/{subscription}/metrics:getBatch",
        params={"api-version": BATCH_API_VERSION, "metricnamespace": namespace,
                "metricnames": ",".join(names), "aggregation": "total",
                "interval": INTERVALS[minutes], "starttime": _metric_time(start),
                "endtime": _metric_time(end)},
        json={"resourceids": ids})
    response = client.send_request(request, stream=True)
    try:
        body = response.read()
    finally:
        response.close()
    if response.status_code != 200:
        raise HttpResponseError(response=response)
    index: dict[str, int] = {}  # timestamp text -> interval number (the same for every resource)

    def point(obj: dict[str, Any]) -> Any:
        """object_hook: a data point ({timeStamp, total...}) -> (interval, total) or None."""
        stamp = obj.get("timeStamp")
        if stamp is None or "timeseries" in obj:
            return obj
        total = obj.get("total")
        if total is None:
            return None
        if stamp not in index:
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            index[stamp] = int((moment - start).total_seconds() // 60) // minutes
        return index[stamp], total

    document = json.loads(body, object_hook=point)
    del body
    out: dict[str, dict[str, list[int]]] = {}
    for value in document.get("values") or ():
        rid = (value.get("resourceid") or "").lower()
        for metric in value.get("value") or ():
            if metric.get("errorCode", "Success") != "Success":
                continue  # the app goes without: reported as nothing answered
            column = out.setdefault(rid, {}).setdefault(metric["name"]["value"], [0] * size)
            for series in metric.get("timeseries") or ():
                for pair in series.get("data") or ():
                    if pair is not None:
                        i, total = pair
                        if 0 <= i < size:
                            column[i] += int(round(total))
    return out


def _metric_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _app_series(client, ids: list[str], fetches: list[tuple[datetime, datetime, int]]
                ) -> dict[str, MinuteSeries]:
    """The series of a batch of apps, read as ``queries.app_metric_fetches`` plans: hourly
    blocks (``MinuteSeries.earlier``), then minutes. An app missing from any read is absent."""
    *coarse, (start, end, one) = fetches
    if one != 1:
        raise ValueError("the last read of app metrics is per minute")
    blocks: dict[str, list[Block]] = {rid: [] for rid in ids}
    for block_start, block_end, grain in coarse:
        found = metrics_batch(client, ids, APP_NAMESPACE, APP_METRICS, block_start, block_end, grain)
        for rid in list(blocks):
            requests, errors = (found.get(rid, {}).get(name) for name in APP_METRICS)
            if requests is None or errors is None:
                del blocks[rid]
                continue
            blocks[rid] += [Block(block_start + timedelta(minutes=i * grain), grain, r, e)
                            for i, (r, e) in enumerate(zip(requests, errors))]
        del found
    with _MINUTE_BATCHES:
        found = metrics_batch(client, ids, APP_NAMESPACE, APP_METRICS, start, end, 1)
    out = {}
    for rid, metrics in found.items():
        requests, errors = (metrics.get(name) for name in APP_METRICS)
        if requests is not None and errors is not None and rid in blocks:
            out[rid] = MinuteSeries(start, tuple(requests), tuple(errors), tuple(blocks[rid]))
    return out


def _cache_counts(client, ids: list[str], period: Period) -> dict[str, CacheCounts]:
    found = metrics_batch(client, ids, CACHE_NAMESPACE, CACHE_METRICS, period.start, period.end,
                          period.minutes)
    out = {}
    for rid, metrics in found.items():
        hits, misses = (metrics.get(name) for name in CACHE_METRICS)
        if hits is not None and misses is not None:
            out[rid] = CacheCounts(sum(hits), sum(misses))
    return out


def _latency(client, workspace: str, roles: list[str], period: Period,
             s: SlaSnapshotSettings) -> dict[str, Latency]:
    query = latency_query(roles, period.start, period.end, s.latency_p95_ms, s.latency_p99_ms)
    result = client.query_workspace(workspace, query, timespan=(period.start, period.end))
    if getattr(result, "partial_error", None) is not None or not hasattr(result, "tables"):
        # a partial answer would freeze wrong figures in a write-once snapshot
        error = getattr(result, "partial_error", None)
        raise RuntimeError(f"partial result: {getattr(error, 'message', error)}")
    rows = [dict(zip(table.columns, row)) for table in result.tables for row in table.rows]
    return parse_latency_rows(rows)


def _read(container, path: str, calls: dict[str, int]) -> Blob:
    from azure.core.exceptions import ResourceNotFoundError
    _count(calls, "blob:get")
    try:
        downloader = container.get_blob_client(path).download_blob()
    except ResourceNotFoundError:
        return Blob()
    return Blob(downloader.readall(), downloader.properties.etag)


def _read_app_blobs(container, view: AppView, period: Period, container_exists: bool,
                    calls: dict[str, int]) -> None:
    name = view.target.name
    due = final_report_due(period, False)
    json_path, html_path = monthly_paths(name, due)
    if not container_exists:  # a first run: nothing to read
        view.due = due
        view.final_blobs = {json_path: None, html_path: None}
        return
    path = snapshot_path(name, period)
    view.snapshot = _read(container, path, calls)
    if view.snapshot.data is not None:  # a re-run: which differing versions are kept already
        _count(calls, "blob:list")
        stem = path.rpartition(".")[0]
        view.conflicts = {b.name for b in container.list_blobs(name_starts_with=stem + ".conflict-")}
    view.rollup = _read(container, rollup_path(name, period.month), calls)
    _count(calls, "blob:list")
    present = {b.name for b in container.list_blobs(name_starts_with=f"monthly/{name}/{due}.")}
    if json_path in present and html_path in present:
        return
    view.due = due
    view.final_blobs = {path: (_read(container, path, calls).data if path in present else None)
                        for path in (json_path, html_path)}
    if due != period.month:
        view.final_rollup = _read(container, rollup_path(name, due), calls)


def _lifecycle_target(account_id: str | None) -> Lifecycle | None:
    if not account_id:
        return None
    parts = account_id.split("/")
    return Lifecycle(account_id=account_id, subscription=parts[2], resource_group=parts[4],
                     account=parts[8])


def _raw_json(pipeline_response, deserialized, headers) -> dict[str, Any]:
    return pipeline_response.http_response.json()


def _read_policy(client, lifecycle: Lifecycle) -> dict[str, Any] | None:
    """The policy as Azure sent it (raw JSON: no SDK model may drop another team's fields)."""
    from azure.core.exceptions import ResourceNotFoundError
    try:
        return client.management_policies.get(lifecycle.resource_group, lifecycle.account,
                                              POLICY_NAME, cls=_raw_json)
    except ResourceNotFoundError:
        return None


# -- apply ---------------------------------------------------------------------------

WRITE_ONCE = ("write-snapshot", "write-conflict", "write-monthly")


def apply(action: Action, ctx) -> str | None:
    """Exactly one SDK call per action."""
    kind, p = action.kind, action.params
    if kind == "create-container":
        from azure.core.exceptions import ResourceExistsError
        try:
            snapshot_container(ctx).create_container()
        except ResourceExistsError:
            return "already there"
        return "created"
    if kind in WRITE_ONCE or kind == "write-rollup":
        return _upload(snapshot_container(ctx), action)
    if kind == "ensure-lifecycle":
        client = ctx.clients.storage_mgmt(p["subscription"])
        body = json.dumps(p["policy"]).encode()
        client.management_policies.create_or_update(p["resource_group"], p["account"], POLICY_NAME,
                                                    body, content_type="application/json",
                                                    cls=_raw_json)
        return f"{len(p['policy']['properties']['policy']['rules'])} rule(s) in the policy"
    if kind == "remove-lifecycle":  # Azure refuses a policy without rules: delete it instead
        client = ctx.clients.storage_mgmt(p["subscription"])
        client.management_policies.delete(p["resource_group"], p["account"], POLICY_NAME)
        return "policy deleted"
    if kind == "notify":
        from jobs.notify import send_action
        return send_action(action, ctx.notifier)
    raise ValueError(f"sla-snapshot cannot apply {kind}")


def _upload(container, action: Action) -> str:
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
    from azure.storage.blob import ContentSettings
    p, path = action.params, action.target
    settings = ContentSettings(content_type=content_type(path))
    etag = p.get("etag")
    try:
        if etag:  # replace only the version this run read
            container.upload_blob(path, p["data"], overwrite=True, etag=etag,
                                  match_condition=MatchConditions.IfNotModified,
                                  content_settings=settings)
        else:  # create only: a blob someone else wrote meanwhile is never overwritten
            container.upload_blob(path, p["data"], overwrite=False, content_settings=settings)
    except (ResourceExistsError, ResourceModifiedError):
        if action.kind == "write-conflict":  # content-addressed: it holds these very bytes
            return "already there"
        if _holds(container, path, p["data"]):
            # These very bytes: this write, sent again by the SDK after its answer was lost
            # (a dropped connection), or an identical run's. Not someone else's version.
            return f"{len(p['data'])} bytes (already there)"
        raise BlobChanged(f"{path} was written by another run after this run read it; "
                          "kept that version (the next run compares it)") from None
    return f"{len(p['data'])} bytes"


def _holds(container, path: str, data: bytes) -> bool:
    try:
        return container.download_blob(path).readall() == data
    except Exception:  # noqa: BLE001 - cannot tell: reported as changed, as before
        return False


def describe(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    first = text.strip().splitlines()[0] if text and text.strip() else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__
