"""Real PostgreSQL and Redis servers the sandbox applies credential changes to,
so that a rotation job can test a new password or key for real.

`start_all(state_dir, world)` starts both (on 127.0.0.1 only, free ports, no
persistence worth keeping) and wires them to the world through `world.hooks`:
- "postgres:password" fn(server, login, password): ALTER ROLE on the real PostgreSQL
  (used by sandbox/apis/postgres.py when a flexible server's admin password changes);
- "redis:keys" fn(world): the real Redis accepts exactly the keys of every cache
  (used by sandbox/apis/redis.py after a key is regenerated);
- "reset:databases" fn(world): on every world reset, points the world's
  resources at the real servers and re-applies the seeded credentials.

What the world's resources then say:
- Redis caches: `properties.hostName` 127.0.0.1, `port` the plain port,
  `sslPort` the TLS port (TLS with the sandbox CA; the plain port when TLS
  is unavailable), `enableNonSslPort` true. Every cache is served by the same
  Redis, whose `default` user has every cache's primary and secondary key as
  passwords (`ACL SETUSER default ... >primary >secondary`), so regenerating a
  key revokes that key only.
- PostgreSQL flexible servers: `properties.fullyQualifiedDomainName` 127.0.0.1,
  the port in the tag `sandbox-port`. Every server is served by the same
  PostgreSQL: its `administratorLogin` is a role (LOGIN CREATEROLE CREATEDB,
  not superuser, like Azure's admin) with `_sandbox.administratorLoginPassword`,
  and `_sandbox.roles` [{"name", "password"}] are plain LOGIN roles. Database
  `postgres`; TLS (sandbox CA) when the certificates exist; scram-sha-256.

Exported settings (`env()`): SANDBOX_POSTGRES_HOST, SANDBOX_POSTGRES_PORT,
SANDBOX_POSTGRES_SSLMODE, SANDBOX_REDIS_HOST, SANDBOX_REDIS_PORT,
SANDBOX_REDIS_SSL_PORT. No credentials are exported or written to disk
(PostgreSQL's bootstrap password file lives only for initdb).

Missing binaries skip that server with a warning (`UNAVAILABLE` says why)
unless SANDBOX_REQUIRE_DATABASES=1. PostgreSQL refuses to run as root: as
root, the server runs as the `postgres` OS user; when that user cannot reach
the state folder (e.g. pytest's 0700 temp root), the cluster lives in a
private temporary folder, linked from `<state>/pg`, removed on stop.
Binaries: PostgreSQL from SANDBOX_PG_BINDIR, PATH or /usr/lib/postgresql/*/bin;
redis-server from SANDBOX_REDIS_SERVER or PATH.
"""
from __future__ import annotations

import glob
import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox.world import World

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PG_SUPERUSER = "sandbox_superuser"
REDIS_ADMIN = "sandbox-admin"
PORT_TAG = "sandbox-port"
SERVER_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"
CACHE_TYPE = "Microsoft.Cache/Redis"
START_TIMEOUT = 20.0

UNAVAILABLE: dict[str, str] = {}  # server kind -> why it was skipped


class DatabaseUnavailable(RuntimeError):
    """A server cannot run here (binaries missing); the message says what to install."""


def _free_port() -> int:
    from sandbox.stack import free_port
    return free_port()


def _stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- PostgreSQL -------------------------------------------------------------------------------
def find_pg_bindir() -> Path:
    candidates = []
    if os.environ.get("SANDBOX_PG_BINDIR"):
        candidates.append(Path(os.environ["SANDBOX_PG_BINDIR"]))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0, reverse=True)
    candidates += [Path(p) for p in versions]
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise DatabaseUnavailable("PostgreSQL server binaries (initdb, postgres) not found: install the Debian "
                              "package postgresql-15 (or set SANDBOX_PG_BINDIR)")


class Postgres:
    kind = "postgres"

    def __init__(self, state: Path):
        self.state = state
        self.bindir = find_pg_bindir()
        self.port = 0
        self.ssl = False
        self.proc: subprocess.Popen | None = None
        self._password = secrets.token_urlsafe(24)  # the bootstrap superuser's, in memory only
        self._private_dir: Path | None = None
        self._managed_roles: set[str] = set()
        self._log = None
        self._user: dict[str, Any] = {}  # Popen user/group when running as root

    # -- start / stop ----------------------------------------------------------------------
    def start(self) -> "Postgres":
        base = self._base_dir()
        data = base / "data"
        pwfile = base / "bootstrap.pw"
        pwfile.write_text(self._password + "\n")
        self._own(pwfile, 0o600)
        self._log = open(self.state / "postgres.log", "ab")  # inherited by the server, wherever it runs
        try:
            subprocess.run([str(self.bindir / "initdb"), "-D", str(data), "-U", PG_SUPERUSER,
                            f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                            "--locale=C", "--no-sync"],
                           stdout=self._log, stderr=self._log, check=True, cwd=str(base),
                           timeout=60, **self._user)
        except subprocess.CalledProcessError:
            raise RuntimeError(f"initdb failed; see {self.state / 'postgres.log'}") from None
        finally:
            pwfile.unlink(missing_ok=True)
        (data / "pg_hba.conf").write_text("local all all scram-sha-256\n"
                                          f"host all all {HOST}/32 scram-sha-256\n")
        self._own(data / "pg_hba.conf", 0o600)
        options = {"listen_addresses": HOST, "port": str(self._pick_port()),
                   "unix_socket_directories": str(data) if len(str(data)) < 80 else "",
                   "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                   "max_connections": "40", "shared_buffers": "16MB",
                   "password_encryption": "scram-sha-256", "log_min_messages": "warning"}
        if (self.state / "server.pem").exists() and (self.state / "server.key").exists():
            shutil.copyfile(self.state / "server.pem", data / "server.crt")
            shutil.copyfile(self.state / "server.key", data / "server.key")
            self._own(data / "server.crt", 0o600)
            self._own(data / "server.key", 0o600)
            options.update({"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"})
            self.ssl = True
        args = [str(self.bindir / "postgres"), "-D", str(data)]
        for name, value in options.items():
            args += ["-c", f"{name}={value}"]
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=self._log, cwd=str(base),
                                     start_new_session=True, **self._user)
        self._wait_ready()
        return self

    def _pick_port(self) -> int:
        self.port = _free_port()
        return self.port

    def _base_dir(self) -> Path:
        base = self.state / "pg"
        if base.is_symlink():  # a private folder of an earlier run
            base.unlink()
        elif base.exists():  # an earlier run's cluster: nothing in it is worth keeping
            shutil.rmtree(base)
        if os.geteuid() != 0:
            base.mkdir(parents=True, exist_ok=True)
            return base
        import pwd
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise DatabaseUnavailable("running as root needs the `postgres` OS user (PostgreSQL refuses "
                                      "to run as root); install postgresql-15, which creates it") from None
        self._user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        base.mkdir(parents=True, exist_ok=True)
        os.chown(base, account.pw_uid, account.pw_gid)
        os.chmod(base, 0o700)
        if subprocess.run([shutil.which("test") or "/usr/bin/test", "-w", str(base)], **self._user).returncode:
            # The postgres user cannot reach the state folder: use a private folder of its own.
            base.rmdir()
            self._private_dir = Path(tempfile.mkdtemp(prefix="sandbox-pg-"))
            os.chown(self._private_dir, account.pw_uid, account.pw_gid)
            base.symlink_to(self._private_dir, target_is_directory=True)
            return self._private_dir
        return base

    def _own(self, path: Path, mode: int) -> None:
        if self._user:
            os.chown(path, self._user["user"], self._user["group"])
        os.chmod(path, mode)

    def _wait_ready(self) -> None:
        import psycopg
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}; see {self.state / 'postgres.log'}")
            try:
                with self.admin():
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not accept connections on {HOST}:{self.port} "
                                       f"within {START_TIMEOUT}s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        _stop_process(self.proc, signal.SIGINT)  # SIGINT: fast shutdown (SIGTERM waits for clients)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        if self._private_dir:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            link = self.state / "pg"
            if link.is_symlink():
                link.unlink()
            self._private_dir = None

    def env(self) -> dict[str, str]:
        return {"SANDBOX_POSTGRES_HOST": HOST, "SANDBOX_POSTGRES_PORT": str(self.port),
                "SANDBOX_POSTGRES_SSLMODE": "require" if self.ssl else "disable"}

    # -- credentials -----------------------------------------------------------------------
    def admin(self):
        """A superuser connection (autocommit), for the sandbox and its tests only."""
        import psycopg
        return psycopg.connect(host=HOST, port=self.port, user=PG_SUPERUSER, password=self._password,
                               dbname="postgres", connect_timeout=3, autocommit=True)

    def set_password(self, login: str, password: str, *, admin_role: bool, conn=None) -> None:
        """Create the role or change its password (a flexible server's admin role
        gets LOGIN CREATEROLE CREATEDB, as Azure's admin has; app roles LOGIN)."""
        from psycopg import sql
        if not login:
            return
        if conn is None:
            with self.admin() as conn:
                return self.set_password(login, password, admin_role=admin_role, conn=conn)
        grants = sql.SQL("LOGIN CREATEROLE CREATEDB" if admin_role else "LOGIN")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
        verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
        conn.execute(sql.SQL("{} {} WITH {} PASSWORD {}").format(
            verb, sql.Identifier(login), grants, sql.Literal(password)))
        self._managed_roles.add(login)

    def apply_world(self, world: World) -> None:
        """Roles and passwords as the world seeds them; roles of an earlier world are dropped."""
        from psycopg import errors, sql
        wanted: dict[str, tuple[str, bool]] = {}
        with world.lock:
            for server in world.of_type(SERVER_TYPE):
                private = server.get("_sandbox") or {}
                login = (server.get("properties") or {}).get("administratorLogin")
                if login and private.get("administratorLoginPassword"):
                    if login in wanted:
                        log.warning("flexible servers share one PostgreSQL: administratorLogin %r is used "
                                    "twice; the last one's password wins", login)
                    wanted[login] = (private["administratorLoginPassword"], True)
                for role in private.get("roles") or []:
                    wanted[role["name"]] = (role.get("password", ""), False)
        with self.admin() as conn:
            for login, (password, admin_role) in wanted.items():
                self.set_password(login, password, admin_role=admin_role, conn=conn)
            for role in self._managed_roles - set(wanted):
                try:
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
                except errors.DependentObjectsStillReferenced:
                    conn.execute(sql.SQL("ALTER ROLE {} WITH NOLOGIN PASSWORD NULL").format(sql.Identifier(role)))
        self._managed_roles &= set(wanted)

    def point_world(self, world: World) -> None:
        with world.lock:
            for server in world.of_type(SERVER_TYPE):
                server.setdefault("properties", {})["fullyQualifiedDomainName"] = HOST
                server["tags"] = dict(server.get("tags") or {}, **{PORT_TAG: str(self.port)})


# -- Redis ------------------------------------------------------------------------------------
def find_redis_server() -> Path:
    exe = os.environ.get("SANDBOX_REDIS_SERVER") or shutil.which("redis-server")
    if not exe or not Path(exe).is_file():
        raise DatabaseUnavailable("redis-server not found: install the Debian package redis-server "
                                  "(or set SANDBOX_REDIS_SERVER)")
    return Path(exe)


class Redis:
    kind = "redis"

    def __init__(self, state: Path):
        self.state = state
        self.exe = find_redis_server()
        self.port = 0
        self.tls_port = 0
        self.proc: subprocess.Popen | None = None
        self._password = secrets.token_urlsafe(24)  # the sandbox's own admin user, in memory only
        self._log = None

    def start(self) -> "Redis":
        folder = self.state / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        self._log = open(folder / "redis.log", "ab")
        for attempt_tls in (True, False):
            self.port = _free_port()
            config = [f"port {self.port}", f"bind {HOST}", "protected-mode yes", 'save ""',
                      "appendonly no", f'dir "{folder}"', "daemonize no", "loglevel warning",
                      "user default off", f"user {REDIS_ADMIN} on >{self._password} ~* &* +@all"]
            certs = [self.state / n for n in ("server.pem", "server.key", "ca.pem")]
            self.tls_port = _free_port() if attempt_tls and all(p.exists() for p in certs) else 0
            if self.tls_port:
                config += [f"tls-port {self.tls_port}", f'tls-cert-file "{certs[0]}"',
                           f'tls-key-file "{certs[1]}"', f'tls-ca-cert-file "{certs[2]}"',
                           "tls-auth-clients no"]
            # Config on stdin: the admin password never touches the disk or the process list.
            self.proc = subprocess.Popen([str(self.exe), "-"], stdin=subprocess.PIPE, stdout=self._log,
                                         stderr=self._log, cwd=str(folder), start_new_session=True)
            self.proc.stdin.write(("\n".join(config) + "\n").encode())
            self.proc.stdin.close()
            try:
                self._wait_ready()
                return self
            except RuntimeError:
                _stop_process(self.proc)
                if not self.tls_port:
                    raise
                log.warning("redis-server did not start with TLS; starting it without (see %s)",
                            folder / "redis.log")
        return self

    def _wait_ready(self) -> None:
        import redis
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                with self.admin() as client:
                    client.ping()
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer on {HOST}:{self.port}") from None
                time.sleep(0.05)

    def admin(self):
        import redis
        return redis.Redis(host=HOST, port=self.port, username=REDIS_ADMIN, password=self._password,
                           socket_timeout=3, socket_connect_timeout=3)

    def stop(self) -> None:
        _stop_process(self.proc)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def env(self) -> dict[str, str]:
        return {"SANDBOX_REDIS_HOST": HOST, "SANDBOX_REDIS_PORT": str(self.port),
                "SANDBOX_REDIS_SSL_PORT": str(self.tls_port or self.port)}

    def apply_world(self, world: World) -> None:
        """The `default` user accepts exactly the keys of every cache in the world."""
        from sandbox.apis.redis import all_keys
        keys = sorted(set(all_keys(world)))
        with self.admin() as client:
            if keys:
                client.execute_command("ACL", "SETUSER", "default", "reset", "on",
                                       *(f">{k}" for k in keys), "~*", "&*", "+@all")
            else:
                client.execute_command("ACL", "SETUSER", "default", "reset")

    def point_world(self, world: World) -> None:
        with world.lock:
            for cache in world.of_type(CACHE_TYPE):
                props = cache.setdefault("properties", {})
                props.update({"hostName": HOST, "port": self.port,
                              "sslPort": self.tls_port or self.port, "enableNonSslPort": True})


# -- wiring -----------------------------------------------------------------------------------
def start_all(state_dir: str | Path, world: World) -> list[Any]:
    """Start PostgreSQL and Redis, point the world at them and apply its credentials."""
    state = Path(state_dir)
    required = os.environ.get("SANDBOX_REQUIRE_DATABASES", "") in ("1", "true", "yes")
    started: list[Any] = []
    UNAVAILABLE.clear()
    try:
        for kind in (Postgres, Redis):
            server = None
            try:
                server = kind(state)
                server.start()
            except BaseException as exc:
                if server is not None:
                    server.stop()
                if isinstance(exc, DatabaseUnavailable) and not required:
                    UNAVAILABLE[kind.kind] = str(exc)
                    log.warning("sandbox: %s", exc)
                    continue
                raise
            started.append(server)
        _wire(world, started)
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return started


def _wire(world: World, servers: list[Any]) -> None:
    postgres = next((s for s in servers if s.kind == "postgres"), None)
    redis_server = next((s for s in servers if s.kind == "redis"), None)

    def reset(w: World) -> None:
        for server in servers:
            server.point_world(w)
            server.apply_world(w)

    if postgres:
        world.hooks["postgres:password"] = (
            lambda server, login, password: postgres.set_password(login, password, admin_role=True))
    if redis_server:
        world.hooks["redis:keys"] = redis_server.apply_world
    world.hooks["reset:databases"] = reset
    reset(world)  # the world was built before the servers: point it at them now
