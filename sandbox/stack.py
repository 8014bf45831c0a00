"""Starts and stops everything the sandbox serves: a throwaway CA and
certificate, the HTTPS server, Azurite (from node_modules) and, when present,
the real PostgreSQL and Redis servers credential changes are applied to.

Used by `python -m sandbox serve` and by the pytest fixtures alike.
"""
from __future__ import annotations

import logging
import secrets
import shlex
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from sandbox.server import Sandbox
from sandbox.world import World

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEMO_WORLD = Path(__file__).resolve().parent / "worlds" / "demo.json"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret: it is in Microsoft's docs).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def make_certificates(state: Path) -> tuple[Path, tuple[str, str]]:
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, chain_file, key_file = state / "ca.pem", state / "server.pem", state / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_pem.write_to_path(str(key_file))
    chain_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return ca_file, (str(chain_file), str(key_file))


class Azurite:
    """Microsoft's Storage emulator, from node_modules (npm ci)."""

    DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}  # UseDevelopmentStorage=true

    def __init__(self, state: Path, fixed_ports: bool = False):
        self.location = state / "azurite"
        self.ports = (dict(self.DEFAULT_PORTS) if fixed_ports
                      else {"blob": free_port(), "queue": free_port(), "table": free_port()})
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Azurite":
        exe = ROOT / "node_modules" / ".bin" / "azurite"
        if not exe.exists():
            raise RuntimeError("Azurite is not installed: run `npm ci` in the project root")
        self.location.mkdir(parents=True, exist_ok=True)
        args = [str(exe), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
                "--location", str(self.location), "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1",
                "--tableHost", "127.0.0.1", "--blobPort", str(self.ports["blob"]),
                "--queuePort", str(self.ports["queue"]), "--tablePort", str(self.ports["table"])]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(self.location / "azurite.log", "ab"),
                                     start_new_session=True)
        for port in self.ports.values():
            wait_for_port(port, 30, self.proc)
        return self

    @property
    def connection_string(self) -> str:
        p = self.ports
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{p['blob']}/{AZURITE_ACCOUNT};"
                f"QueueEndpoint=http://127.0.0.1:{p['queue']}/{AZURITE_ACCOUNT};"
                f"TableEndpoint=http://127.0.0.1:{p['table']}/{AZURITE_ACCOUNT};")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Stack:
    """The sandbox and its companions, started in-process; `env()` gives the app settings."""

    def __init__(self, state: str | Path, world: str | Path | dict[str, Any] | None = None, *,
                 port: int = 0, azurite: bool = True, databases: bool = True,
                 page_size: int = 100, fixed_azurite_ports: bool = False):
        self.state = Path(state).resolve()  # servers started elsewhere (PostgreSQL) need it absolute
        self.world_spec = world if world is not None else DEMO_WORLD
        self.port, self.page_size = port, page_size
        self.with_azurite, self.with_databases = azurite, databases
        self.fixed_azurite_ports = fixed_azurite_ports
        self.azurite: Azurite | None = None
        self.databases: list[Any] = []
        self.sandbox: Sandbox | None = None

    def start(self) -> "Stack":
        self.state.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        world = (World(self.world_spec) if isinstance(self.world_spec, dict)
                 else World.from_file(self.world_spec))
        self.ca_file, chain = make_certificates(self.state)
        if self.with_azurite:
            self.azurite = Azurite(self.state, self.fixed_azurite_ports).start()
        if self.with_databases:
            from sandbox import databases  # real PostgreSQL and Redis for credential tests
            self.databases = databases.start_all(self.state, world)
        token = "sandbox-" + secrets.token_urlsafe(24)
        self.sandbox = Sandbox(world, token=token, cert_chain=chain, port=self.port,
                               page_size=self.page_size).start()
        (self.state / "sandbox.env").write_text(
            "".join(f"{k}={shlex.quote(v)}\n" for k, v in self.env().items()))

    @property
    def world(self) -> World:
        return self.sandbox.world

    def env(self) -> dict[str, str]:
        url = self.sandbox.url
        env = {
            "SANDBOX_URL": url,
            "OPS_ARM_ENDPOINT": url,
            "OPS_METRICS_ENDPOINT": url,
            "OPS_LOGS_ENDPOINT": f"{url}/v1",
            "OPS_KEYVAULT_URL": url,
            "OPS_AUTHORITY_HOST": url,
            "OPS_CA_BUNDLE": str(self.ca_file),
            "OPS_CREDENTIAL": "sandbox",
            "OPS_SANDBOX_TOKEN": self.sandbox.token,
            "OPS_SUBSCRIPTIONS": ",".join(self.world.subscriptions()),
        }
        if self.azurite:
            env["AzureWebJobsStorage"] = self.azurite.connection_string
        for db in self.databases:
            env.update(db.env())
        # secret-rotation tests credentials on the data planes the sandbox serves.
        env["OPS_SECRET_ROTATION__STORAGE_BLOB_ENDPOINT"] = f"{url}/_storage/{{account}}"
        if "SANDBOX_POSTGRES_PORT" in env:
            env["OPS_SECRET_ROTATION__POSTGRES_PORT"] = env["SANDBOX_POSTGRES_PORT"]
            env["OPS_SECRET_ROTATION__POSTGRES_SSLMODE"] = env["SANDBOX_POSTGRES_SSLMODE"]
        if "SANDBOX_REDIS_PORT" in env and env["SANDBOX_REDIS_SSL_PORT"] == env["SANDBOX_REDIS_PORT"]:
            env["OPS_SECRET_ROTATION__REDIS_TLS"] = "false"  # redis-server without TLS
        # App settings the world's estate needs (job targets, scopes...), from its "settings" section.
        env.update({k: str(v) for k, v in self.world.section("settings", {}).items()})
        return env

    def stop(self) -> None:
        if self.sandbox:
            self.sandbox.stop()
        for db in reversed(self.databases):
            db.stop()
        if self.azurite:
            self.azurite.stop()


def read_env_file(path: str | Path) -> dict[str, str]:
    """Parse a sandbox.env written by Stack (shell-quoted KEY=value lines)."""
    env = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env
