"""The owner of the training thread: counts held during a checkpoint, the final publication's count,
and rows taken for the state topics that a cancellation hands back."""
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from prometheus_client import CollectorRegistry

from daemon.categories import CategoryTable
from daemon.event_time import Watermarks
from daemon.events import EventBatch
from daemon.learning.full_supports import FullSupports
from daemon.learning.ingest import BadEventLog, Ingest
from daemon.learning.key_rows import KeyRows
from daemon.learning.keys import KeyTable
from daemon.learning.learner import Learner
from daemon.learning.training import Training
from daemon.metrics import Metrics
from daemon.sinks.local import DeadLetterFile
from daemon.state.changelog.rows import RowCodec
from gumbel_models import GANConfig, GumbelGAN
from gumbel_models.rows import read_rows

LABELS = ["a", "b", "c"]


def _training(tmp_path, lateness_ms: int | None = None) -> tuple[Training, ThreadPoolExecutor]:
    table = CategoryTable(len(LABELS))
    table.indices(LABELS)
    learner = Learner(GANConfig(n_categories=3, samples_per_step=16), table, FullSupports(3), device="cpu",
                      round_seconds=0.05, clock=lambda: 1000.0)
    keys, metrics = KeyTable(10), Metrics(CollectorRegistry(), max_key_labels=10, clock=lambda: 1000.0)
    ingest = Ingest(keys, LABELS, metrics=metrics, dead_letters=DeadLetterFile(tmp_path / "dead.jsonl"),
                    bad_log=BadEventLog(10.0, clock=lambda: 0.0), clock=lambda: 1000.0,
                    watermarks=Watermarks(lateness_ms))
    executor = ThreadPoolExecutor(1, thread_name_prefix="training")
    return Training(learner, keys, ingest, executor, metrics=metrics, round_seconds=0.05), executor


def _events(learner: Learner) -> int:
    return sum(int(c.model.histogram.events.sum()) for c in learner.classes.values())


def test_counts_held_for_a_checkpoint_reach_no_round_until_released(tmp_path):
    async def scenario():
        training, executor = _training(tmp_path)
        training.ingest.add(EventBatch(["k"], np.zeros(5, dtype=np.int64), np.array([0, 1, 1, 2, 0])))
        held = training.hold_counts()
        training.ingest.add(EventBatch(["k"], np.zeros(2, dtype=np.int64), np.array([2, 2])))
        await training.train_round()
        during = _events(training.learner)          # neither the held counts nor the later ones
        await training.absorb(held)                  # the checkpoint counts what it took
        training.release_counts()
        await training.train_round()                 # and the next round takes the rest
        executor.shutdown()
        return held.cells.counts.sum(), during, _events(training.learner)

    held, during, after = asyncio.run(scenario())
    assert (held, during, after) == (5.0, 0, 7)


def test_only_the_final_publication_counts_the_pending_events_first(tmp_path):
    async def scenario():
        training, executor = _training(tmp_path)
        training.ingest.add(EventBatch(["k"], np.zeros(4, dtype=np.int64), np.array([0, 0, 1, 2])))
        options = dict(full_interval=60.0, tolerance=1e-3, labelled=np.zeros(1, dtype=bool))
        interval, _ = await training.publication([], **options)
        final, _ = await training.publication([], final=True, **options)
        executor.shutdown()
        return len(interval.snapshots), final.snapshots.records()

    published, [record] = asyncio.run(scenario())
    assert published == 0  # a snapshot is the model as its latest round left it: no round yet
    assert record["key"] == "k" and record["events"] == 4 and record["categories"] == LABELS


def test_rows_taken_for_the_state_topics_by_a_cancelled_task_are_taken_again(tmp_path):
    async def scenario():
        training, executor = _training(tmp_path)
        training.ingest.add(EventBatch(["k", "j"], np.array([0, 1]), np.array([0, 2])))
        await training.train_round()
        gate = threading.Event()
        executor.submit(gate.wait)                   # the thread is busy: the take waits behind it
        take = asyncio.create_task(training.take_changed_rows())
        await asyncio.sleep(0.05)
        take.cancel()
        gate.set()
        try:
            await take
        except asyncio.CancelledError:
            pass
        rows, _, _ = await training.take_changed_rows()
        executor.shutdown()
        return sorted(rows.tolist())

    assert asyncio.run(scenario()) == [0, 1]


def test_restored_keys_judge_their_next_events_against_their_restored_newest_times(tmp_path):
    async def scenario():
        training, executor = _training(tmp_path, lateness_ms=60_000)
        elsewhere = GumbelGAN(GANConfig(n_categories=3), 1)  # the key as another instance left it
        elsewhere.observe(np.array([[3.0, 1.0, 0.0]]), newest=np.array([1_796_637_600_000]))
        codec = RowCodec(LABELS)  # as a state row carries it
        state = codec.decode(codec.encode(KeyRows(np.array([3]), [LABELS], {3: read_rows(elsewhere, np.array([0]))}),
                                          versions=[4])).state
        rows = training.keys.rows(["k"], 1000.0)
        await training.restore_rows(rows, state, np.array([4]))
        counted = training.ingest.add(EventBatch(["k"], np.zeros(2, dtype=np.int64), np.array([0, 1]),
                                                 times=np.array([1_796_637_500_000, 1_796_637_590_000])))
        await training.train_round()
        executor.shutdown()
        return counted, training.learner.newest_times(1).tolist()

    counted, newest = asyncio.run(scenario())
    assert counted == 1  # 100 s before the key's newest time: late, though this instance never saw the key
    assert newest == [1_796_637_600_000]
