"""Settings of the dev-hours job (app settings OPS_DEV_HOURS__*)."""
from __future__ import annotations

from pydantic import BaseModel


class DevHoursSettings(BaseModel):
    pass
