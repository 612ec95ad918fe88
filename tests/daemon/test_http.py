from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

from daemon.http import Health, HttpServer


class Response:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.version, status, self.reason = status_line.split(" ", 2)
        self.status = int(status)
        self.headers = {name.lower(): value.strip()
                        for name, _, value in (line.partition(":") for line in header_lines)}

    @property
    def text(self) -> str:
        return self.body.decode()


async def exchange(port: int, raw: bytes) -> Response:
    """Send ``raw`` as is, read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return Response(await asyncio.wait_for(reader.read(), 10))
    finally:
        writer.close()
        await writer.wait_closed()


async def get(port: int, path: str, method: str = "GET") -> Response:
    return await exchange(port, f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("gumbeld_test_events", "Events seen by the test.", registry=registry).inc(7)
    return registry


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
async def server(registry, health):
    server = HttpServer("127.0.0.1", 0, registry, health)
    await server.start()
    yield server
    await server.stop()


async def test_binds_a_free_port_when_given_zero(server):
    assert server.port > 0


async def test_metrics_serves_the_exposition(server):
    response = await get(server.port, "/metrics")
    assert response.status == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert response.headers["connection"] == "close"
    assert int(response.headers["content-length"]) == len(response.body)
    assert "gumbeld_test_events_total 7.0" in response.text


async def test_metrics_ignores_the_query_string(server):
    response = await get(server.port, "/metrics?name[]=gumbeld_test_events_total")
    assert response.status == 200 and "gumbeld_test_events_total" in response.text


async def test_head_has_headers_but_no_body(server):
    response = await get(server.port, "/metrics", method="HEAD")
    assert response.status == 200 and response.body == b""
    assert int(response.headers["content-length"]) > 0


async def test_livez_answers_ok(server):
    response = await get(server.port, "/livez")
    assert (response.status, response.text) == (200, "ok\n")


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
    assert (await get(server.port, "/nothing-here")).status == 404
    assert (await get(server.port, "/")).status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
async def test_other_methods_are_405(server, method):
    body = b"a=1"
    response = await exchange(server.port, f"{method} /metrics HTTP/1.1\r\nHost: x\r\n"
                                           f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("raw", [
    b"garbage\r\n\r\n",
    b"GET /metrics\r\n\r\n",
    b"GET /metrics HTTP/1.1 extra\r\n\r\n",
    b"GET /metrics SPDY/3\r\n\r\n",
    b"get /metrics HTTP/1.1\r\n\r\n",
    b"GET metrics HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\n",  # then the client stops sending
])
async def test_malformed_requests_are_400(server, raw):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(raw)
    writer.write_eof()
    response = Response(await asyncio.wait_for(reader.read(), 10))
    writer.close()
    assert response.status == 400


async def test_oversized_request_head_is_400(server):
    raw = b"GET /metrics HTTP/1.1\r\nX-Padding: " + b"a" * 1_000_000 + b"\r\n\r\n"
    response = await exchange(server.port, raw)
    assert (response.status, response.text) == (400, "bad request: request head too large\n")


async def test_a_large_body_does_not_cost_the_client_its_answer(server):
    body = b"x" * 1_000_000  # more than is read and dropped: the server drains it after answering
    response = await exchange(server.port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
                                           b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert response.status == 405


async def test_a_failing_collector_gives_500_and_the_server_carries_on(server, registry):
    class Broken:
        def collect(self):
            raise RuntimeError("collector broke")

    registry.register(Broken())
    assert (await get(server.port, "/metrics")).status == 500
    assert (await get(server.port, "/livez")).status == 200


async def test_a_client_that_sends_nothing_does_not_block_others(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        assert (await asyncio.wait_for(get(server.port, "/livez"), 5)).status == 200
    finally:
        writer.close()


async def test_a_standard_client_understands_the_answers(server, health):
    def fetch(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    health.set_not_ready("model", "warming up")
    assert await asyncio.to_thread(fetch, "/livez") == (200, b"ok\n")
    assert await asyncio.to_thread(fetch, "/readyz") == (503, b"model: warming up\n")
    status, body = await asyncio.to_thread(fetch, "/metrics")
    assert status == 200 and b"gumbeld_test_events_total" in body


async def test_stop_closes_the_port_and_open_connections(registry, health):
    server = HttpServer("127.0.0.1", 0, registry, health)
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
        HttpServer("127.0.0.1", 0, registry, health).port


def test_health_reports_readiness_changes_once_each():
    changes = []
    health = Health(on_change=changes.append)
    health.set_not_ready("a", "x")
    health.set_not_ready("b", "y")
    health.set_ready("a")
    health.set_ready("b")
    health.set_ready("b")
    health.draining()
    health.draining()
    assert changes == [True, False, True, False]
    assert health.is_draining
