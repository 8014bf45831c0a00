"""Settings of the secret-rotation job (app settings OPS_SECRET_ROTATION__*)."""
from __future__ import annotations

from pydantic import BaseModel


class SecretRotationSettings(BaseModel):
    pass
