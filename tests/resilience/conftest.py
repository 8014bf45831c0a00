"""Fixtures shared by the crash suites."""
import pytest

from tests.resilience.crashing import StorageProxy


@pytest.fixture(scope="module")
def proxy(stack):
    """A loopback proxy in front of Azurite, so a suite sees run-store writes too (one per module)."""
    p = StorageProxy(stack.azurite.ports["blob"])
    yield p
    p.stop()
