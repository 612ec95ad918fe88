"""A checkpoint's state-topic work stays off the event loop, and what stays on it is bounded per call.

No broker: the producer records what it is asked to send. What is asserted is where the work runs
(which thread) and how it is cut (rows per NumPy call), never how long it takes.
"""
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from daemon.categories import CategoryTable
from daemon.learning.full_supports import FullSupports
from daemon.learning.pending import Pending
from daemon.learning.key_rows import KeyRows
from daemon.learning.keys import KeyTable
from daemon.learning.learner import Learner
from daemon.learning.training import Training
from daemon.settings import KafkaSourceSettings
from daemon.state.changelog import rows as rows_module
from daemon.state.changelog.metrics import StateMetrics
from daemon.state.changelog.rows import RowCodec
from daemon.state.changelog.store import Changelog
from daemon.state.changelog.writer import StateWriter
from daemon.state.handover import Handover
from gumbel_models import GANConfig, GumbelGAN
from gumbel_models.rows import read_rows

LABELS = ["red", "green", "blue"]
TP = TopicPartition("events", 0)


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []

    async def send_all(self, topic: str, messages: list) -> None:
        self.sent.append((topic, list(messages)))


class Source:
    def __init__(self) -> None:
        self.owners = {}

    def assignment(self) -> set:
        return {TP}


def test_a_plan_reads_the_written_keys_it_is_given_not_the_writers_own():
    writer = StateWriter(None, {"events": "events.state"})
    writer.written(writer.plan({"a": b"1", "b": b"2"}, owners={"a": [TP], "b": [TP]}, live={"a", "b"},
                               assigned={TP}, offsets={TP: 5}))
    copy = writer.written_keys()
    writer.restored(["c"], TP)  # the event loop goes on changing its own record meanwhile
    batch = writer.plan({}, owners={}, live={"a"}, assigned={TP}, offsets={TP: 9}, written=copy)
    assert batch.tombstones == ["b"] and len(batch) == 1  # c is not in the copy
    assert writer.written_keys() == {"a": TP, "b": TP, "c": TP}
    writer.written(batch)
    assert writer.written_keys() == {"a": TP, "c": TP}


def test_messages_of_one_partition_share_their_headers():
    writer = StateWriter(None, {"events": "events.state"})
    batch = writer.plan({f"k{i}": b"row" for i in range(5)}, owners={f"k{i}": [TP] for i in range(5)},
                        live={f"k{i}" for i in range(5)}, assigned={TP}, offsets={TP: 41})
    (messages,) = batch.by_topic.values()
    assert len({id(headers) for _, _, headers, _ in messages}) == 1  # one list, not one per row
    assert batch.nbytes == 15 and set(batch.rows) == {f"k{i}" for i in range(5)}


def test_rows_are_packed_a_bounded_number_at_a_time(monkeypatch):
    model = GumbelGAN(GANConfig(n_categories=3), 10)
    model.observe(torch.rand(10, 3) * 10)
    state, versions = KeyRows(np.full(10, 3), [LABELS] * 10, {3: read_rows(model, torch.arange(10))}), np.arange(10)
    codec = RowCodec(LABELS, value_bytes=4)
    whole = codec.encode(state, versions)
    packed, zeros = [], np.zeros
    monkeypatch.setattr(rows_module, "ENCODE_ROWS", 4)
    monkeypatch.setattr(rows_module.np, "zeros", lambda n, dtype: packed.append(n) or zeros(n, dtype=dtype))
    assert codec.encode(state, versions) == whole
    assert packed == [4, 4, 2]


def test_a_checkpoint_takes_its_rows_on_the_training_thread_and_builds_its_messages_off_the_loop():
    async def scenario():
        executor = ThreadPoolExecutor(1, thread_name_prefix="training")
        keys, producer = KeyTable(10), RecordingProducer()
        keys.rows(["a", "b"], now=0.0)
        table = CategoryTable(len(LABELS))
        table.indices(LABELS)
        learner = Learner(GANConfig(n_categories=3), table, FullSupports(3))
        learner.absorb(Pending.of_counts(np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 2.0]])))
        changelog = Changelog(KafkaSourceSettings(topics=["events"]), RowCodec(LABELS, value_bytes=4),
                              producer=producer, metrics=StateMetrics(CollectorRegistry()))
        planned_on, taken_on = [], []
        plan, take = changelog.writer.plan, learner.take_changed_rows
        changelog.writer.plan = lambda *a, **k: planned_on.append(threading.current_thread()) or plan(*a, **k)
        learner.take_changed_rows = lambda: taken_on.append(threading.current_thread().name) or take()
        training = Training(learner, keys, ingest=None, executor=executor, metrics=None, round_seconds=0.1)
        handover = Handover(changelog, source=Source(), training=training)
        position = {"offsets": {"events:0": 7}, "owners": {"a": ["events:0"], "b": ["events:0"]}}
        await handover.write(keys.state()["names"], position)
        executor.shutdown()
        return taken_on, planned_on, producer.sent, changelog.writer.written_keys()

    taken_on, planned_on, sent, written = asyncio.run(scenario())
    assert len(taken_on) == 1 and taken_on[0].startswith("training")
    assert len(planned_on) == 1 and planned_on[0] is not threading.main_thread()
    ((topic, messages),) = sent
    assert topic == "gumbeld.gumbeld.events.state" and sorted(m[0] for m in messages) == [b"a", b"b"]
    assert all(dict(m[2])["gumbeld-source-offset"] == b"7" for m in messages)  # the captured position's offsets
    assert written == {"a": TP, "b": TP}
