"""Where ``gumbeld watch`` gets its snapshots, each source keeping a :class:`WatchState` up to date:

- :func:`follow_topic`: the learned-distribution topic from its beginning, through
  :class:`daemon.tools.client.Subscription`; while no broker answers, ``disconnected`` and a new attempt
  after a :class:`~daemon.kafka.backoff.Backoff`;
- :func:`follow_file`: a JSON-lines file, followed as ``tail -f`` does (a truncated file is read
  again from its start, a replaced one is reopened);
- :func:`read_pipe`: JSON lines from a pipe (``gumbeld run | gumbeld watch -``) until its end;
- :func:`follow_server`: the ``/v1`` API of ``gumbeld run`` or ``gumbeld serve``, through
  :class:`daemon.tools.api_client.ApiClient`: every key, then the stream of updates.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import BinaryIO

import aiohttp
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from daemon.kafka.backoff import Backoff
from daemon.tools.api_client import ApiClient, ApiError, Unavailable
from daemon.tools.client import Subscription, Update

from .state import WatchState

BATCH_GET = 1000          # keys asked for in one call (the server's api.max_batch_keys by default)
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


async def follow_server(state: WatchState, url: str, *, token: str | None = None, backoff: Backoff | None = None,
                        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Keep ``state`` up to date with the server at ``url`` until cancelled.

    The stream of updates is opened first and buffers while every key is read (listed, then asked
    for a thousand at a time), so no update falls between the two. When the server cannot be reached
    or ends the stream, the status is ``disconnected`` and after the backoff (or the server's
    ``Retry-After``) every key is read again. A refused token (401, 403) is not retried: it raises.
    """
    backoff = backoff or Backoff(initial=0.5, maximum=10.0)
    while True:
        wait = None
        try:
            async with ApiClient(url, token=token) as api:
                await _mirror(state, api, backoff)
            reason = "the server ended the stream"
        except Unavailable as error:
            reason, wait = f"not ready: {error.detail}", error.retry_after
        except ApiError as error:
            if error.status in (401, 403):
                raise
            reason = str(error)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            reason = "no answer from the server" if isinstance(error, asyncio.TimeoutError) else _describe_http(error)
        wait = max(wait or 0.0, backoff.next())
        state.set_status("disconnected", f"{reason}; attempt {backoff.attempt + 1} in {wait:.1f} s")
        await sleep(wait)


async def _mirror(state: WatchState, api: ApiClient, backoff: Backoff) -> None:
    """Read every key of ``api`` into ``state``, then apply its updates until the stream ends."""
    connected, buffered = asyncio.Event(), asyncio.Queue()

    async def listen() -> None:
        try:
            async for update in api.stream(connected=connected):
                buffered.put_nowait(update)
        finally:
            buffered.put_nowait(None)  # the end of the stream, however it ended

    listening = asyncio.create_task(listen())
    try:
        waiting = asyncio.ensure_future(connected.wait())
        await asyncio.wait({waiting, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not connected.is_set():
            waiting.cancel()
            await listening  # raises what refused the stream
            raise ApiError(0, "the stream ended before it started")
        state.set_status("loading")
        keys = [entry["key"] async for entry in api.keys()]
        snapshots = {}
        for start in range(0, len(keys), BATCH_GET):
            snapshots.update(await api.batch_get(keys[start:start + BATCH_GET]))
        state.replace_all(snapshots)
        state.set_status("connected", f"{len(snapshots)} keys")
        backoff.reset()
        while (update := await buffered.get()) is not None:
            if _newer(state, update):
                state.apply(update)
        await listening  # raises what ended the stream, if it failed
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


def _newer(state: WatchState, update: Update) -> bool:
    """Whether a buffered update is news: the key's snapshot read since may be as new already."""
    held = state.snapshots.get(update.key)
    return update.snapshot is None or held is None or update.snapshot.version > held.version


def _describe_http(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorError):
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
