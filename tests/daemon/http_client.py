"""A raw HTTP client and a served HttpServer for the tests of daemon/http.py (fixtures: conftest.py)."""
from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CollectorRegistry

from daemon.health import Health
from daemon.http import HttpServer


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


def request(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def get(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Response:
    return await exchange(port, request(path, method, headers))


@contextlib.asynccontextmanager
async def serving(registry: CollectorRegistry, health: Health, **options):
    server = HttpServer("127.0.0.1", 0, registry, health, **{"max_connections": 64, **options})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
