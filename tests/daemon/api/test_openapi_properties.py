"""Requests of every shape the OpenAPI document allows, and many it refuses, against a running
``gumbeld run``: none gets a 500, and every answer fits the document (schemathesis)."""
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from daemon.api.openapi import openapi
from daemon.api.settings import ApiSettings
from tests.daemon.process import Daemon

KEYS = 20


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("api"), "--model.n_categories", "6", "--source.synthetic.rate", "5000",
                    "--source.synthetic.generated_keys", json.dumps({"count": KEYS}), "--publish_interval", "0.2")
    try:
        daemon.wait_for(lambda: len({s["key"] for s in daemon.snapshots if "key" in s}) == KEYS, 60)
        yield daemon
    finally:
        code, _ = daemon.stop()
        assert code == 0, "".join(daemon.log)[-4000:]


# the document served with the default settings, which the daemon runs with
schema = schemathesis.openapi.from_dict(openapi(ApiSettings())).exclude(path="/v1/stream")  # never ends: see test_stream


@schema.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_500_or_an_answer_outside_the_document(case, running):
    case.call_and_validate(base_url=f"http://127.0.0.1:{running.port()}")
