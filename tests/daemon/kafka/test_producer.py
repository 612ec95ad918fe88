"""The producer wrapper: a send that times out leaves nothing of its producer sending afterwards."""
from __future__ import annotations

import asyncio

import pytest

from daemon.kafka.producer import Producer
from daemon.settings import KafkaSourceSettings


class _Closable:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class StuckProducer:
    """A producer whose broker never acknowledges, and whose graceful stop never ends."""

    made: list["StuckProducer"] = []

    def __init__(self, **options) -> None:
        self._sender, self.client = _Closable(), _Closable()
        self.sent: list[bytes] = []
        StuckProducer.made.append(self)

    async def start(self) -> None:
        pass

    async def send(self, topic, value=None, key=None, headers=None, partition=None):
        self.sent.append(key)
        return asyncio.get_running_loop().create_future()  # never acknowledged

    async def stop(self) -> None:
        await asyncio.Event().wait()


async def test_a_send_that_times_out_stops_its_producer_sending_before_the_next_one_starts():
    StuckProducer.made = []
    producer = Producer(KafkaSourceSettings(), enable_idempotence=False, timeout=0.05,
                        producer_factory=StuckProducer)
    with pytest.raises(asyncio.TimeoutError):
        await producer.send_all("learned", [(b"k1", b"old snapshot", [])])
    first = StuckProducer.made[0]
    # its graceful stop hung: the sender (which would retry the batch) and the connections are closed anyway
    assert first._sender.closed and first.client.closed
    with pytest.raises(asyncio.TimeoutError):
        await producer.send_all("learned", [(b"k1", None, [])])
    assert len(StuckProducer.made) == 2 and StuckProducer.made[1].sent == [b"k1"]
