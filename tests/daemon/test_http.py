from __future__ import annotations

import asyncio
import gzip
import urllib.error
import urllib.request

import pytest

from daemon.health import Health
from daemon.http import HttpServer
from tests.daemon.http_client import exchange, get, request


async def test_binds_a_free_port_when_given_zero(server):
    assert server.port > 0


async def test_metrics_serves_the_exposition(server):
    response = await get(server.port, "/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.headers["cache-control"] == "no-store"
    assert int(response.headers["content-length"]) == len(response.body)
    assert "gumbeld_test_events_total 7.0" in response.text
    assert "gumbeld_test_other_total 2.0" in response.text


async def test_metrics_speaks_openmetrics_when_asked(server):
    response = await get(server.port, "/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert "gumbeld_test_events_total 7.0" in response.text
    assert response.text.endswith("# EOF\n")


async def test_metrics_are_gzipped_when_the_client_accepts_it(server):
    response = await get(server.port, "/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert b"gumbeld_test_events_total 7.0" in gzip.decompress(response.body)
    plain = await get(server.port, "/metrics")
    assert "content-encoding" not in plain.headers


async def test_metrics_renders_only_the_series_named(server):
    response = await get(server.port, "/metrics?name[]=gumbeld_test_other_total")
    assert response.status == 200
    assert "gumbeld_test_other_total 2.0" in response.text
    assert "gumbeld_test_events" not in response.text


async def test_head_has_headers_but_no_body(server):
    response = await get(server.port, "/metrics", method="HEAD")
    assert response.status == 200 and response.body == b""
    assert int(response.headers["content-length"]) > 0


async def test_livez_answers_ok(server):
    response = await get(server.port, "/livez")
    assert (response.status, response.text) == (200, "ok\n")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_readyz_follows_the_health_conditions(server, health):
    response = await get(server.port, "/readyz")
    assert (response.status, response.text) == (200, "ready\n")

    health.set_not_ready("source", "not connected")
    health.set_not_ready("checkpoint", "restoring")
    response = await get(server.port, "/readyz")
    assert response.status == 503
    assert response.text == "checkpoint: restoring\nsource: not connected\n"

    health.set_ready("checkpoint")
    health.set_ready("source")
    assert (await get(server.port, "/readyz")).status == 200


async def test_readyz_stays_unavailable_once_draining(server, health):
    health.draining()
    health.set_ready("anything")
    response = await get(server.port, "/readyz")
    assert (response.status, response.text) == (503, "draining\n")
    assert (await get(server.port, "/livez")).status == 200  # alive while draining


async def test_unknown_path_is_404(server):
    response = await get(server.port, "/nothing-here")
    assert (response.status, response.text) == (404, "not found; try /metrics, /livez or /readyz\n")
    assert (await get(server.port, "/")).status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
async def test_other_methods_are_405(server, method):
    body = b"a=1"
    response = await exchange(server.port, request("/metrics", method, {"Content-Length": str(len(body))}) + body)
    assert (response.status, response.text) == (405, f"method {method} not allowed\n")
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD"}


@pytest.mark.parametrize("raw", [
    b"garbage\r\n\r\n",
    b"GET /metrics HTTP/1.1 extra\r\n\r\n",
    b"GET /metrics SPDY/3\r\n\r\n",
    b"get /metrics HTTP/1.1\r\n\r\n",
    b"GET metrics HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 20_000 + b"\r\n\r\n",  # head too large
])
async def test_malformed_requests_are_400(server, raw, caplog):
    assert (await exchange(server.port, raw)).status == 400
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]  # the client's fault: no log


async def test_a_large_body_does_not_cost_the_client_its_answer(server):
    body = b"x" * 1_000_000
    response = await exchange(server.port, request("/metrics", "POST", {"Content-Length": str(len(body))}) + body)
    assert response.status == 405


async def test_a_failing_collector_gives_500_and_the_server_carries_on(server, registry):
    class Broken:
        def collect(self):
            raise RuntimeError("collector broke")

    registry.register(Broken())
    assert (await get(server.port, "/metrics")).status == 500
    assert (await get(server.port, "/livez")).status == 200


async def test_a_standard_client_understands_the_answers(server, health):
    def fetch(path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{server.port}{path}",
                                                               headers=headers or {}), timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    health.set_not_ready("model", "warming up")
    assert await asyncio.to_thread(fetch, "/livez") == (200, b"ok\n")
    assert await asyncio.to_thread(fetch, "/readyz") == (503, b"model: warming up\n")
    status, body = await asyncio.to_thread(fetch, "/metrics")
    assert status == 200 and b"gumbeld_test_events_total" in body


async def test_stop_closes_the_port_and_open_connections(registry, health):
    server = HttpServer("127.0.0.1", 0, registry, health, max_connections=8)
    await server.start()
    port = server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)  # idle, never sends
    await asyncio.wait_for(server.stop(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await server.stop()  # a second stop is harmless


async def test_port_before_start_is_an_error(registry, health):
    with pytest.raises(RuntimeError, match="not started"):
        HttpServer("127.0.0.1", 0, registry, health, max_connections=8).port


def test_health_reports_readiness_changes_once_each():
    class Gauge:
        def __init__(self):
            self.changes = []

        def set_ready(self, ready):
            self.changes.append(ready)

    gauge = Gauge()
    health = Health(gauge)
    health.set_not_ready("a", "x")
    health.set_not_ready("b", "y")
    health.set_ready("a")
    health.set_ready("b")
    health.set_ready("b")
    health.draining()
    health.draining()
    assert gauge.changes == [True, False, True, False]
    assert health.ready() == (False, ["draining"])
