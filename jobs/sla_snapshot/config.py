"""Settings of the sla-snapshot job (app settings OPS_SLA_SNAPSHOT__*)."""
from __future__ import annotations

from pydantic import BaseModel


class SlaSnapshotSettings(BaseModel):
    pass
