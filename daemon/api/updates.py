"""Snapshot updates for ``GET /v1/stream`` clients: each takes the keys of its prefix, or is dropped.

:meth:`Updates.offer` is called where a publication is taken (a worker thread): it picks each
subscription's keys there, off the event loop, and hands them over with one call per subscription.
A subscription that falls more than ``limit`` updates behind (a client that reads slower than
snapshots are published) is closed: its client is dropped, never buffered for without bound.

>>> import asyncio
>>> async def demo():
...     updates = Updates()
...     subscription = updates.subscribe("page/", limit=10)
...     updates.offer([b"page/a", b"user/b"], [b'{"v":1}', None])
...     updates.close()
...     return [item async for item in subscription]
>>> asyncio.run(demo())
[('page/a', b'{"v":1}')]
"""
from __future__ import annotations

import asyncio
import threading
from collections import deque


class Subscription:
    """The updates of keys starting with ``prefix``: ``(key, value)`` pairs, value None for a key that
    left, until the client is dropped (:attr:`dropped`) or the updates close."""

    def __init__(self, prefix: str, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        self.prefix, self.limit, self.loop = prefix, limit, loop
        self.dropped = False
        self._pending: deque[tuple[str, bytes | None]] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def take(self, updates: list[tuple[str, bytes | None]]) -> None:
        """On the event loop: queue ``updates``, or drop the subscription past its limit."""
        if self._closed:
            return
        if len(self._pending) + len(updates) > self.limit:
            self.dropped = True
            self.close()
            return
        self._pending.extend(updates)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> tuple[str, bytes | None]:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        if self._closed and self.dropped:
            raise StopAsyncIteration
        return self._pending.popleft()


class Updates:
    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()  # subscribe/leave on the loop, offer in a worker thread

    def __len__(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, prefix: str, limit: int) -> Subscription:
        """A subscription to the keys starting with ``prefix`` (on the event loop)."""
        subscription = Subscription(prefix, limit, asyncio.get_running_loop())
        with self._lock:
            self._subscriptions = [*self._subscriptions, subscription]
        return subscription

    def leave(self, subscription: Subscription) -> None:
        subscription.close()
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s is not subscription]

    def offer(self, keys: list[bytes], values: list[bytes | None]) -> None:
        """Hand each subscription its part of a publication (from any thread)."""
        subscriptions = self._subscriptions
        if not subscriptions:
            return
        decoded = [(key.decode("utf-8", "replace"), value) for key, value in zip(keys, values)]
        for subscription in subscriptions:
            mine = [pair for pair in decoded if pair[0].startswith(subscription.prefix)]
            if mine:
                _call_soon(subscription.loop, subscription.take, mine)

    def close(self) -> None:
        """No more updates: every subscription ends once its queued updates are read."""
        with self._lock:
            subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            _call_soon(subscription.loop, subscription.close)


def _call_soon(loop: asyncio.AbstractEventLoop, callback, *args) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop is closed: nobody is listening
        pass
