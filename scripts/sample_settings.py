"""Writes local.settings.sample.json: every app setting, with safe local values
(timers dry, the sandbox's endpoints, Azurite) where the default would reach Azure.

    python -m scripts.sample_settings          # rewrite the file
    python -m scripts.sample_settings --check  # exit 1 if it is out of date (tests)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, SecretStr

from jobs.settings import Settings, env_name

PATH = Path(__file__).resolve().parent.parent / "local.settings.sample.json"
SANDBOX = "https://127.0.0.1:8443"

HOST = {  # read by the Functions host itself
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "AzureWebJobsFeatureFlags": "EnableWorkerIndexing",
}
LOCAL = {  # `make serve` runs the sandbox on 8443 and Azurite on 10000-10002
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "OPS_TIMER_DRY_RUN": "true",
    "OPS_CREDENTIAL": "sandbox",
    "OPS_SANDBOX_TOKEN": "copy OPS_SANDBOX_TOKEN from .state/sandbox/sandbox.env",
    "OPS_CA_BUNDLE": ".state/sandbox/ca.pem",
    "OPS_ARM_ENDPOINT": SANDBOX,
    "OPS_METRICS_ENDPOINT": SANDBOX,
    "OPS_LOGS_ENDPOINT": f"{SANDBOX}/v1",
    "OPS_KEYVAULT_URL": SANDBOX,
    "OPS_AUTHORITY_HOST": SANDBOX,
    "OPS_SUBSCRIPTIONS": "00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002",
    "OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT": SANDBOX + "/_storage/{account}",
}


def settings(model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from settings(field.annotation, prefix + (name,))
        else:
            yield env_name(*prefix, name), field.default


def _text(value: Any) -> str:
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def render() -> str:
    values = dict(HOST)
    for name, default in settings():
        values[name] = LOCAL.get(name, _text(default))
    return json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if PATH.read_text() == render() else 1)
    PATH.write_text(render())
