"""``GET /v1/stream?prefix=``: snapshot updates as Server-Sent Events, for clients without Kafka.

Each update is one event: ``event: snapshot`` with the snapshot's JSON as data, or ``event:
evicted`` with ``{"key"}`` for a key that left. A comment line every ``KEEPALIVE`` seconds keeps
idle connections (and proxies) open. A client that falls ``api.stream_queue`` updates behind gets
``event: dropped`` and is disconnected; past ``api.max_streams`` open streams a new one is 503.
"""
from __future__ import annotations

import asyncio

import orjson
from aiohttp import hdrs, web

from .problems import Problem
from .settings import ApiSettings
from .updates import Updates

KEEPALIVE = 15.0  # seconds between comment lines on an idle stream
RECONNECT_MS = 1000  # what the client's EventSource waits before it reconnects


class StreamEndpoint:
    def __init__(self, settings: ApiSettings, updates: Updates) -> None:
        self.settings, self.updates = settings, updates

    async def serve(self, request: web.Request) -> web.StreamResponse:
        if len(self.updates) >= self.settings.max_streams:
            raise Problem(503, f"{self.settings.max_streams} streams are open already (api.max_streams)",
                          headers={hdrs.RETRY_AFTER: "10"})
        subscription = self.updates.subscribe(request.query.get("prefix", ""), self.settings.stream_queue)
        try:
            response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "text/event-stream",
                                                   hdrs.CACHE_CONTROL: "no-cache"})
            await response.prepare(request)
            await response.write(b"retry: %d\n: connected\n\n" % RECONNECT_MS)
            while True:
                try:
                    key, value = await asyncio.wait_for(anext(subscription), KEEPALIVE)
                except asyncio.TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                except StopAsyncIteration:
                    break
                await response.write(event(key, value))
            if subscription.dropped:
                await response.write(b'event: dropped\ndata: {"reason":"the client fell behind (api.stream_queue)"}\n\n')
            return response
        finally:
            self.updates.leave(subscription)


def event(key: str, value: bytes | None) -> bytes:
    """One update as a Server-Sent Event.

    >>> event("a", None)
    b'event: evicted\\ndata: {"key":"a"}\\n\\n'
    """
    if value is None:
        return b"event: evicted\ndata: " + orjson.dumps({"key": key}) + b"\n\n"
    return b"event: snapshot\ndata: " + value + b"\n\n"
