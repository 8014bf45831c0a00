"""The vocabulary every job shares: what a plan proposes (Action), what came of
it (Outcome) and what a run tells the world (RunReport).

Pure data: no Azure imports, no I/O, no clock. Nothing here may hold a secret
value; reasons, errors and details are written for people and stored as-is.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Status = Literal["succeeded", "failed", "skipped", "planned"]
STATUSES: tuple[Status, ...] = ("succeeded", "failed", "skipped", "planned")
REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Action:
    """One change a job proposes for one target.

    ``kind`` says what (``stop-site``, ``rotate-secret``...), ``target`` is an
    Azure resource id or a secret name, ``reason`` says why, for a person.
    ``params`` carries what apply needs (never a secret value).
    ``verdict`` is set when planning already decided the outcome: ``skipped``
    (a denied or excluded target) or ``failed`` (a malformed tag); such an
    action is reported, never applied. ``after`` names the keys of actions
    that must succeed first (a plan restored before its apps start).
    """

    kind: str
    target: str
    reason: str
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    verdict: Literal["skipped", "failed"] | None = None
    error: str | None = None
    after: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.target}"

    @classmethod
    def skip(cls, target: str, reason: str, kind: str = "skip") -> "Action":
        return cls(kind=kind, target=target, reason=reason, verdict="skipped")

    @classmethod
    def fail(cls, target: str, error: str, kind: str = "invalid") -> "Action":
        return cls(kind=kind, target=target, reason=error, verdict="failed", error=error)


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: Status
    error: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        a = self.action
        row: dict[str, Any] = {
            "kind": a.kind,
            "target": a.target,
            "reason": a.reason,
            "status": self.status,
            "error": self.error,
        }
        if self.detail:
            row["detail"] = self.detail
        return row


@dataclass
class RunReport:
    job: str
    run_id: str
    trigger: Literal["timer", "http", "cli"]
    dry_run: bool
    now: datetime
    started_at: datetime
    finished_at: datetime | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for o in self.outcomes:
            counts[o.status] += 1
        return counts

    @property
    def status(self) -> Literal["succeeded", "failed"]:
        if self.errors or any(o.status == "failed" for o in self.outcomes):
            return "failed"
        return "succeeded"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "job": self.job,
            "run_id": self.run_id,
            "trigger": self.trigger,
            "dry_run": self.dry_run,
            "now": _iso(self.now),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "status": self.status,
            "summary": self.summary,
            "errors": list(self.errors),
            "actions": [o.to_json() for o in self.outcomes],
            "details": self.details,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def as_plain(obj: Any) -> Any:
    """dataclasses -> dicts, for job details that are dataclasses."""
    return asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj
