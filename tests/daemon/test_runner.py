"""The process's signal handling, in-process: one drain per stop request, a forced exit on a later one."""
import asyncio
import os
import signal

import pytest

from daemon import runner


class _Service:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()


@pytest.fixture
async def stopped(monkeypatch):
    """A service with the signal handlers installed, and the exit codes ``os._exit`` was called with."""
    exits = []
    monkeypatch.setattr(runner.os, "_exit", exits.append)
    service, loop = _Service(), asyncio.get_running_loop()
    runner.install_signal_handlers(service)
    try:
        yield service, exits
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _forced_exit(exits: list) -> list:
    for _ in range(100):
        if exits:
            break
        await asyncio.sleep(0.01)
    return exits


async def test_a_signal_within_the_grace_is_the_same_stop_and_a_later_one_exits_at_once(monkeypatch, stopped):
    service, exits = stopped
    monkeypatch.setattr(runner, "SECOND_SIGNAL_GRACE", 0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(service.stopping.wait(), 5)
    os.kill(os.getpid(), signal.SIGTERM)  # within the grace: still the first request
    await asyncio.sleep(0.05)
    assert exits == []
    await asyncio.sleep(0.5)
    os.kill(os.getpid(), signal.SIGINT)  # a second request
    assert await _forced_exit(exits) == [128 + signal.SIGINT]


async def test_the_first_signal_while_the_service_stops_on_its_own_drains_and_a_later_one_exits(monkeypatch, stopped):
    """As when stdout's reader went away: the user's first Ctrl-C is not a second stop request."""
    service, exits = stopped
    monkeypatch.setattr(runner, "SECOND_SIGNAL_GRACE", 0.2)
    service.stopping.set()
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.sleep(0.3)
    assert exits == []
    os.kill(os.getpid(), signal.SIGINT)
    assert await _forced_exit(exits) == [128 + signal.SIGINT]
