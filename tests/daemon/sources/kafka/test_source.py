"""The Kafka source's side of a restore: pause first, resume at the restored offset, cancel on revocation.

The consumer is a stand-in recording what the source asks of it; the broker-level behaviour is
covered by tests/daemon/changelog/test_handover*.py.
"""
import asyncio

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from daemon.health import Health
from daemon.kafka.failures import KafkaFailures
from daemon.settings import KafkaSourceSettings
from daemon.sources.kafka.decode import RecordDecoder
from daemon.sources.kafka.source import KafkaSource

TP = TopicPartition("events", 0)


class Consumer:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def pause(self, *tps):
        self.calls.append(("pause", *tps))

    def resume(self, *tps):
        self.calls.append(("resume", *tps))

    def seek(self, tp, offset):
        self.calls.append(("seek", tp, offset))

    def assignment(self):
        return {TP}


class Metrics:
    def forget_lag(self, *args):
        pass

    def kafka_error(self, operation, reason):
        pass


class Listener:
    """The service's side of a rebalance, as far as a restore goes."""
    restores = True

    def __init__(self, restore) -> None:
        self.restore = restore

    async def revoked(self, partitions) -> None:
        pass

    async def lost(self, keys) -> None:
        pass


def _source(restorer) -> tuple[KafkaSource, Consumer, Health]:
    health = Health()
    source = KafkaSource(KafkaSourceSettings(retry_backoff_max=0.01), RecordDecoder(["x", "y"]), health=health,
                         metrics=Metrics(), failures=KafkaFailures(Metrics(), health))
    source.listen(Listener(restorer))
    source.consumer = Consumer()
    return source, source.consumer, health


async def test_a_new_partition_is_paused_first_restored_then_resumed_at_the_restored_offset():
    gate = asyncio.Event()

    async def restorer(tp, local_offset):
        assert consumer.calls == [("pause", TP)]  # nothing before the pause
        await gate.wait()
        return 42

    source, consumer, health = _source(restorer)
    await source.assigned({TP})  # returns at once: the restore runs on its own
    await asyncio.sleep(0)
    assert health.ready() == (False, ["restore: restoring"])
    gate.set()
    await asyncio.sleep(0.01)
    assert consumer.calls == [("pause", TP), ("seek", TP, 42), ("resume", TP)]
    assert source.progress.offsets[TP] == 42 and TP in source.current and health.ready() == (True, [])


async def test_a_partition_revoked_mid_restore_is_never_resumed():
    started = asyncio.Event()

    async def restorer(tp, local_offset):
        started.set()
        await asyncio.Event().wait()  # a long read of the state partition

    source, consumer, health = _source(restorer)
    await source.assigned({TP})
    await started.wait()
    await source.revoked({TP})
    await asyncio.sleep(0.01)
    assert consumer.calls == [("pause", TP)]
    assert TP not in source.current and health.ready() == (True, [])


async def test_a_failed_restore_is_retried_and_the_partition_stays_paused_meanwhile():
    attempts = []

    async def restorer(tp, local_offset):
        attempts.append(local_offset)
        if len(attempts) < 3:
            raise KafkaConnectionError("broker gone")
        return None  # resume at the group's committed offset

    source, consumer, _ = _source(restorer)
    source.progress.offsets[TP] = 7  # from the local checkpoint
    await source.assigned({TP})
    for _ in range(100):
        await asyncio.sleep(0.01)
        if ("resume", TP) in consumer.calls:
            break
    assert attempts == [7, 7, 7]
    assert consumer.calls == [("pause", TP), ("resume", TP)]


async def test_a_restore_that_fails_other_than_by_the_broker_stops_consuming_with_the_reason():
    async def restorer(tp, local_offset):
        raise ValueError("a row the model cannot take")

    source, consumer, health = _source(restorer)
    await source.assigned({TP})
    await asyncio.sleep(0.01)
    assert consumer.calls == [("pause", TP)], "never resumed: its keys' state is not there"
    assert "restoring events:0 failed: ValueError: a row the model cannot take" in source._refusal
    assert health.ready() == (True, [])
