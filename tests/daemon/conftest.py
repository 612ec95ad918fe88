"""Fixtures of the tests of daemon/http.py: a registry with two test counters, a Health, a served HttpServer."""
import pytest
from prometheus_client import CollectorRegistry, Counter

from daemon.health import Health
from tests.daemon.http_client import serving


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("gumbeld_test_events", "Events seen by the test.", registry=registry).inc(7)
    Counter("gumbeld_test_other", "Another counter.", registry=registry).inc(2)
    return registry


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
async def server(registry, health):
    async with serving(registry, health) as server:
        yield server
