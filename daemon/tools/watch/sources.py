"""Where ``gumbeld watch`` gets its snapshots, each source keeping a :class:`WatchState` up to date:

- :func:`follow_topic`: the learned-distribution topic from its beginning, through
  :class:`daemon.tools.client.Subscription`; while no broker answers, ``disconnected`` and a new attempt
  after a :class:`~daemon.kafka.backoff.Backoff`;
- :func:`follow_file`: a JSON-lines file, followed as ``tail -f`` does (a truncated file is read
  again from its start, a replaced one is reopened);
- :func:`read_pipe`: JSON lines from a pipe (``gumbeld run | gumbeld watch -``) until its end.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import BinaryIO

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from daemon.kafka.backoff import Backoff
from daemon.tools.client import Subscription

from .state import WatchState

PROBE_INTERVAL = 2.0      # seconds between two checks that a broker answers
PROBE_TIMEOUT = 5.0
LINE_LIMIT = 16 << 20     # longest line read from a pipe; a longer one is counted malformed
CHUNK = 1 << 20           # bytes of a file read between two chances for the screen and the keys
POLL = 0.25               # seconds between two looks at a file's end


async def probe_broker(bootstrap_servers: str, *, timeout: float = PROBE_TIMEOUT) -> None:
    """Return if a broker of ``bootstrap_servers`` answers a metadata request within ``timeout`` s;
    raise ``KafkaConnectionError`` or ``TimeoutError`` if none does."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
    finally:
        await client.close()


async def follow_topic(state: WatchState, topic: str, bootstrap_servers: str, *, backoff: Backoff | None = None,
                       probe: Callable[[str], Awaitable[None]] = probe_broker, probe_interval: float = PROBE_INTERVAL,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Keep ``state`` up to date with ``topic`` until cancelled.

    The topic is read from its beginning, so the state holds the latest snapshot of every live key.
    A broker is probed every ``probe_interval`` s while reading (the consumer itself waits silently
    for a broker that went away). When the probe or the consumer fails, the status is
    ``disconnected``; after the backoff the topic is read again from its beginning.
    """
    backoff = backoff or Backoff(initial=0.5, maximum=10.0)
    while True:
        try:
            await _read_while_answered(state, Subscription(topic, bootstrap_servers=bootstrap_servers),
                                       backoff, probe, probe_interval)
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            reason = _describe(error)
        else:
            reason = "the consumer stopped"
        wait = backoff.next()
        state.set_status("disconnected", f"{reason}; attempt {backoff.attempt + 1} in {wait:.1f} s")
        await sleep(wait)


async def _read_while_answered(state: WatchState, subscription: Subscription, backoff: Backoff,
                               probe: Callable[[str], Awaitable[None]], probe_interval: float) -> None:
    """Read ``subscription`` into ``state`` until a probe fails (raises) or the reading ends."""
    reading = asyncio.create_task(_read(subscription, state))
    try:
        while True:
            await probe(subscription.bootstrap_servers)
            if state.status != "connected":
                state.set_status("connected")
            done, _ = await asyncio.wait({reading}, timeout=probe_interval)
            state.topic_malformed(subscription.malformed)
            if done:
                reading.result()  # raises what stopped it, e.g. a consumer that could not start
                return
            backoff.reset()  # answered, and read for a whole interval
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)


async def _read(subscription: Subscription, state: WatchState) -> None:
    async for update in subscription:
        state.apply(update)
        if subscription.malformed > state.malformed:
            state.topic_malformed(subscription.malformed)


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "no answer from the broker"
    if isinstance(error, KafkaConnectionError):
        return "cannot connect"
    return str(error) or type(error).__name__


async def read_pipe(state: WatchState, pipe: BinaryIO, *, limit: int = LINE_LIMIT) -> None:
    """Apply each line of ``pipe`` to ``state`` until the pipe ends (status ``ended``); a line longer
    than ``limit`` bytes is counted malformed."""
    reader = asyncio.StreamReader(limit=limit)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), pipe)
    state.set_status("reading")
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # longer than the limit: the reader has dropped it
                state.malformed += 1
                continue
            if not line:
                break
            state.apply_line(line)
    finally:
        transport.close()
    state.set_status("ended", "end of input")


async def follow_file(state: WatchState, file: BinaryIO, *, path: str | None = None, poll: float = POLL,
                      sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Apply each line of ``file`` to ``state``, then the lines appended to it, until cancelled.

    With ``path`` (the file's name), a file replaced under that name (rotated) is reopened. A line
    is applied once it is whole (ends in a newline). Status ``reading``, then ``following``.
    """
    state.set_status("reading")
    partial = b""
    try:
        while True:
            lines = file.readlines(CHUNK)
            if lines:
                if not lines[-1].endswith(b"\n"):  # its writer is still writing it
                    partial += lines.pop()
                for line in lines:
                    state.apply_line(partial + line)
                    partial = b""
                await sleep(0)
                continue
            if state.status != "following":
                state.set_status("following")
            if os.fstat(file.fileno()).st_size < file.tell():  # truncated: start again
                file.seek(0)
                partial = b""
            elif path is not None and _replaced(file, path):
                file.close()
                file = open(path, "rb")
                partial = b""
                continue
            await sleep(poll)
    finally:
        file.close()


def _replaced(file: BinaryIO, path: str) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(file.fileno()).st_ino
    except OSError:  # gone for now: keep the open file until a new one is there
        return False
