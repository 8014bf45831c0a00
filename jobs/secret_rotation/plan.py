"""Which secrets a run rotates, resumes, holds or reports, and why. Pure.

Input: the vault's secret listing (properties of each secret's current
version, never a value; pending secrets ``<name>--pending`` included), the
failure counters kept between runs, ``now``, the settings and the options
``force``, ``force_revoke`` and ``resume_only``. Output: Actions with a reason
for a person, and one row per managed secret for the run report. No Azure
imports, no clock; a dry run stops here. An option that does not parse is a
failed outcome naming it, and nothing else is planned.

Rules, per secret whose tags ask for rotation (tags.py):
- tags that do not parse, a current version that is disabled, or two secrets
  on one credential (one Redis cache or storage account, one PostgreSQL role:
  their rotations would break each other): a failed outcome naming the secret
  and the fault;
- blocked: ``max_failed_attempts`` failed attempts in a row (on the same
  current version) stop retrying; every later run reports it as failed until
  someone acts (``--force NAME``, or a new version written by hand);
- an unfinished rotation (its pending secret is enabled and not finished) is
  resumed, never started twice, even when its pending secret was soft-deleted
  (the rotation recovers it first);
- forced (``force`` names it): rotated now, except that a dual credential
  still waits for the previous value's grace period unless ``force_revoke``
  (true) says to revoke it now;
- due: older than its period, or expiring within ``near_expiry_days``;
  a dual credential waits while the previous value's grace period runs (the
  key it would regenerate may still be read from a cache);
- otherwise, a grace period that has ended disables the previous version.
A PostgreSQL rotation that needs the server administrator's password runs
after a rotation of that administrator's secret in the same run.
``resume_only`` (the resume timer's runs): only the interrupted rotations, those
unfinished with no failure on record (a crash or a kill stopped them, not a
fault), are resumed; everything else waits for the scheduled run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobs.model import Action
from jobs.requests import BadRequest, parse_bool
from jobs.secret_rotation import tags as T

ROTATE, END_GRACE, INVALID, BLOCKED = "rotate-secret", "end-grace", "invalid-tags", "rotation-blocked"
ACTIVE_STEPS = ("created", "set", "tested", "promoted")


@dataclass(frozen=True)
class SecretInfo:
    """Properties of a secret's current version, as the vault lists them."""

    name: str
    tags: dict[str, str]
    enabled: bool = True
    created_on: datetime | None = None
    expires_on: datetime | None = None
    deleted: bool = False  # soft-deleted (listed among the vault's deleted secrets)


@dataclass(frozen=True)
class Failure:
    """Failed attempts in a row on one secret (kept in the run store between runs)."""

    attempts: int
    last_error: str = ""
    last_failed: str | None = None  # ISO time
    current_created: str | None = None  # the current version's creation time when it failed

    def to_json(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "last_error": self.last_error,
                "last_failed": self.last_failed, "current_created": self.current_created}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Failure":
        return cls(int(data.get("attempts", 0)), str(data.get("last_error", "")),
                   data.get("last_failed"), data.get("current_created"))


@dataclass
class Planned:
    actions: list[Action] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def failure_applies(failure: Failure | None, secret: SecretInfo) -> bool:
    """A failure record counts only while the secret's current version is the one it failed on."""
    return failure is not None and failure.current_created == iso(secret.created_on)


def unfinished(secrets: list[SecretInfo]) -> set[str]:
    """Names (lower-case) of the secrets whose latest rotation is not finished."""
    return {s.tags.get(T.OF_TAG, "").lower() for s in secrets
            if s.name.lower().endswith(T.PENDING_SUFFIX) and s.enabled
            and s.tags.get(T.STEP_TAG) in ACTIVE_STEPS}


def interrupted(secrets: list[SecretInfo], failures: dict[str, Failure]) -> set[str]:
    """Unfinished rotations with no failure on record: a crash or a kill stopped them."""
    return unfinished(secrets) - {name.lower() for name in failures}


def plan(secrets: list[SecretInfo], failures: dict[str, Failure], now: datetime, config,
         force: str | None = None, force_revoke: str | None = None,
         resume_only: str | None = None) -> Planned:
    out = Planned()
    revoke, revoke_fault = _revoke_option(force, force_revoke)
    only_resume, resume_fault = _flag("resume_only", resume_only)
    faults = [Action.fail(option, fault, kind=ROTATE)
              for option, fault in (("force_revoke", revoke_fault), ("resume_only", resume_fault)) if fault]
    pending = {s.tags.get(T.OF_TAG, "").lower(): s for s in secrets
               if s.name.lower().endswith(T.PENDING_SUFFIX) and T.OF_TAG in s.tags}
    by_name = {s.name.lower(): s for s in secrets}
    parsed: list[tuple[SecretInfo, T.RotationSpec]] = []
    for secret in sorted(secrets, key=lambda s: s.name.lower()):
        if secret.name.lower().endswith(T.PENDING_SUFFIX) and T.OF_TAG in secret.tags:
            continue
        try:
            spec = T.parse(secret.name, secret.tags, config.default_period_days)
        except T.TagError as err:
            out.actions.append(Action.fail(secret.name, f"tags: {err.fault}", kind=INVALID))
            out.rows.append(_row(secret, None, "invalid", err.fault, now, config))
            continue
        if spec is None:
            if force is not None and force.lower() == secret.name.lower():
                out.actions.append(Action.fail(secret.name, f"cannot force: {secret.name} is not "
                                               f"tagged for rotation ({T.KIND_TAG})", kind=ROTATE))
            continue
        parsed.append((secret, spec))
    shared = conflicts([spec for _, spec in parsed])
    specs: dict[str, T.RotationSpec] = {}
    for secret, spec in parsed:
        if spec.name in shared:
            out.actions.append(Action.fail(spec.name, f"tags: {shared[spec.name]}", kind=INVALID))
            out.rows.append(_row(secret, spec, "invalid", shared[spec.name], now, config))
            continue
        specs[secret.name.lower()] = spec
        forced = force is not None and force.lower() == secret.name.lower()
        action, status = _decide(secret, spec, pending.get(secret.name.lower()),
                                 failures.get(secret.name), now, config, forced, revoke)
        if action:
            out.actions.append(action)
        out.rows.append(_row(secret, spec, status, action.reason if action else "", now, config))
    if force is not None and force.lower() not in by_name:
        out.actions.append(Action.fail(force, f"cannot force: no secret named {force} in the vault",
                                       kind=ROTATE))
    if only_resume:
        stopped = interrupted(secrets, failures)
        out.actions = [a for a in out.actions if a.kind == ROTATE and a.params.get("resume")
                       and a.target.lower() in stopped]
    if faults:  # nothing is done on a request that is not clear (the rows still report every secret)
        out.actions = faults
    out.actions = _order(sorted(out.actions, key=lambda a: a.target.lower()), specs)
    out.rows.sort(key=lambda r: r["secret"].lower())
    return out


def _flag(name: str, value: str | None) -> tuple[bool, str | None]:
    """A true/false option: (value, fault)."""
    if value is None:
        return False, None
    try:
        return parse_bool(f"option {name}", value), None
    except BadRequest as exc:
        return False, str(exc)


def _revoke_option(force: str | None, value: str | None) -> tuple[bool, str | None]:
    """force_revoke: (revoke?, fault)."""
    revoke, fault = _flag("force_revoke", value)
    if fault:
        return False, fault
    if revoke and force is None:
        return False, "option force_revoke goes with force NAME (the secret to rotate now)"
    return revoke, None


def conflicts(specs: list[T.RotationSpec]) -> dict[str, str]:
    """Secrets whose rotations would break each other: two on one Redis cache or storage
    account (each regenerates the key the other holds), or on one PostgreSQL role."""
    claims: dict[tuple[str, str], list[str]] = {}
    for spec in specs:
        if spec.resource_id is None:
            continue
        resource = spec.resource_id.lower()
        held = (["both keys"] if spec.mode == T.DUAL
                else list(spec.roles) if spec.roles else [spec.credential or ""])
        for credential in held:
            claims.setdefault((resource, credential), []).append(spec.name)
    faults: dict[str, str] = {}
    for (resource, credential), names in claims.items():
        for name in names if len(names) > 1 else ():
            others = ", ".join(n for n in names if n != name)
            what = "its keys" if credential == "both keys" else f"role {credential}"
            faults.setdefault(name, f"{others} also rotates {what} on {resource.split('/')[-1]}: "
                                    "one secret per credential, or their rotations break each other")
    return faults


def _decide(secret: SecretInfo, spec: T.RotationSpec, pending: SecretInfo | None,
            failure: Failure | None, now: datetime, config, forced: bool, revoke: bool = False
            ) -> tuple[Action | None, str]:
    name = secret.name
    step = pending.tags.get(T.STEP_TAG) if pending and pending.enabled else None
    if not secret.enabled:
        return (Action.fail(name, "its current version is disabled, so consumers cannot read it: "
                            "enable it or write a new version", kind=INVALID), "invalid")
    params = {"forced": forced, "observed_created": iso(secret.created_on),
              "observed_id": secret.tags.get(T.ID_TAG)}
    counts = failure is not None and (failure_applies(failure, secret) or step in ACTIVE_STEPS)
    if counts and failure.attempts >= config.max_failed_attempts and not forced:
        return (Action.fail(name, f"stopped after {failure.attempts} failed attempts (last "
                            f"{failure.last_failed}: {failure.last_error}); fix the cause, then run "
                            f"with --force {name}", kind=BLOCKED), "blocked")
    if step in ACTIVE_STEPS:
        rid = pending.tags.get(T.ID_TAG, "?")
        deleted = (f" (its pending secret {pending.name} was deleted: recover it)"
                   if pending.deleted else "")
        return (Action(ROTATE, name, f"resume rotation {rid} after step {step}{deleted}",
                       params={**params, "resume": True}), "resuming")
    grace_until = parse_iso(secret.tags.get(T.GRACE_TAG))
    in_grace = (grace_until is not None and now < grace_until and spec.mode in (T.DUAL, T.ALTERNATE_ROLES))
    if forced and in_grace and not revoke:
        return (Action.skip(name, f"forced, but waits until {iso(grace_until)}: the previous value stays "
                            "valid until then and this rotation would revoke it (force_revoke=true "
                            "revokes it now)", kind=ROTATE), "waiting")
    if forced:
        reason = "forced"
        if in_grace:
            reason += f" (cuts short the previous value's grace period, until {iso(grace_until)})"
        return Action(ROTATE, name, reason, params={**params, "resume": False}), "rotating"
    why = due_reason(secret, spec, now, config)
    if why:
        if in_grace:
            return (Action.skip(name, f"{why}, but waits until {iso(grace_until)}: the previous value "
                                f"stays valid until then and this rotation would revoke it",
                                kind=ROTATE), "waiting")
        return Action(ROTATE, name, why, params={**params, "resume": False}), "due"
    previous = secret.tags.get(T.PREVIOUS_TAG)
    if previous and (grace_until is None or now >= grace_until):
        return (Action(END_GRACE, name, f"grace period of the previous version ended "
                       f"{iso(grace_until) or '(no end recorded)'}: disable it",
                       params={"version": previous}), "ok")
    return None, "ok"


def due_reason(secret: SecretInfo, spec: T.RotationSpec, now: datetime, config) -> str | None:
    if secret.created_on is not None:
        age = now - secret.created_on
        if age >= timedelta(days=spec.period_days):
            return f"due: {age.days} days old (period {spec.period_days} days)"
    if secret.expires_on is not None:
        left = secret.expires_on - now
        if left <= timedelta(0):
            return f"due: expired {iso(secret.expires_on)}"
        if left <= timedelta(days=config.near_expiry_days):
            return (f"due: expires {iso(secret.expires_on)}, within {config.near_expiry_days} days")
    return None


def next_due(secret: SecretInfo, spec: T.RotationSpec, config) -> datetime | None:
    moments = []
    if secret.created_on is not None:
        moments.append(secret.created_on + timedelta(days=spec.period_days))
    if secret.expires_on is not None:
        moments.append(secret.expires_on - timedelta(days=config.near_expiry_days))
    return min(moments) if moments else None


def _row(secret: SecretInfo, spec: T.RotationSpec | None, status: str, why: str, now: datetime,
         config) -> dict[str, Any]:
    age = (now - secret.created_on).days if secret.created_on else None
    return {"secret": secret.name, "kind": spec.kind if spec else secret.tags.get(T.KIND_TAG),
            "mode": spec.mode if spec else None, "credential": spec.credential if spec else None,
            "period_days": spec.period_days if spec else None, "age_days": age,
            "expires": iso(secret.expires_on),
            "next_due": iso(next_due(secret, spec, config)) if spec else None,
            "status": status, "why": why}


def _order(actions: list[Action], specs: dict[str, T.RotationSpec]) -> list[Action]:
    """An app-role rotation runs after its administrator's secret rotates in the same run."""
    rotating = {a.target.lower(): a.key for a in actions if a.kind == ROTATE and not a.verdict}
    ordered = []
    for a in actions:
        spec = specs.get(a.target.lower())
        admin = spec.admin_secret.lower() if spec and spec.admin_secret else None
        if a.kind == ROTATE and not a.verdict and admin in rotating:
            a = Action(a.kind, a.target, a.reason, params=a.params, after=(rotating[admin],))
        ordered.append(a)
    return ordered
