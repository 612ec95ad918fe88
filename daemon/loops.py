"""Loops the service runs beside its main work: a fixed-rate timer, and a watch on the event loop."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

LAG_PROBE_SECONDS = 0.1


async def every(interval: float, action: Callable[[], Awaitable[None]], stopping: asyncio.Event) -> None:
    """``action()`` every ``interval`` seconds at a fixed rate (its own duration does not add up),
    skipping beats it overran, until ``stopping`` is set."""
    loop = asyncio.get_running_loop()
    due = loop.time() + interval
    while True:
        try:
            await asyncio.wait_for(stopping.wait(), timeout=max(0.0, due - loop.time()))
            return
        except asyncio.TimeoutError:
            await action()
            due += interval * max(1, -(-(loop.time() - due) // interval))


async def watch_loop_lag(observe: Callable[[float], None], interval: float = LAG_PROBE_SECONDS) -> None:
    """``observe(seconds)`` for every probe: how late a sleep of ``interval`` seconds wakes up."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - started - interval))
