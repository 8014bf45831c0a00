"""The sandbox's HTTPS server: routing, bearer auth, Key Vault's 401 challenge,
`api-version`, paging, long-running operations, ARM error bodies, injected
faults, a request log and the `/_sandbox/` control endpoints.

Handlers live in `sandbox/apis/*`, one module per Azure service, and register
with `@route`. A handler gets a `Request` and the `World` and returns a
`Response` (or a dict for 200 JSON), or raises `ApiError`.

A development tool: never deployed, listens on 127.0.0.1 only.
"""
from __future__ import annotations

import json
import logging
import random
import re
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from sandbox.world import World

log = logging.getLogger(__name__)

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PRINCIPAL_ID = "0b5e55ed-0000-4000-8000-5a4db0c50001"  # the object id a 403 names (the job's identity)


# -- request / response ------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    raw_body: bytes
    base_url: str  # https://127.0.0.1:PORT
    params: dict[str, str] = field(default_factory=dict)  # from the route template
    page_size: int = 100  # items per page of a list: the sandbox's, for paged()

    def json(self) -> Any:
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            raise ApiError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.") from None

    def url(self, path: str, **query: str) -> str:
        return f"{self.base_url}{path}" + (f"?{urlencode(query)}" if query else "")


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes as-is
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An error answered in the service's own error shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 shape: str = "arm"):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.shape = shape

    def response(self) -> Response:
        if self.shape == "logs":
            body = {"error": {"code": self.code, "message": self.message}}
        else:  # ARM, Key Vault and Monitor share {"error": {"code", "message"}}
            body = {"error": {"code": self.code, "message": self.message}}
        return Response(self.status, body, dict(self.headers))


def not_found(resource_id: str, rtype: str = "resource") -> ApiError:
    # ARM's shape, e.g. azure-rest-api-specs common-types "ErrorResponse".
    return ApiError(404, "ResourceNotFound",
                    f"The Resource '{rtype}' under resource group was not found. ({resource_id})")


# -- routing -----------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    template: str
    operation: str
    handler: Callable[..., Any]


ROUTES: list[Route] = []


def route(method: str, template: str, operation: str) -> Callable:
    """Register a handler. `{name}` in the template matches one path segment;
    matching is case-insensitive, as ARM's is."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
    pattern = re.compile(f"^{regex}/?$", re.IGNORECASE)

    def register(fn: Callable) -> Callable:
        ROUTES.append(Route(method.upper(), pattern, template, operation, fn))
        return fn
    return register


def paged(req: Request, items: list[Any], page_size: int | None = None) -> dict[str, Any]:
    """One page of a list with an absolute `nextLink`, as ARM and Key Vault page."""
    page_size = page_size or req.page_size
    try:
        start = int(req.query.get("$skiptoken", "0"))
    except ValueError:
        raise ApiError(400, "InvalidSkipToken", "The skip token is invalid.") from None
    page = items[start:start + page_size]
    body: dict[str, Any] = {"value": page}
    if start + page_size < len(items):
        query = {k: v for k, v in req.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = str(start + page_size)
        body["nextLink"] = req.url(req.path, **query)
    return body


# -- faults --------------------------------------------------------------------
@dataclass
class FaultRule:
    operation: str = "*"  # glob over operation names, e.g. "Microsoft.Web/*"
    latency_ms: int = 0
    spike_rate: float = 0.0
    spike_ms: int = 2000
    rate_429: float = 0.0
    retry_after: int = 1
    rate_500: float = 0.0
    rate_drop: float = 0.0


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self.configure({})

    def configure(self, spec: dict[str, Any]) -> dict[str, Any]:
        rules = [FaultRule(**r) for r in spec.get("rules", [])]
        link_base = spec.get("link_base")
        if link_base is not None and not re.fullmatch(r"https?://[^/?#]+", str(link_base)):
            raise TypeError("link_base must be scheme://host[:port], e.g. https://attacker.example")
        with self._lock:
            self.seed = int(spec.get("seed", 0))
            self.rules = rules
            self._rng = random.Random(self.seed)
            # Absolute URLs in answers (nextLink, Azure-AsyncOperation, Location) start with
            # this instead of the request's own host: a service that links off-host.
            self.link_base = link_base
        return self.describe()

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [r.__dict__ for r in self.rules],
                "link_base": self.link_base}

    def draw(self, operation: str) -> tuple[float, str | None, FaultRule | None]:
        """(delay seconds, fault kind or None, rule) for one request."""
        with self._lock:
            for rule in self.rules:
                if fnmatchcase(operation, rule.operation):
                    delay = rule.latency_ms / 1000
                    if rule.spike_rate and self._rng.random() < rule.spike_rate:
                        delay += rule.spike_ms / 1000
                    roll = self._rng.random()
                    for kind, rate in (("429", rule.rate_429), ("500", rule.rate_500),
                                       ("drop", rule.rate_drop)):
                        if roll < rate:
                            return delay, kind, rule
                        roll -= rate
                    return delay, None, rule
        return 0.0, None, None


def throttled(operation: str, retry_after: int) -> ApiError:
    headers = {"Retry-After": str(retry_after),
               "x-ms-ratelimit-remaining-subscription-reads": "0"}
    if operation.startswith("Microsoft.CostManagement"):
        # Cost Management names its own retry headers (docs: "Cost Management API throttling").
        for bucket in ("qpu", "entity", "tenant"):
            headers[f"x-ms-ratelimit-microsoft.costmanagement-{bucket}-retry-after"] = str(retry_after)
    return ApiError(429, "TooManyRequests",
                    f"The request was throttled. Retry after {retry_after} seconds.", headers)


# -- the server ------------------------------------------------------------------
class Sandbox:
    """The HTTPS server and its world. `start()` serves in a background thread."""

    def __init__(self, world: World, *, token: str, cert_chain: tuple[str, str],
                 port: int = 0, page_size: int = 100, lro_delay_ms: int = 100):
        self.world, self.token = world, token
        self.page_size, self.lro_delay_ms = page_size, lro_delay_ms
        self.faults = Faults()
        self.requests: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self.httpd = _Server(("127.0.0.1", port), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*cert_chain)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> "Sandbox":
        import sandbox.apis  # noqa: F401 - registers the routes
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self.requests.append(entry)

    def request_log(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self.requests)

    def clear_log(self) -> None:
        with self._log_lock:
            self.requests.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):  # TLS resets by clients are routine
        log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    sandbox: Sandbox
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small answers would otherwise wait ~40 ms for delayed ACKs
    server_version = "AzureSandbox/1.0"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.client_address[0], *args)

    def do_GET(self): self._serve()
    def do_PUT(self): self._serve()
    def do_POST(self): self._serve()
    def do_PATCH(self): self._serve()
    def do_DELETE(self): self._serve()
    def do_HEAD(self): self._serve()

    def _serve(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        host = headers.get("host", f"127.0.0.1:{self.sandbox.port}")
        req = Request(self.command, split.path, query, headers, raw,
                      self.sandbox.faults.link_base or f"https://{host}",
                      page_size=self.sandbox.page_size)
        operation = "unrouted"
        try:
            if split.path.startswith("/_sandbox/"):
                operation = "sandbox/control"
                response = self._control(req)
            else:
                # Azure authenticates before it routes: an unknown path without a token is a 401.
                # The storage data plane (/_storage/) checks Shared Key signatures itself
                # (sandbox/apis/storage.py) and versions by x-ms-version, not api-version.
                if not split.path.startswith("/_storage/"):
                    self._authenticate(req, "keyvault" if _is_keyvault(req.path) else "arm")
                    _require_api_version(req)
                matched, operation = self._match(req)
                response = self._dispatch(req, matched, operation)
        except _Drop:
            self.close_connection = True
            self._log(req, operation, 0, started)
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except ApiError as err:
            response = err.response()
        except Exception:  # noqa: BLE001 - a sandbox bug must show as a 500, like a real service
            log.exception("sandbox handler failed for %s %s", req.method, req.path)
            response = ApiError(500, "InternalServerError", "The sandbox failed to handle the request.").response()
        # Logged before answering, so a client that got its answer finds it in the log.
        self._log(req, operation, response.status, started)
        self._send(response)

    def _match(self, req: Request) -> tuple[Route | None, str]:
        allowed = False
        for r in ROUTES:
            m = r.pattern.match(req.path)
            if m:
                allowed = True
                if r.method == req.method or (req.method == "HEAD" and r.method == "GET"):
                    req.params = m.groupdict()
                    return r, r.operation
        if allowed:
            raise ApiError(405, "MethodNotAllowed", f"The requested method {req.method} is not allowed.")
        raise ApiError(404, "NoRegisteredProviderFound" if "/providers/" in req.path else "NotFound",
                       f"No registered resource provider found for path '{req.path}'.")

    def _dispatch(self, req: Request, r: Route, operation: str) -> Response:
        sandbox = self.sandbox
        _authorize(sandbox.world, req, operation)
        delay, fault, rule = sandbox.faults.draw(operation)
        if delay:
            time.sleep(delay)
        if fault == "429":
            raise throttled(operation, rule.retry_after)
        if fault == "500":
            raise ApiError(500, "InternalServerError", "Encountered internal server error. (injected)")
        if fault == "drop":
            raise _Drop()
        result = r.handler(req, sandbox.world, **req.params)
        if isinstance(result, Response):
            return result
        return Response(200, result)

    def _authenticate(self, req: Request, kind: str) -> None:
        auth = req.headers.get("authorization", "")
        if kind == "keyvault" and not auth:
            # Key Vault's challenge: clients send one unauthenticated request first.
            raise ApiError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.",
                           {"WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/{TENANT_ID}", '
                                                f'resource="https://vault.azure.net"'})
        if not auth.startswith("Bearer "):
            raise ApiError(401, "AuthenticationFailed",
                           "Authentication failed. The 'Authorization' header is missing.",
                           {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                                                'error="invalid_token", error_description="The authentication failed '
                                                'because of missing \'Authorization\' header."'})
        if auth[len("Bearer "):] != self.sandbox.token:
            raise ApiError(401, "InvalidAuthenticationToken", "The access token is invalid.",
                           {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="The access token is invalid."'})

    def _control(self, req: Request) -> Response:
        sandbox, name = self.sandbox, req.path[len("/_sandbox/"):].strip("/")
        if (name, req.method) == ("requests", "GET"):
            return Response(200, {"requests": sandbox.request_log()})
        if (name, req.method) == ("requests", "DELETE"):
            sandbox.clear_log()
            return Response(204)
        if (name, req.method) == ("state", "GET"):
            return Response(200, sandbox.world.snapshot())
        if (name, req.method) == ("faults", "POST"):
            try:
                return Response(200, sandbox.faults.configure(req.json() or {}))
            except TypeError as exc:
                raise ApiError(400, "BadRequest", f"bad fault rule: {exc}") from None
        if (name, req.method) == ("faults", "GET"):
            return Response(200, sandbox.faults.describe())
        if (name, req.method) == ("reset", "POST"):
            sandbox.world.reset()
            sandbox.faults.configure({})
            sandbox.clear_log()
            return Response(200, {"reset": True})
        raise ApiError(404, "NotFound", f"no control endpoint {req.method} /_sandbox/{name}")

    def _send(self, response: Response) -> None:
        body = response.body
        headers = dict(response.headers)
        if body is None:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            payload = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        self.send_response(response.status)
        headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _log(self, req: Request, operation: str, status: int, started: float) -> None:
        self.sandbox.record({"method": req.method, "path": req.path, "operation": operation,
                             "status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                             "at": time.time()})


def _authorize(world, req: Request, operation: str) -> None:
    """Resource Manager's RBAC, as far as the world's `denied` member says: each entry
    {"scope": resource id (any case), "actions": [...] (absent: all)} is a permission the
    identity lacks there; a request at or under the scope answers 403 AuthorizationFailed
    before the provider sees it (wording as ARM's, e.g. Azure/ARO-RP#66)."""
    if not req.path.lower().startswith("/subscriptions/"):
        return
    with world.lock:
        denied = list(world.sections.get("denied") or ())
    action = re.sub(r"/list(ByResourceGroup)?$", "/read", operation)  # lists need the read action
    path = req.path.rstrip("/").lower()
    for rule in denied:
        scope = rule["scope"].rstrip("/").lower()
        if (path == scope or path.startswith(scope + "/")) and action in rule.get("actions", [action]):
            raise ApiError(403, "AuthorizationFailed",
                           f"The client '{PRINCIPAL_ID}' with object id '{PRINCIPAL_ID}' does not have "
                           f"authorization to perform action '{action}' over scope '{req.path}' or the "
                           "scope is invalid. If access was recently granted, please refresh your credentials.")


def _require_api_version(req: Request) -> None:
    """Every ARM, Key Vault and metrics call carries api-version; the Logs API (/v1) does not."""
    if req.path.startswith("/v1/") or req.query.get("api-version"):
        return
    if _is_keyvault(req.path):
        raise ApiError(400, "BadParameter", "The request URI contains an invalid api-version.")
    raise ApiError(400, "MissingApiVersionParameter",
                   "The api-version query parameter (?api-version=) is required for all requests.")


def _is_keyvault(path: str) -> bool:
    return path.lower().startswith(("/secrets", "/deletedsecrets"))


class _Drop(Exception):
    """Close the connection without answering (an injected dropped connection)."""
