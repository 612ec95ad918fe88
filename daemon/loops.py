"""Loops the service runs beside its main work: a fixed-rate timer, and a watch on the event loop."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

LAG_PROBE_SECONDS = 0.1


async def every(interval: float, action: Callable[[], Awaitable[None]], stopping: asyncio.Event) -> None:
    """``action()`` every ``interval`` seconds at a fixed rate (its own duration does not add up),
    until ``stopping`` is set; an action that overruns is followed as :func:`next_beat` says."""
    loop = asyncio.get_running_loop()
    due, caught_up = loop.time() + interval, False
    while True:
        try:
            await asyncio.wait_for(stopping.wait(), timeout=max(0.0, due - loop.time()))
            return
        except asyncio.TimeoutError:
            await action()
            due, caught_up = next_beat(due, loop.time(), interval, caught_up)


def next_beat(due: float, now: float, interval: float, caught_up: bool) -> tuple[float, bool]:
    """When the action that was due at ``due`` and ended at ``now`` runs next, and whether that run
    catches up. An action that overran the next beat is followed at once, so a publish of 1.05 s
    starts 1.05 s before the next, not 2 s; if that one overruns too, the beats it missed are
    skipped, so a sustained overload leaves the machine to the work the action reports on.

    >>> next_beat(10.0, 10.3, 1.0, False)          # in time: the next beat
    (11.0, False)
    >>> next_beat(10.0, 11.05, 1.0, False)         # overran: at once
    (11.05, True)
    >>> next_beat(11.05, 12.5, 1.0, True)          # the catch-up overran too: skip to the beat after
    (13.05, False)
    """
    following = due + interval
    if now <= following:
        return following, False
    if caught_up:
        return following + interval * -(-(now - following) // interval), False
    return now, True


async def watch_loop_lag(observe: Callable[[float], None], interval: float = LAG_PROBE_SECONDS) -> None:
    """``observe(seconds)`` for every probe: how late a sleep of ``interval`` seconds wakes up."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - started - interval))
