"""Manual runs and status over HTTP, as a blueprint.

    GET  /api/jobs                            the jobs, their schedules and last run   (FUNCTION)
    POST /api/jobs/{name}/run                 dry runs only                            (FUNCTION)
    POST /api/privileged/jobs/{name}/run      may apply (dry_run=false) and force      (ADMIN)
    GET  /api/jobs/{name}/runs/latest         the last run report                      (FUNCTION)

A function key reads status and plans; only the master key (ADMIN level) changes
anything. The host reserves routes starting with "admin", hence "privileged".
JSON in and out. Every refusal is a JSON error with a 4xx status (409 when the
job is already running); never a stack trace. Runs are dry unless asked.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import azure.functions as func

from jobs import registry, service
from jobs.requests import (BadRequest, Forbidden, MethodNotAllowed, check_now, parse_body, run_arguments,
                           shown)

log = logging.getLogger(__name__)

bp = func.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)

MAX_MESSAGE = 500  # an error names what is wrong; it does not echo a hostile request back


def _json(status: int, body: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, indent=2), status_code=status,
                             mimetype="application/json")


def _error(status: int, code: str, message: str) -> func.HttpResponse:
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 3] + "..."
    return _json(status, {"error": {"code": code, "message": message}})


def _guarded(handler):
    """Map every known refusal to its status; anything else to a JSON 500 without details."""
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        from jobs.runner import BadOptions
        from jobs.settings import SettingsError
        from jobs.store import AlreadyRunning
        try:
            return handler(req)
        except registry.UnknownJob as exc:
            return _error(404, "UnknownJob", f"unknown job {shown(exc.args[0])}; "
                                             f"jobs are: {', '.join(registry.JOBS)}")
        except BadRequest as exc:
            return _error(exc.status, type(exc).__name__, str(exc))
        except BadOptions as exc:
            return _error(400, "BadRequest", str(exc))
        except AlreadyRunning as exc:
            return _error(409, "AlreadyRunning", str(exc))
        except SettingsError as exc:
            log.error("settings are invalid: %s", exc)
            return _error(500, "InvalidSettings", str(exc))
        except Exception:  # noqa: BLE001 - logged with its trace, answered without it
            log.exception("%s %s failed", req.method, req.url)
            return _error(500, "InternalError", "the request failed; see the function logs")
    wrapper.__name__ = handler.__name__
    return wrapper


def _only(req: func.HttpRequest, method: str) -> None:
    if req.method.upper() != method:
        raise MethodNotAllowed(f"use {method} for this route")


@bp.function_name("http_list_jobs")
@bp.route(route="jobs", methods=["GET"])
@_guarded
def list_jobs(req: func.HttpRequest) -> func.HttpResponse:
    _only(req, "GET")
    return _json(200, {"jobs": service.list_jobs()})


ADMIN_RUN_ROUTE = "privileged/jobs/{name}/run"
PRIVILEGED_OPTIONS = {"force", "force_revoke"}  # secret-rotation's: they rotate off schedule or revoke early


@bp.function_name("http_run_job")
@bp.route(route="jobs/{name}/run", methods=["POST"])
@_guarded
def run_job(req: func.HttpRequest) -> func.HttpResponse:
    return _run(req, admin=False)


@bp.function_name("http_run_job_admin")
@bp.route(route=ADMIN_RUN_ROUTE, methods=["POST"], auth_level=func.AuthLevel.ADMIN)
@_guarded
def run_job_admin(req: func.HttpRequest) -> func.HttpResponse:
    return _run(req, admin=True)


def _run(req: func.HttpRequest, *, admin: bool) -> func.HttpResponse:
    from jobs.runner import check_options
    _only(req, "POST")
    name = req.route_params.get("name", "")
    registry.spec(name)
    args = run_arguments(dict(req.params), parse_body(req.get_body() or b""))
    check_options(name, args["options"])
    if not admin and (not args["dry_run"] or PRIVILEGED_OPTIONS & set(args["options"])):
        raise Forbidden(f"a function key plans only: a real run (dry_run=false), force or force_revoke goes to "
                        f"POST /api/{ADMIN_RUN_ROUTE.format(name=name)} with the master key")
    check_now(args["now"], dry_run=args["dry_run"], clock=datetime.now(timezone.utc))
    return _json(200, service.run(name, trigger="http", **args))


@bp.function_name("http_latest_run")
@bp.route(route="jobs/{name}/runs/latest", methods=["GET"])
@_guarded
def latest_run(req: func.HttpRequest) -> func.HttpResponse:
    _only(req, "GET")
    name = req.route_params.get("name", "")
    report = service.latest(name)
    if report is None:
        return _error(404, "NoRuns", f"{name} has not run yet")
    return _json(200, report)
