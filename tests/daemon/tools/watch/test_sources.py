"""daemon.tools.watch.sources: a file followed as tail -f, a pipe to its end, the topic on a real broker
through an outage (disconnected, then read again after the backoff), and a server's /v1."""
import asyncio
import functools
import os
import random
import socket
import time

import pytest
from aiokafka.errors import KafkaConnectionError

from daemon.api.published import Published
from daemon.kafka.backoff import Backoff
from daemon.snapshots import Eviction, Publication, SnapshotBatch
from daemon.tools.api_client import ApiError
from daemon.tools.watch.sources import (
    follow_file,
    follow_server,
    follow_topic,
    probe_broker,
    read_pipe,
)
from daemon.tools.watch.state import WatchState
from tests.daemon.api.serving import api_client, publication
from tests.daemon.tools.watch.snapshots import eviction_line, line
from tests.kafka_broker import create_topic, produce


async def _until(condition, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        await asyncio.sleep(0.02)


async def test_a_file_is_read_then_followed_as_it_grows_is_truncated_and_is_replaced(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_bytes(line("a", events=1) + b"\n" + b"{nope\n")
    state = WatchState()
    task = asyncio.create_task(follow_file(state, open(path, "rb"), path=str(path), poll=0.02))
    try:
        await _until(lambda: state.status == "following" and "a" in state.snapshots, what="the file read")
        assert state.malformed == 1
        with open(path, "ab") as file:
            whole = line("b", events=2)
            file.write(whole[:20])  # a line half written is not applied (nor counted malformed) ...
            file.flush()
            await asyncio.sleep(0.2)
            assert "b" not in state.snapshots and state.malformed == 1
            file.write(whole[20:] + b"\n" + eviction_line("a") + b"\n")  # ... until its end comes
        await _until(lambda: "b" in state.snapshots and "a" not in state.snapshots, what="the appended lines")
        path.write_bytes(line("c") + b"\n")  # truncated and written anew: read from its start
        await _until(lambda: "c" in state.snapshots, what="the truncated file")
        replacement = tmp_path / "run.jsonl.new"
        replacement.write_bytes(line("d") + b"\n")
        os.replace(replacement, path)  # rotated: the new file under the name is read
        await _until(lambda: "d" in state.snapshots, what="the replaced file")
        assert state.malformed == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_pipe_is_read_to_its_end_and_an_overlong_line_is_counted_malformed():
    read_end, write_end = os.pipe()
    state = WatchState()
    task = asyncio.create_task(read_pipe(state, open(read_end, "rb", buffering=0), limit=1000))
    with open(write_end, "wb") as pipe:
        pipe.write(line("a") + b"\n" + b"x" * 5000 + b"\n" + line("b") + b"\n" + eviction_line("a") + b"\n")
    await asyncio.wait_for(task, 10)
    assert list(state.snapshots) == ["b"] and state.malformed == 1 and state.status == "ended"


class Stop(Exception):
    """Ends a source from its injected sleep."""


async def test_an_unreachable_broker_is_disconnected_and_retried_after_a_growing_backoff():
    with socket.socket() as free:  # bound, never listening: connections are refused
        free.bind(("127.0.0.1", 0))
        bootstrap = f"127.0.0.1:{free.getsockname()[1]}"
        state, waits = WatchState(), []

        async def sleep(seconds):
            waits.append(seconds)
            assert state.status == "disconnected" and "cannot connect" in state.detail
            if len(waits) == 4:
                raise Stop
            await asyncio.sleep(0)

        backoff = Backoff(initial=1.0, maximum=4.0, rng=random.Random(1))
        same = Backoff(initial=1.0, maximum=4.0, rng=random.Random(1))
        expected = [same.next() for _ in range(4)]
        with pytest.raises(Stop):
            await asyncio.wait_for(follow_topic(state, "t", bootstrap, backoff=backoff, sleep=sleep), 30)
    assert waits == expected and f"attempt 5 in {expected[-1]:.1f} s" in state.detail


async def test_the_topic_from_its_start_with_tombstones_and_malformed_messages(kafka_broker):
    topic = f"watch-{time.time_ns()}"
    await create_topic(kafka_broker.bootstrap, topic, 2)
    await produce(kafka_broker.bootstrap, topic, [(b"a", line("a", events=5)), (b"b", line("b", events=9)),
                                                   (b"bad", b"{nope"), (b"a", None)])
    state = WatchState()
    task = asyncio.create_task(follow_topic(state, topic, kafka_broker.bootstrap, probe_interval=0.2))
    try:
        await _until(lambda: list(state.snapshots) == ["b"] and state.malformed == 1, what="the topic read")
        assert state.status == "connected"
        await produce(kafka_broker.bootstrap, topic, [(b"c", line("c", events=1)), (b"b", line("b", events=10, version=2))])
        await _until(lambda: sorted(state.snapshots) == ["b", "c"] and state.snapshots["b"].version == 2,
                     what="the snapshots produced later")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_broker_that_stops_answering_is_disconnected_until_it_answers_again(pausable_kafka_broker):
    broker = pausable_kafka_broker
    topic = f"watch-{time.time_ns()}"
    await create_topic(broker.bootstrap, topic, 1)
    await produce(broker.bootstrap, topic, [(b"a", line("a"))])
    state, statuses = WatchState(), []
    probe = functools.partial(probe_broker, timeout=1.0)

    async def sleep(seconds):
        statuses.append(state.status)
        await asyncio.sleep(min(seconds, 0.2))

    task = asyncio.create_task(follow_topic(state, topic, broker.bootstrap, probe=probe, probe_interval=0.2,
                                            sleep=sleep))
    try:
        await _until(lambda: state.status == "connected" and "a" in state.snapshots, what="connected")
        broker.pause()
        try:
            await _until(lambda: state.status == "disconnected", timeout=20, what="disconnected")
            assert "no answer from the broker" in state.detail and "a" in state.snapshots  # what was read stays
        finally:
            broker.resume()
        await _until(lambda: state.status == "connected", timeout=30, what="connected again")
        await produce(broker.bootstrap, topic, [(b"b", line("b"))])
        await _until(lambda: sorted(state.snapshots) == ["a", "b"], what="a snapshot after the outage")
        assert "disconnected" in statuses
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_probe_raises_when_no_broker_answers():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        try:
            await probe_broker(f"127.0.0.1:{free.getsockname()[1]}", timeout=2.0)
        except KafkaConnectionError:
            return
    raise AssertionError("the probe of a port where nothing listens returned")


async def test_a_server_is_read_key_by_key_then_followed_through_its_stream():
    published = Published()
    first = publication({f"page/{i}": [0.25] * 4 for i in range(1500)}, version=2)  # two pages, two batches
    published.take(first.keys, first.values)
    async with api_client(published) as server:
        state, waits = WatchState(), []

        async def sleep(seconds):
            waits.append((seconds, state.status, state.detail))
            raise Stop

        task = asyncio.create_task(follow_server(state, str(server.make_url("")), sleep=sleep))
        await _until(lambda: state.status == "connected", what="every key read")
        assert len(state.snapshots) == 1500 and state.detail == "1500 keys"
        await published.publish(publication({"page/1": [0.1, 0.2, 0.3, 0.4]}, version=3))
        await published.publish(Publication(SnapshotBatch.empty(1.0, "t"), [Eviction("page/2", "ttl", "t")]).encode())
        await _until(lambda: state.snapshots["page/1"].version == 3 and "page/2" not in state.snapshots,
                     what="the streamed update and eviction")
        assert len(state.snapshots) == 1499
    with pytest.raises(Stop):  # the server went away: its stream ended
        await asyncio.wait_for(task, 10)
    assert waits[0][1] == "disconnected" and "attempt 2" in waits[0][2]


async def test_an_unreachable_server_is_disconnected_and_a_refused_token_is_an_error():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        state = WatchState()

        async def sleep(seconds):
            assert state.status == "disconnected" and "cannot connect" in state.detail
            raise Stop

        with pytest.raises(Stop):
            await asyncio.wait_for(follow_server(state, f"http://127.0.0.1:{free.getsockname()[1]}", sleep=sleep), 10)
    async with api_client(Published(), token="right") as server:
        with pytest.raises(ApiError) as refused:
            await asyncio.wait_for(follow_server(WatchState(), str(server.make_url("")), token="wrong"), 10)
        assert refused.value.status == 401
