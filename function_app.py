"""The Azure Functions app: composes one timer blueprint per job and the HTTP
API. Nothing else: no I/O and no Azure SDK import happen here (cold start);
each job imports what it uses when it runs."""
import logging

import azure.functions as func

from jobs.budget_check.triggers import bp as budget_check
from jobs.dev_hours.triggers import bp as dev_hours
from jobs.http_api import bp as http_api
from jobs.secret_rotation.triggers import bp as secret_rotation
from jobs.sla_snapshot.triggers import bp as sla_snapshot

logging.getLogger("azure").setLevel(logging.WARNING)  # SDK request logs are noise at INFO

app = func.FunctionApp()
for blueprint in (dev_hours, budget_check, secret_rotation, sla_snapshot, http_api):
    app.register_functions(blueprint)
