"""The checkpoint protocol's outcome: what it saves, when a commit counts as durable, how a failure shows.

The whole protocol runs against the real broker in tests/daemon/sources/kafka and tests/daemon/state (kill -9, hand-overs); here
its collaborators are small stand-ins, so each outcome can be forced.
"""
import asyncio

from aiokafka.errors import RebalanceInProgressError

from daemon.health import Health
from daemon.state.checkpointing import FINAL_COMMIT_ATTEMPTS, Checkpointer


class Source:
    def __init__(self, failures: int) -> None:
        self.failures, self.commits = failures, []

    def position(self) -> dict:
        return {"offsets": {"events:0": 42}}

    async def commit(self, offsets: dict) -> None:
        self.commits.append(offsets)
        if len(self.commits) <= self.failures:
            raise RebalanceInProgressError()


class Store:
    def __init__(self, error: OSError | None = None) -> None:
        self.error, self.saved = error, []

    def save(self, state: dict) -> None:
        if self.error is not None:
            raise self.error
        self.saved.append(state)


class Keys:
    def state(self) -> dict:
        return {"names": ["k"]}


class Publisher:
    def state(self) -> list:
        return []  # evictions not yet delivered


class Training:
    """The owner of the learner and the key table, as a checkpoint uses it."""

    def __init__(self) -> None:
        self.keys, self.learner, self.lock, self.held = Keys(), Stub(), asyncio.Lock(), False

    def hold_counts(self):
        self.held = True
        return "pending"

    def release_counts(self) -> None:
        self.held = False

    async def absorb(self, pending) -> None:
        assert self.held, "counts taken for a checkpoint are held until its copy is made"

    async def learner_state(self) -> dict:
        return {"model": "state"}


class Stub:
    """Learner, dead letters and metrics at once: each is asked little."""
    revision = 1
    name = "a stand-in"

    async def flush(self) -> None:
        pass

    def __getattr__(self, name):  # metrics: checkpoint_written, checkpoint_failed, checkpoint_current
        return lambda *args: None


def _checkpointer(source: Source, store: Store, health: Health, handover=None) -> Checkpointer:
    stub = Stub()
    return Checkpointer(["a", "b"], training=Training(), publisher=Publisher(), source=source, dead_letters=stub,
                        store=store, handover=handover, metrics=stub, health=health)


class StateTopicTimingOut:
    async def write(self, names, position) -> None:
        raise asyncio.TimeoutError


async def test_a_checkpoint_saves_the_state_with_its_offsets_then_commits_them():
    source, store, health = Source(failures=0), Store(), Health()
    assert await _checkpointer(source, store, health).checkpoint() is True
    assert store.saved[0]["source"] == {"offsets": {"events:0": 42}} and store.saved[0]["learner"] == {"model": "state"}
    assert source.commits == [{"events:0": 42}]


async def test_the_final_commit_is_tried_again_while_the_group_rebalances():
    source = Source(failures=FINAL_COMMIT_ATTEMPTS - 1)
    assert await _checkpointer(source, Store(), Health()).checkpoint(final=True) is True
    assert len(source.commits) == FINAL_COMMIT_ATTEMPTS


async def test_a_commit_that_keeps_failing_is_not_durable_and_an_interval_commit_is_tried_once():
    source = Source(failures=10)
    checkpointer = _checkpointer(source, Store(), Health())
    assert await checkpointer.checkpoint() is False and len(source.commits) == 1
    assert await checkpointer.checkpoint(final=True) is False and len(source.commits) == 1 + FINAL_COMMIT_ATTEMPTS


async def test_a_failed_save_turns_readyz_503_with_its_cause_until_a_checkpoint_is_written(caplog):
    store, health = Store(OSError(28, "No space left on device")), Health()
    checkpointer = _checkpointer(Source(failures=0), store, health)
    assert await checkpointer.checkpoint() is False
    assert health.ready() == (False, ["checkpoint: the last checkpoint failed saving the checkpoint file: "
                                      "OSError: [Errno 28] No space left on device"])
    assert "checkpoint failed, will retry at the next interval: saving the checkpoint file: OSError" in caplog.text
    store.error = None
    assert await checkpointer.checkpoint(final=True) is True
    assert health.ready() == (True, [])


async def test_a_state_topic_that_times_out_says_kafka_in_readyz_and_nothing_is_saved():
    store, health = Store(), Health()
    checkpointer = _checkpointer(Source(failures=0), store, health, handover=StateTopicTimingOut())
    assert await checkpointer.checkpoint() is False
    assert health.ready() == (False, ["checkpoint: the last checkpoint failed writing the state topic to Kafka: "
                                      "TimeoutError"])
    assert store.saved == []
