"""The tag grammar of secret-rotation: which Key Vault secrets are rotated, and how.

A secret is rotated only when the tags of its current version say how (the
README's "secret-rotation" section is the user-facing copy of this table):

    rotation-kind          generated | postgres-password | redis-key | storage-key
                           (postgres, redis, storage are accepted as short forms)
    rotation-resource      the ARM id of the resource the credential belongs to
                           (a PostgreSQL flexible server, a Redis cache, a storage
                           account); not used by kind generated
    rotation-credential    the credential the secret's value is now: primary|secondary
                           (redis-key), key1|key2 (storage-key), the role (login) name
                           (postgres-password); the job flips it on each rotation
                           of a dual credential
    rotation-period-days   whole days between rotations (default
                           OPS_SECRET_ROTATION__DEFAULT_PERIOD_DAYS, 90)
    rotation-roles         postgres-password only: "role_a,role_b" chooses the
                           alternate-roles mode (rotation-credential is one of them);
                           without it, single-role mode changes one role's password
    rotation-admin-secret  postgres-password only: the Key Vault secret holding the
                           server administrator's password, needed to change an app
                           role's password (not needed to rotate the administrator)
    rotation-consumers     optional: App Service apps that read the secret,
                           "rg/app" (same subscription as rotation-resource) or
                           full site ids, comma-separated

Written by the job, on the current version:

    rotation-id                the rotation that promoted this version
    rotation-previous-version  the version kept enabled for the grace period
    rotation-grace-until       when that grace period ends (ISO 8601, UTC)

and, on the pending secret ``<name>--pending`` (protocol.py): rotation-of,
rotation-id, rotation-step, rotation-credential, rotation-base-version,
rotation-started.

A secret without rotation-kind and without any other configuration tag above is
left alone. Anything else that does not parse is a ``TagError`` naming the secret
and the fault: reported as a failed outcome, never skipped silently. Pure: no
Azure imports, no clock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

KIND_TAG = "rotation-kind"
RESOURCE_TAG = "rotation-resource"
CREDENTIAL_TAG = "rotation-credential"
PERIOD_TAG = "rotation-period-days"
ROLES_TAG = "rotation-roles"
ADMIN_SECRET_TAG = "rotation-admin-secret"
CONSUMERS_TAG = "rotation-consumers"
CONFIG_TAGS = (KIND_TAG, RESOURCE_TAG, CREDENTIAL_TAG, PERIOD_TAG, ROLES_TAG, ADMIN_SECRET_TAG,
               CONSUMERS_TAG)

ID_TAG = "rotation-id"
PREVIOUS_TAG = "rotation-previous-version"
GRACE_TAG = "rotation-grace-until"
BOOKKEEPING_TAGS = (ID_TAG, PREVIOUS_TAG, GRACE_TAG)

# On the pending secret.
OF_TAG = "rotation-of"
STEP_TAG = "rotation-step"
BASE_TAG = "rotation-base-version"
STARTED_TAG = "rotation-started"

PENDING_SUFFIX = "--pending"
MAX_TAGS = 15  # Key Vault's limit per secret version
MAX_NAME = 127  # Key Vault's limit on secret names

GENERATED, POSTGRES, REDIS, STORAGE = "generated", "postgres-password", "redis-key", "storage-key"
KINDS = (GENERATED, POSTGRES, REDIS, STORAGE)
_ALIASES = {"postgres": POSTGRES, "redis": REDIS, "storage": STORAGE}
RESOURCE_TYPES = {
    POSTGRES: "Microsoft.DBforPostgreSQL/flexibleServers",
    REDIS: "Microsoft.Cache/Redis",
    STORAGE: "Microsoft.Storage/storageAccounts",
}
DUAL_CREDENTIALS = {REDIS: ("primary", "secondary"), STORAGE: ("key1", "key2")}

# Modes: how a rotation keeps consumers working.
DUAL, ALTERNATE_ROLES, SINGLE_ROLE, LOCAL = "dual", "alternate-roles", "single-role", "generated"

_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")  # a plain PostgreSQL identifier
_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_ARM_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                     r"(?P<namespace>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+)$", re.IGNORECASE)
_SITE_SHORT = re.compile(r"^(?P<rg>[-\w.()]{1,90})/(?P<name>[0-9A-Za-z-]{1,60})$")


class TagError(ValueError):
    """The tags of one secret do not say how to rotate it; str() names the secret and the fault."""

    def __init__(self, secret: str, fault: str):
        super().__init__(f"{secret}: {fault}")
        self.secret, self.fault = secret, fault


@dataclass(frozen=True)
class RotationSpec:
    """How one secret is rotated, as its tags say."""

    name: str
    kind: str
    period_days: int
    credential: str | None = None  # in use now
    resource_id: str | None = None
    roles: tuple[str, str] | None = None  # alternate-roles mode
    admin_secret: str | None = None
    consumers: tuple[str, ...] = ()  # App Service site ids
    user_tags: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def mode(self) -> str:
        if self.kind in DUAL_CREDENTIALS:
            return DUAL
        if self.kind == POSTGRES:
            return ALTERNATE_ROLES if self.roles else SINGLE_ROLE
        return LOCAL

    @property
    def keeps_previous(self) -> bool:
        """Whether the previous value still works after a rotation (so it gets a grace period)."""
        return self.mode != SINGLE_ROLE

    def next_credential(self) -> str | None:
        """The credential a new rotation sets: the one not in use, or the same one."""
        if self.kind in DUAL_CREDENTIALS:
            first, second = DUAL_CREDENTIALS[self.kind]
            return second if self.credential == first else first
        if self.roles:
            return self.roles[1] if self.credential == self.roles[0] else self.roles[0]
        return self.credential

    @property
    def pending_name(self) -> str:
        return pending_name(self.name)

    @property
    def subscription(self) -> str:
        return _ARM_ID.match(self.resource_id or "")["sub"]

    @property
    def resource_group(self) -> str:
        return _ARM_ID.match(self.resource_id or "")["rg"]

    @property
    def resource_name(self) -> str:
        return _ARM_ID.match(self.resource_id or "")["name"]


def pending_name(name: str) -> str:
    return name + PENDING_SUFFIX


def is_managed(tags: dict[str, str] | None) -> bool:
    """Whether a secret asks to be rotated at all (any configuration tag)."""
    return any(t in (tags or {}) for t in CONFIG_TAGS)


def canonical_kind(value: str) -> str | None:
    value = value.strip().lower()
    value = _ALIASES.get(value, value)
    return value if value in KINDS else None


def parse(name: str, tags: dict[str, str] | None, default_period_days: int = 90) -> RotationSpec | None:
    """The RotationSpec of a secret, None when it is not tagged for rotation;
    raises TagError naming the secret and the first fault."""
    tags = dict(tags or {})
    if not is_managed(tags):
        return None

    def fault(text: str) -> TagError:
        return TagError(name, text)

    if name.lower().endswith(PENDING_SUFFIX):
        raise fault(f"a name ending in {PENDING_SUFFIX} is reserved for pending rotations")
    if len(pending_name(name)) > MAX_NAME:
        raise fault(f"the name is too long for its pending secret {pending_name(name)!r} "
                    f"(Key Vault allows {MAX_NAME} characters)")
    raw_kind = tags.get(KIND_TAG)
    if raw_kind is None:
        present = ", ".join(t for t in CONFIG_TAGS if t in tags)
        raise fault(f"{KIND_TAG} is missing (it has {present}); set it to one of {', '.join(KINDS)}")
    kind = canonical_kind(raw_kind)
    if kind is None:
        raise fault(f"{KIND_TAG} {raw_kind!r} is not one of {', '.join(KINDS)}")

    period = _period(tags.get(PERIOD_TAG), default_period_days, fault)
    _grace_until(tags.get(GRACE_TAG), fault)
    user_tags = {k: v for k, v in tags.items() if k not in BOOKKEEPING_TAGS}
    if len(user_tags) + len(BOOKKEEPING_TAGS) > MAX_TAGS:
        raise fault(f"it has {len(user_tags)} tags; rotation adds up to {len(BOOKKEEPING_TAGS)} "
                    f"and Key Vault allows {MAX_TAGS}")

    if kind == GENERATED:
        extra = [t for t in (RESOURCE_TAG, CREDENTIAL_TAG, ROLES_TAG, ADMIN_SECRET_TAG) if t in tags]
        if extra:
            raise fault(f"{', '.join(extra)} not used by kind {GENERATED}; remove it")
        consumers = _consumers(tags.get(CONSUMERS_TAG), None, fault)
        return RotationSpec(name, kind, period, consumers=consumers, user_tags=user_tags)

    resource_id = _resource(tags.get(RESOURCE_TAG), kind, fault)
    subscription = _ARM_ID.match(resource_id)["sub"]
    credential = (tags.get(CREDENTIAL_TAG) or "").strip()
    if not credential:
        raise fault(f"{CREDENTIAL_TAG} is missing: the credential the value is now "
                    + (" or ".join(DUAL_CREDENTIALS[kind]) if kind in DUAL_CREDENTIALS
                       else "(the role name)"))
    roles = admin_secret = None
    if kind in DUAL_CREDENTIALS:
        if credential.lower() not in DUAL_CREDENTIALS[kind]:
            raise fault(f"{CREDENTIAL_TAG} {credential!r} is not "
                        f"{' or '.join(DUAL_CREDENTIALS[kind])}")
        credential = credential.lower()
        extra = [t for t in (ROLES_TAG, ADMIN_SECRET_TAG) if t in tags]
        if extra:
            raise fault(f"{', '.join(extra)} not used by kind {kind}; remove it")
    else:
        if not _ROLE.match(credential):
            raise fault(f"{CREDENTIAL_TAG} {credential!r} is not a plain PostgreSQL role name "
                        "(letters, digits, _; at most 63)")
        if ROLES_TAG in tags:
            roles = _roles(tags[ROLES_TAG], credential, fault)
        if ADMIN_SECRET_TAG in tags:
            admin_secret = tags[ADMIN_SECRET_TAG].strip()
            if not _SECRET_NAME.match(admin_secret):
                raise fault(f"{ADMIN_SECRET_TAG} {admin_secret!r} is not a Key Vault secret name")
            if admin_secret.lower() == name.lower():
                raise fault(f"{ADMIN_SECRET_TAG} names the secret itself")
        elif roles:
            raise fault(f"{ROLES_TAG} needs {ADMIN_SECRET_TAG}: the secret holding the server "
                        "administrator's password, to set the roles' passwords")
    consumers = _consumers(tags.get(CONSUMERS_TAG), subscription, fault)
    return RotationSpec(name, kind, period, credential=credential, resource_id=resource_id,
                        roles=roles, admin_secret=admin_secret, consumers=consumers,
                        user_tags=user_tags)


def _period(raw: str | None, default: int, fault) -> int:
    if raw is None:
        return default
    text = raw.strip()
    if not re.fullmatch(r"\d{1,4}", text) or not 1 <= int(text) <= 3650:
        raise fault(f"{PERIOD_TAG} must be a whole number of days from 1 to 3650, got {raw!r}")
    return int(text)


def _grace_until(raw: str | None, fault) -> None:
    """The job writes it (ISO 8601, UTC); one edited into something else would end the grace
    period at once (disabling a value consumers may still read) or stop the plan: a fault."""
    if raw is None or not raw.strip():
        return  # as absent: no end recorded
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))  # as plan.parse_iso reads it
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise fault(f"{GRACE_TAG} {raw!r} is not an ISO-8601 time with offset (the job writes e.g. "
                    "2026-12-01T02:30:00Z); correct or remove it")


def _resource(raw: str | None, kind: str, fault) -> str:
    wanted = RESOURCE_TYPES[kind]
    if not raw or not raw.strip():
        raise fault(f"{RESOURCE_TAG} is missing: the id of the {wanted} the credential belongs to")
    match = _ARM_ID.match(raw.strip())
    if not match:
        raise fault(f"{RESOURCE_TAG} is not a resource id "
                    "(/subscriptions/<id>/resourceGroups/<rg>/providers/<type>/<name>)")
    found = f"{match['namespace']}/{match['type']}"
    if found.lower() != wanted.lower():
        raise fault(f"{RESOURCE_TAG} is a {found}, but kind {kind} needs a {wanted}")
    return raw.strip()


def _roles(raw: str, credential: str, fault) -> tuple[str, str]:
    roles = [r.strip() for r in raw.split(",")]
    if len(roles) != 2 or not all(_ROLE.match(r) for r in roles) or roles[0] == roles[1]:
        raise fault(f"{ROLES_TAG} must name two different roles, e.g. app_a,app_b; got {raw!r}")
    if credential not in roles:
        raise fault(f"{CREDENTIAL_TAG} {credential!r} is not one of {ROLES_TAG} {raw!r}")
    return roles[0], roles[1]


def _consumers(raw: str | None, subscription: str | None, fault) -> tuple[str, ...]:
    if raw is None:
        return ()
    sites = []
    for item in (i.strip() for i in raw.split(",")):
        if not item:
            continue
        full = _ARM_ID.match(item)
        if full:
            if f"{full['namespace']}/{full['type']}".lower() != "microsoft.web/sites":
                raise fault(f"{CONSUMERS_TAG}: {item!r} is not an App Service app (Microsoft.Web/sites)")
            sites.append(item)
            continue
        short = _SITE_SHORT.match(item)
        if not short:
            raise fault(f"{CONSUMERS_TAG}: {item!r} is neither rg/app nor an app's resource id")
        if subscription is None:
            raise fault(f"{CONSUMERS_TAG}: {item!r} needs a full resource id (kind {GENERATED} "
                        "has no resource to take the subscription from)")
        sites.append(f"/subscriptions/{subscription}/resourceGroups/{short['rg']}"
                     f"/providers/Microsoft.Web/sites/{short['name']}")
    return tuple(sites)


def parse_arm_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of an ARM id the grammar accepted."""
    match = _ARM_ID.match(resource_id)
    if not match:
        raise ValueError(f"not a resource id: {resource_id!r}")
    return match["sub"], match["rg"], match["name"]
