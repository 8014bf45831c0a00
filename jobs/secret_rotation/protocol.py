"""The rotation protocol: create, set, test, promote, finish, each step a small
idempotent function over an injected vault and resource (azure_io.py holds the
real ones; tests may drive the steps one by one).

State lives in Key Vault itself, in the pending secret ``<name>--pending``:
each rotation writes a new version of it, and the tags of its latest version
are the rotation's record (tags.py names them): ``rotation-id``,
``rotation-step`` (the last step done: created, set, tested, promoted,
finished), ``rotation-credential`` (the credential being set),
``rotation-base-version`` (the current version it started from) and
``rotation-started``. The pending secret is never deleted (a soft-deleted name
cannot be reused until purged): a finished rotation disables its version. If
someone deletes it anyway, ``recover()`` recovers it before the next rotation
of that secret.

Every step reads the marker first and does nothing unless it is the next one,
so ``run()`` after a crash at any point resumes where the persisted state says
and converges; work that is not recorded yet is redone or detected:

1. CREATE  (no active pending secret) checks the consumers' value is the
   credential the tags say (dual credentials, alternate roles), then writes
   the new value (or, for keys Azure generates, a placeholder) to the pending
   secret with step=created. Nothing outside Key Vault has changed.
2. SET     applies it to the resource, skipped when the pending value already
   authenticates. Redis/Storage: regenerate the key *not* in use and write it
   as a new pending version (a crash before that write regenerates the unused
   key again: harmless). PostgreSQL: the password of the role not in use
   (alternate roles) or of the one role (single-role mode).
3. TEST    authenticates with the pending value, with bounded retries. A
   single-role failure puts the old password back and the marker to created.
4. PROMOTE writes the value as the secret's new current version, tags
   carried forward (credential flipped, rotation-id, grace bookkeeping),
   expiry set; skipped when the current version already carries this
   rotation-id. Only now do consumers see it.
5. FINISH  keeps the previous version enabled for the grace period where its
   value still works (not for a single-role password), disables older ones,
   optionally refreshes consumers, and marks the pending version finished
   (disabled).

Invariant: at every step boundary the consumers' value (the current version)
authenticates, except in single-role mode between SET and PROMOTE, when only
the pending value does (a short, documented window; a failure in it rolls back).

Never puts a value in a message, a log line or an exception.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Protocol

from jobs.secret_rotation import tags as T
from jobs.secret_rotation.plan import iso

log = logging.getLogger(__name__)

STEPS = ("created", "set", "tested", "promoted", "finished")
ACTIVE = STEPS[:-1]
# What a pending version holds before Azure has generated the key (not a secret).
PLACEHOLDER = "placeholder: the resource generates this credential at the set step"


class RotationError(Exception):
    """A rotation step failed; the message says which and why, never a value."""


class AuthFailed(Exception):
    """A credential did not authenticate (or the service could not be reached); no value inside."""


@dataclass(frozen=True)
class Current:
    """The secret's current version: what consumers read."""

    version: str
    value: str = field(repr=False)
    tags: dict[str, str]
    content_type: str | None = None
    created_on: datetime | None = None
    expires_on: datetime | None = None


@dataclass(frozen=True)
class Pending:
    """The latest version of ``<name>--pending`` while it is enabled."""

    version: str
    value: str | None = field(repr=False)  # None while it is the placeholder
    tags: dict[str, str]

    @property
    def rotation_id(self) -> str:
        return self.tags.get(T.ID_TAG, "")

    @property
    def step(self) -> str:
        return self.tags.get(T.STEP_TAG, "")

    @property
    def credential(self) -> str:
        return self.tags.get(T.CREDENTIAL_TAG, "")

    @property
    def base_version(self) -> str:
        return self.tags.get(T.BASE_TAG, "")


class Vault(Protocol):
    def current(self, name: str) -> Current: ...
    def pending(self, name: str) -> Pending | None: ...
    def recover_pending(self, name: str) -> bool: ...
    def write_pending(self, name: str, value: str, tags: dict[str, str]) -> Pending: ...
    def mark_pending(self, name: str, version: str, tags: dict[str, str], *, enabled: bool = True) -> None: ...
    def write_current(self, name: str, value: str, tags: dict[str, str], content_type: str | None,
                      expires_on: datetime | None) -> str: ...
    def enabled_versions(self, name: str) -> list[str]: ...
    def disable(self, name: str, version: str) -> None: ...
    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None: ...


class Resource(Protocol):
    """What a rotation does to the service the credential belongs to."""

    description: str  # for messages, e.g. "Redis cache redis-x"

    def check_current(self, spec: T.RotationSpec, current: Current) -> None: ...
    def new_value(self) -> str | None: ...
    def apply(self, credential: str, value: str | None) -> str: ...
    def authenticate(self, credential: str, value: str) -> None: ...


class Consumers(Protocol):
    def refresh(self, spec: T.RotationSpec) -> list[str]: ...


@dataclass
class Rotation:
    """One secret's rotation: the spec, the adapters, the settings and the moment."""

    spec: T.RotationSpec
    vault: Vault
    resource: Resource
    config: object  # SecretRotationSettings
    now: datetime
    rotation_id: str = ""  # for a new rotation (CREATE)
    consumers: Consumers | None = None
    sleep: Callable[[float], None] = time.sleep
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Result:
    name: str
    rotation_id: str
    resumed_from: str | None
    credential: str | None
    notes: tuple[str, ...] = ()

    def detail(self) -> str:
        text = f"rotation {self.rotation_id} finished"
        if self.resumed_from:
            text += f" (resumed after step {self.resumed_from})"
        if self.credential:
            text += f"; {self.credential} in use"
        return "; ".join([text, *self.notes])


# -- the steps ------------------------------------------------------------------------------

def create(r: Rotation) -> Pending:
    """CREATE: the new value in the pending secret, before the resource is touched."""
    pending = r.vault.pending(r.name)
    if pending is not None and pending.step in ACTIVE:
        return pending  # an unfinished rotation is resumed, never doubled
    current = r.vault.current(r.name)
    r.resource.check_current(r.spec, current)
    value = r.resource.new_value()
    tags = {T.OF_TAG: r.name, T.ID_TAG: r.rotation_id or new_rotation_id(r.now),
            T.STEP_TAG: "created", T.CREDENTIAL_TAG: r.spec.next_credential() or "",
            T.BASE_TAG: current.version, T.STARTED_TAG: iso(r.now) or ""}
    pending = r.vault.write_pending(r.name, value if value is not None else PLACEHOLDER, tags)
    log.info("%s: rotation %s created (sets %s)", r.name, pending.rotation_id, pending.credential)
    return pending


def set_credential(r: Rotation) -> None:
    """SET: the pending value becomes valid on the resource."""
    pending = _at(r, "created")
    if pending is None:
        return
    mode = r.spec.mode
    if mode == T.DUAL:
        value = r.resource.apply(pending.credential, None)
        written = r.vault.write_pending(r.name, value, {**pending.tags, T.STEP_TAG: "set"})
        r.vault.disable(r.spec.pending_name, pending.version)  # the placeholder
        log.info("%s: rotation %s set %s (pending version %s)", r.name, pending.rotation_id,
                 pending.credential, written.version)
        return
    if mode != T.LOCAL and not _authenticates(r, pending.credential, pending.value):
        r.resource.apply(pending.credential, pending.value)
    r.vault.mark_pending(r.name, pending.version, {**pending.tags, T.STEP_TAG: "set"})
    log.info("%s: rotation %s set %s", r.name, pending.rotation_id, pending.credential)


def test(r: Rotation) -> None:
    """TEST: the pending value authenticates against the real service."""
    pending = _at(r, "set")
    if pending is None:
        return
    try:
        attempts = with_retries(r, lambda: r.resource.authenticate(pending.credential, pending.value or ""))
    except AuthFailed as exc:
        message = (f"test: the new {pending.credential or 'value'} did not authenticate against "
                   f"{r.resource.description} after {r.config.test_attempts} attempts ({exc})")
        if r.spec.mode == T.SINGLE_ROLE:
            message += "; " + _roll_back(r, pending, r.vault.current(r.name).value)
        raise RotationError(message) from None
    r.vault.mark_pending(r.name, pending.version, {**pending.tags, T.STEP_TAG: "tested"})
    log.info("%s: rotation %s tested (%d attempt(s))", r.name, pending.rotation_id, attempts)


def promote(r: Rotation) -> None:
    """PROMOTE: the tested value becomes the version consumers read."""
    pending = _at(r, "tested")
    if pending is None:
        return
    current = r.vault.current(r.name)
    if current.tags.get(T.ID_TAG) != pending.rotation_id:
        if current.version != pending.base_version:
            _abandon(r, pending, f"promote: {r.name} got a new version ({current.version}) since rotation "
                                 f"{pending.rotation_id} started from {pending.base_version}; the rotation "
                                 "is abandoned and the new version left as it is", password_set=True)
        tags = promoted_tags(r, current, pending)
        expires = r.now + timedelta(days=r.spec.period_days + r.config.near_expiry_days)
        try:
            r.vault.write_current(r.name, pending.value or "", tags, current.content_type, expires)
        except Exception as exc:
            if not _landed(r, pending):
                message = f"promote: could not write the new version ({describe(exc)})"
                if r.spec.mode == T.SINGLE_ROLE:
                    message += "; " + _roll_back(r, pending, current.value)
                raise RotationError(message) from None
    r.vault.mark_pending(r.name, pending.version, {**pending.tags, T.STEP_TAG: "promoted"})
    log.info("%s: rotation %s promoted", r.name, pending.rotation_id)


def finish(r: Rotation) -> None:
    """FINISH: previous version kept for its grace period (or disabled), older ones
    disabled, consumers refreshed, the pending version marked finished."""
    pending = _at(r, "promoted")
    if pending is None:
        return
    current = r.vault.current(r.name)
    if current.tags.get(T.ID_TAG) == pending.rotation_id:
        keep = {current.version}
        if current.tags.get(T.PREVIOUS_TAG):
            keep.add(current.tags[T.PREVIOUS_TAG])
        for version in r.vault.enabled_versions(r.name):
            if version not in keep:
                r.vault.disable(r.name, version)
    else:  # someone wrote a version since: leave the versions as they are
        r.notes.append(f"{r.name} got a new version after promotion; older versions left as they are")
    for version in r.vault.enabled_versions(r.spec.pending_name):
        if version != pending.version:
            r.vault.disable(r.spec.pending_name, version)
    if r.consumers is not None and r.spec.consumers:
        r.notes.extend(r.consumers.refresh(r.spec))
    r.vault.mark_pending(r.name, pending.version, {**pending.tags, T.STEP_TAG: "finished"},
                         enabled=False)
    log.info("%s: rotation %s finished", r.name, pending.rotation_id)


def _abandon(r: Rotation, pending, why: str, *, password_set: bool = False) -> None:
    """The secret moved on since the rotation began: never promote its pending value.
    ``password_set``: the rotation got past SET, so a single role's password is the pending one."""
    r.vault.mark_pending(r.name, pending.version, {**pending.tags, T.STEP_TAG: "abandoned"}, enabled=False)
    if r.spec.mode == T.SINGLE_ROLE:
        why += (f"; the role's password {'is' if password_set else 'may be'} the pending one, "
                "check which value consumers need")
    raise RotationError(why)


def recover(r: Rotation) -> str | None:
    """A soft-deleted pending secret blocks its name (409) until recovered or purged: recover
    it (it may hold the only copy of a password already set). A recovered unfinished rotation
    is tested again before promotion, and abandoned if the secret has a new version since."""
    if not r.vault.recover_pending(r.name):
        return None
    note = f"recovered {r.spec.pending_name}, which had been deleted"
    pending = r.vault.pending(r.name)
    if pending is None or pending.step not in ACTIVE or pending.step == "promoted":
        return note
    current = r.vault.current(r.name)
    if current.version != pending.base_version:
        _abandon(r, pending, f"{note}: its rotation {pending.rotation_id} started from version "
                             f"{pending.base_version}, but {r.name}'s current version is "
                             f"{current.version}; the rotation is abandoned, never promoted")
    if pending.step == "tested":  # time passed while it was deleted: test the value again
        r.vault.mark_pending(r.name, pending.version, {**pending.tags, T.STEP_TAG: "set"})
    return note


STEP_FUNCTIONS = {"create": create, "set": set_credential, "test": test, "promote": promote,
                  "finish": finish}


def run(r: Rotation) -> Result:
    """Every step in order; each does only what the persisted marker says is left."""
    before = r.vault.pending(r.name)
    resumed_from = before.step if before is not None and before.step in ACTIVE else None
    pending = create(r)
    for step in (set_credential, test, promote, finish):
        step(r)
    credential = pending.credential if r.spec.mode in (T.DUAL, T.ALTERNATE_ROLES) else None
    return Result(r.name, pending.rotation_id, resumed_from, credential, tuple(r.notes))


def end_grace(vault: Vault, name: str, version: str) -> str:
    """Disable the previous version once its grace period is over; idempotent."""
    current = vault.current(name)
    if current.tags.get(T.PREVIOUS_TAG) != version:
        return "nothing to do: the grace period was already ended"
    if version != current.version and version in vault.enabled_versions(name):
        vault.disable(name, version)
    vault.set_tags(name, current.version, {k: v for k, v in current.tags.items()
                                           if k not in (T.PREVIOUS_TAG, T.GRACE_TAG)})
    return f"previous version {version} disabled"


# -- helpers ---------------------------------------------------------------------------------

def promoted_tags(r: Rotation, current: Current, pending: Pending) -> dict[str, str]:
    tags = {k: v for k, v in current.tags.items() if k not in T.BOOKKEEPING_TAGS}
    if r.spec.mode in (T.DUAL, T.ALTERNATE_ROLES):
        tags[T.CREDENTIAL_TAG] = pending.credential
    tags[T.ID_TAG] = pending.rotation_id
    if r.spec.keeps_previous and r.config.grace_days > 0:
        tags[T.PREVIOUS_TAG] = pending.base_version
        tags[T.GRACE_TAG] = iso(r.now + timedelta(days=r.config.grace_days)) or ""
    return tags


def with_retries(r: Rotation, attempt: Callable[[], None]) -> int:
    """Call until it does not raise AuthFailed, at most test_attempts times, the
    delay doubling from test_delay_seconds up to test_max_delay_seconds."""
    delay = r.config.test_delay_seconds
    for number in range(1, r.config.test_attempts + 1):
        try:
            attempt()
            return number
        except AuthFailed:
            if number == r.config.test_attempts:
                raise
            log.info("%s: not authenticated yet (attempt %d of %d); retrying in %.1fs",
                     r.name, number, r.config.test_attempts, delay)
            r.sleep(delay)
            delay = min(delay * 2, r.config.test_max_delay_seconds)
    raise AssertionError("unreachable")


def new_rotation_id(now: datetime) -> str:
    import uuid
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def describe(exc: BaseException) -> str:
    """A one-line, value-free description of an exception (the runner scrubs it again)."""
    from jobs import redact
    text = getattr(exc, "message", None) or str(exc)
    text = text.strip().splitlines()[0] if text and text.strip() else ""
    return redact.scrub(f"{type(exc).__name__}: {text}", limit=300) if text else type(exc).__name__


def _at(r: Rotation, step: str) -> Pending | None:
    """The pending version when ``step`` is the last step done, else None (nothing to do)."""
    pending = r.vault.pending(r.name)
    if pending is None or pending.step not in ACTIVE:
        raise RotationError(f"{r.name}: no rotation in progress (pending secret "
                            f"{r.spec.pending_name} has none)")
    return pending if pending.step == step else None


def _authenticates(r: Rotation, credential: str, value: str | None) -> bool:
    if not value:
        return False
    try:
        r.resource.authenticate(credential, value)
        return True
    except AuthFailed:
        return False


def _landed(r: Rotation, pending: Pending) -> bool:
    try:
        return r.vault.current(r.name).tags.get(T.ID_TAG) == pending.rotation_id
    except Exception:  # noqa: BLE001 - unknown counts as not landed
        return False


def _roll_back(r: Rotation, pending: Pending, old_value: str) -> str:
    """Single-role: put the consumers' value back on the role, marker back to created."""
    try:
        r.resource.apply(pending.credential, old_value)
        r.vault.mark_pending(r.name, pending.version, {**pending.tags, T.STEP_TAG: "created"})
    except Exception as exc:  # noqa: BLE001 - reported; the next run resumes from the marker
        log.error("%s: could not roll back rotation %s: %s", r.name, pending.rotation_id, describe(exc))
        return (f"rolling back failed too ({describe(exc)}): the role may hold the pending value "
                f"({r.spec.pending_name}); the next run resumes")
    return "the previous password was put back, so consumers' value works again"
