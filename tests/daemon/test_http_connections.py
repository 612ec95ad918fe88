"""Connections to daemon/http.py's server: slow and idle clients, the cap, many at once."""
from __future__ import annotations

import asyncio
import resource
import time

import pytest

from tests.daemon.http_client import Response, get, request, serving


async def test_livez_answers_while_a_slow_exposition_renders(server, registry):
    class Slow:
        def collect(self):
            time.sleep(1.0)  # blocks whichever thread renders
            return []

    registry.register(Slow())
    metrics = asyncio.create_task(get(server.port, "/metrics"))
    await asyncio.sleep(0.2)  # the rendering has begun
    started = time.monotonic()
    assert (await get(server.port, "/livez")).status == 200
    assert time.monotonic() - started < 0.5 and not metrics.done()
    assert (await metrics).status == 200


async def test_a_client_that_sends_nothing_does_not_block_others(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        assert (await asyncio.wait_for(get(server.port, "/livez"), 5)).status == 200
    finally:
        writer.close()


async def test_a_slow_client_sending_its_head_byte_by_byte_is_answered(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for byte in request("/readyz"):
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.002)
        response = Response(await asyncio.wait_for(reader.read(), 10))
    finally:
        writer.close()
    assert (response.status, response.text) == (200, "ready\n")


async def test_a_connection_without_a_complete_request_is_closed_after_the_idle_timeout(registry, health):
    async with serving(registry, health, idle_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /livez HTTP/1.1\r\n")  # and nothing more
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert time.monotonic() - started < 3
        writer.close()


async def test_past_the_cap_probes_are_answered_and_everything_else_is_refused_with_503(registry, health):
    async with serving(registry, health, max_connections=3) as server:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        for _, writer in held:  # half-sent requests, as a slow or hostile client leaves them
            writer.write(b"GET /livez HTTP/1.1\r\n")
        await asyncio.sleep(0.1)  # the server has registered them
        response = await get(server.port, "/metrics")
        assert (response.status, response.text) == (503, "too many connections\n")
        assert (await get(server.port, "/livez")).text == "ok\n"
        assert (await get(server.port, "/readyz?verbose")).text == "ready\n"
        health.set_not_ready("restore", "restoring")
        assert ((await get(server.port, "/readyz")).status, (await get(server.port, "/readyz")).text) == (
            503, "restore: restoring\n")
        silent_reader, silent = await asyncio.open_connection("127.0.0.1", server.port)  # sends nothing at all
        assert Response(await asyncio.wait_for(silent_reader.read(), 10)).status == 503
        silent.close()
        _, writer = held.pop()
        writer.close()
        await asyncio.sleep(0.1)
        assert (await get(server.port, "/metrics")).status == 200
        for _, writer in held:
            writer.close()


async def test_livez_stays_fast_with_a_thousand_connections_open(registry, health):
    open_connections = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * open_connections + 200  # both ends of every connection live in this process
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    held = []
    try:
        async with serving(registry, health, max_connections=open_connections + 50) as server:
            for _ in range(open_connections):  # each one has begun a request it has not finished
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
                held.append((reader, writer))
            await asyncio.sleep(0.2)
            rounds = []
            for _ in range(20):
                started = time.monotonic()
                assert (await get(server.port, "/livez")).status == 200
                rounds.append(time.monotonic() - started)
            assert sorted(rounds)[-2] < 0.1, rounds  # one outlier allowed: other processes share the cores
            for _, writer in held:  # every held connection still gets its answer
                writer.write(b"Connection: close\r\n\r\n")
            answers = await asyncio.gather(*(asyncio.wait_for(reader.read(), 30) for reader, _ in held))
            assert all(Response(answer).status == 200 for answer in answers)
    finally:
        for _, writer in held:
            writer.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
