"""Settings of the budget-check job (app settings OPS_BUDGET_CHECK__*)."""
from __future__ import annotations

from pydantic import BaseModel


class BudgetCheckSettings(BaseModel):
    pass
