"""Fixtures shared by the whole test suite."""
from __future__ import annotations

import os

import pytest

from tests.tools import required_tool


@pytest.fixture(autouse=True)
def training_threads():
    """Torch's threads as ``gumbeld run`` sets them (one core left to the event loop), restored after."""
    import torch

    from daemon.runner import set_training_threads
    before = torch.get_num_threads()
    set_training_threads(None)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus' ``promtool``: checks the exposition format and the alert rules."""
    return required_tool("promtool", "prometheus")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    """The Prometheus server, for tests that scrape gumbeld for real."""
    return required_tool("prometheus", "prometheus")


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """``docker-compose``, which validates deploy/docker-compose.yml."""
    return required_tool("docker-compose", "docker-compose")


@pytest.fixture(scope="session")
def tmux() -> str:
    """tmux: a real terminal for ``gumbeld watch``, typed into and read back."""
    return required_tool("tmux", "tmux")


# -- Kafka ------------------------------------------------------------------------------------
# Not GUMBELD_*: every variable with that prefix is read as a daemon setting.
EXTERNAL_KAFKA_VARIABLE = "TEST_KAFKA_BOOTSTRAP_SERVERS"


def _start_local_kafka():
    from daemon.tools.bench.tansu import TansuUnavailable
    from tests.kafka_broker import KafkaBroker
    try:
        return KafkaBroker.start_local()
    except TansuUnavailable as error:
        pytest.fail(f"no Kafka broker for the tests: {error}; run `scripts/test` to install the test "
                    f"dependencies, or set {EXTERNAL_KAFKA_VARIABLE} to use an external Kafka", pytrace=False)


@pytest.fixture(scope="session")
def kafka_broker():
    """A real Kafka-protocol broker for the session: $TEST_KAFKA_BOOTSTRAP_SERVERS if set, else a local Tansu.

    Required, never skipped. Tests must not rely on pause/resume here; see ``pausable_kafka_broker``.
    """
    from tests.kafka_broker import KafkaBroker
    external = os.environ.get(EXTERNAL_KAFKA_VARIABLE)
    if external:
        yield KafkaBroker.external(external)
        return
    broker = _start_local_kafka()
    yield broker
    broker.stop()


@pytest.fixture
def pausable_kafka_broker():
    """A fresh local Tansu broker of the test's own, which it may pause (SIGSTOP) and resume (SIGCONT)."""
    if os.environ.get(EXTERNAL_KAFKA_VARIABLE):
        pytest.fail(f"this test pauses the broker to simulate an outage, which needs the local Tansu broker; "
                    f"unset {EXTERNAL_KAFKA_VARIABLE} to run it", pytrace=False)
    broker = _start_local_kafka()
    yield broker
    broker.stop()
