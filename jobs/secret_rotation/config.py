"""Settings of the secret-rotation job (app settings OPS_SECRET_ROTATION__*).

Validated once when the app's settings load; each message names what is wrong
so the app can report ``OPS_SECRET_ROTATION__<FIELD>: <message>``. The vault
itself is ``OPS_KEYVAULT_URL``. Lists are written ``a,b,c``. Never holds a
secret: every credential the job handles lives in Key Vault.
"""
from __future__ import annotations

import string
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobs.config_types import CommaList




URL_SAFE = string.ascii_letters + string.digits + "-_"
_MIN_ALPHABET = 16  # fewer distinct characters make weak values even at length 48


class SecretRotationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # When a secret is due (its own rotation-period-days tag wins over the default).
    default_period_days: int = Field(default=90, ge=1, le=3650)
    near_expiry_days: int = Field(default=14, ge=0, le=365)  # due when it expires sooner
    # How long the previous version stays enabled after a promotion (not for a
    # single-role PostgreSQL password, whose previous value no longer works).
    grace_days: float = Field(default=7, ge=0, le=90)
    max_failed_attempts: int = Field(default=3, ge=1, le=100)  # then stop retrying, until someone acts

    # The test step: bounded retries for propagation delay.
    test_attempts: int = Field(default=5, ge=1, le=20)
    test_delay_seconds: float = Field(default=1.0, ge=0, le=60)  # doubles after each attempt ...
    test_max_delay_seconds: float = Field(default=15.0, ge=0, le=300)  # ... up to this
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # Values of kind generated (and new PostgreSQL passwords).
    generated_length: int = Field(default=48, ge=16, le=1024)
    generated_alphabet: str = URL_SAFE

    # Where the test step authenticates.
    storage_blob_endpoint: str = "https://{account}.blob.core.windows.net"
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca",
                              "verify-full"] = "require"
    postgres_database: str = "postgres"
    redis_tls: bool = True  # authenticate on the cache's sslPort (6380) rather than its port

    # Consumers (App Service apps named in a secret's rotation-consumers tag).
    consumer_action: Literal["off", "refresh", "restart"] = "off"
    consumers_allow_production: bool = False
    production_tag_values: CommaList = ["prod", "production", "prd"]

    @field_validator("generated_alphabet")
    @classmethod
    def _alphabet(cls, value: str) -> str:
        if any(c not in string.printable or c in string.whitespace for c in value):
            raise ValueError("must hold printable ASCII characters and no whitespace")
        distinct = "".join(dict.fromkeys(value))
        if len(distinct) < _MIN_ALPHABET:
            raise ValueError(f"needs at least {_MIN_ALPHABET} distinct characters, got {len(distinct)}")
        return distinct

    @field_validator("storage_blob_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if "{account}" not in value:
            raise ValueError("must contain {account}, e.g. https://{account}.blob.core.windows.net")
        try:
            url = urlsplit(value.replace("{account}", "account"))
        except ValueError as exc:
            raise ValueError(f"is not a URL: {exc}") from None
        if url.scheme != "https" or not url.hostname:
            raise ValueError(f"must be an https:// URL template, got host {url.hostname}")
        return value

    @field_validator("test_max_delay_seconds")
    @classmethod
    def _max_delay(cls, value: float, info) -> float:
        first = info.data.get("test_delay_seconds", 0)
        if value < first:
            raise ValueError(f"must be at least OPS_SECRET_ROTATION__TEST_DELAY_SECONDS ({first})")
        return value

    @field_validator("production_tag_values")
    @classmethod
    def _lowercase(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]

    def blob_endpoint(self, account: str) -> str:
        return self.storage_blob_endpoint.replace("{account}", account)
