"""Field types shared by the app settings and every job's settings.

Its own module so that job settings (nested in jobs.settings) can use them
without a circular import. Pure: pydantic only.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_settings import NoDecode


def split_commas(value: Any) -> Any:
    """Lists come as ``a,b,c`` in app settings (pydantic would expect JSON)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(split_commas)]
