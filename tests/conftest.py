"""Test harness: starts the local stand-ins once per session (the HTTPS sandbox,
Azurite, and the real PostgreSQL and Redis servers) and points the app's settings
at them.

Nothing leaves this machine: before any test runs, every endpoint the app would
use is checked to be on loopback, and the session refuses to start otherwise.
"""
from __future__ import annotations

import copy
import os
import uuid
from pathlib import Path

import pytest

from sandbox.stack import DEMO_WORLD, Stack
from sandbox.world import load_world_file


def _refuse_remote(env: dict[str, str]) -> None:
    """The app's own sandbox guard over the raw settings: every endpoint, in every
    connection string, as the SDKs would read it."""
    from jobs.settings import off_loopback
    remote = off_loopback(env)
    if remote:
        pytest.exit("refusing to run: endpoints not on loopback: " + ", ".join(remote), returncode=2)


def pytest_configure(config):
    _refuse_remote(dict(os.environ))


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The sandbox with the demo world, Azurite and the databases, for the session."""
    s = Stack(tmp_path_factory.mktemp("sandbox"), DEMO_WORLD, page_size=5).start()
    env = s.env()
    _refuse_remote(env)
    yield s
    s.stop()


@pytest.fixture
def clean_env(monkeypatch):
    """No app setting from the process environment: each test sets its own."""
    for key in list(os.environ):
        if key.startswith("OPS_") or key == "AzureWebJobsStorage":
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def app_env(stack, clean_env):
    """App settings pointing at the sandbox, a fresh world, no faults, an empty
    request log. Returns the stack; tests may add settings with monkeypatch."""
    from jobs import service
    stack.world.reset(load_world_file(DEMO_WORLD))
    for key, value in stack.env().items():
        clean_env.setenv(key, value)
    # Each test gets its own run records, locks and job state.
    clean_env.setenv("OPS_RUNS_CONTAINER", f"runs-{uuid.uuid4().hex[:12]}")
    stack.sandbox.faults.configure({})
    stack.sandbox.clear_log()
    service.reset()
    from jobs.settings import load_settings
    settings = load_settings()
    from jobs.settings import is_loopback
    assert all(is_loopback(v) for v in settings.endpoints().values() if v)
    yield stack
    service.reset()


@pytest.fixture
def world(app_env):
    """Seed the sandbox with a world of the test's own: world(data) or world(path)."""
    def seed(data):
        if isinstance(data, (str, Path)):
            data = load_world_file(data)
        app_env.world.reset(copy.deepcopy(data))
        app_env.sandbox.clear_log()
        return app_env.world
    return seed


@pytest.fixture
def clients(app_env):
    from jobs.clients import Clients
    from jobs.settings import load_settings
    return Clients(load_settings())
