"""The learner: open categories (supports that grow, size-class moves, snapshots over each key's
support, checkpoint state) and fixed ones (one class over the whole table). Seeds are fixed;
tolerances are stated per test."""
import numpy as np
import torch
from prometheus_client import CollectorRegistry

from daemon.categories import CategoryTable
from daemon.event_time import Watermarks
from daemon.events import EventBatch
from daemon.learning.full_supports import FullSupports
from daemon.learning.ingest import BadEventLog, Ingest
from daemon.learning.keys import KeyTable
from daemon.learning.pending import Pending, RowEvents, SparseCounts
from daemon.learning.learner import Learner
from daemon.learning.supports import Supports
from daemon.state.changelog.open_rows import OpenRowCodec
from daemon.metrics import Metrics
from daemon.sinks.local import DeadLetterFile
from daemon.state.checkpoint import CheckpointStore
from gumbel_models import GANConfig, GumbelGAN
from gumbel_models.histogram import NO_TIME

WIDTH = 8


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _learner(table=None, clock=None):
    table = table or CategoryTable(max_categories=1000)
    return Learner(GANConfig(n_categories=WIDTH), table, Supports(smallest=WIDTH), seed=0, device="cpu",
                   round_seconds=0.05, clock=clock or FakeClock()), table


def _pending(table, events: dict[int, dict[str, int]]) -> Pending:
    """``{key row: {label: count}}`` as the sparse cells ingest hands over."""
    counts = SparseCounts(width=table.max_categories)
    for row, by_label in events.items():
        for label, n in by_label.items():
            counts.add(np.full(n, row), np.full(n, table.index(label)))
    return Pending(max(events) + 1, counts.take())


def _snapshots(learner, names, clock) -> dict[str, dict]:
    clock.now += 100.0  # past publish_full_interval: every key is due
    publication, _ = learner.publication(names, np.ones(len(names), bool), [], full_interval=10.0, tolerance=0.0,
                                         labelled=np.zeros(len(names), bool))
    return {r["key"]: r for r in publication.snapshots.records()}


def _train(learner, pending, rounds):
    learner.train(pending)
    for _ in range(rounds):
        learner.train(Pending(0, None, []))


def test_a_new_category_mid_stream_appears_at_the_end_and_converges():
    clock = FakeClock()
    learner, table = _learner(clock=clock)
    _train(learner, _pending(table, {0: {"x": 600, "y": 300}, 1: {"z": 50, "x": 50}}), 60)
    first = _snapshots(learner, ["k0", "k1"], clock)
    assert first["k0"]["categories"] == ["x", "y"] and first["k1"]["categories"] == ["x", "z"]
    _train(learner, _pending(table, {0: {"w": 100, "x": 0, "y": 0}}), 0)
    for _ in range(200):  # the stream goes on, the new category with it (60 : 30 : 10)
        _train(learner, _pending(table, {0: {"x": 60, "y": 30, "w": 10}}), 1)
    snap = _snapshots(learner, ["k0", "k1"], clock)["k0"]
    assert snap["categories"] == ["x", "y", "w"], "a key's list grows at its end"
    assert len(snap["probabilities"]) == len(snap["empirical"]) == 3
    p, e = np.array(snap["probabilities"]), np.array(snap["empirical"])
    assert abs(p.sum() - 1) < 1e-5
    # converged like any category: within 0.01 of the counts (counting noise here is ~0.005)
    assert abs(p[2] - e[2]) < 0.01 and 0.5 * np.abs(p - e).sum() < 0.01, (p, e)


def test_a_key_moving_to_a_wider_class_keeps_its_learned_probabilities():
    clock = FakeClock()
    learner, table = _learner(clock=clock)
    labels = [f"c{i}" for i in range(WIDTH)]
    _train(learner, _pending(table, {0: {label: 100 * (i + 1) for i, label in enumerate(labels)}}), 40)
    model = learner.classes[WIDTH].model
    before = model.probabilities(rows=torch.tensor([0]))[0].double()
    learner.absorb(_pending(table, {0: {"new": 1}}))          # a ninth category: the key moves to width 16
    assert int(learner.supports.width[0]) == 16
    after = learner.classes[16].model.probabilities(rows=torch.tensor([int(learner.supports.row[0])]))[0].double()
    # the new category starts at logit 0; over the old support the distribution is the one it had
    old = after[:WIDTH] / after[:WIDTH].sum()
    assert torch.allclose(old, before, atol=1e-6), (old, before)
    assert after[WIDTH + 1:].abs().max().item() == 0.0, "padding has probability exactly 0"
    assert int(learner.classes[16].model.histogram.events[int(learner.supports.row[0])]) == 100 * 36 + 1
    assert not bool(learner.classes[WIDTH].model.histogram.has_data()[0]), "the old row was reset"


def test_a_checkpoint_round_trip_keeps_grown_supports(tmp_path):
    clock = FakeClock()
    learner, table = _learner(clock=clock)
    rng = np.random.default_rng(0)
    events = {row: {f"c{j}": int(n) for j, n in enumerate(rng.multinomial(500, rng.dirichlet(np.ones(s))))}
              for row, s in enumerate([3, 9, 20, 40])}
    _train(learner, _pending(table, events), 20)
    store = CheckpointStore(tmp_path)
    store.save({"learner": learner.state_dict()})
    restored, restored_table = _learner(table=CategoryTable(max_categories=1000), clock=clock)
    restored.load_state_dict(store.load()["learner"])
    assert restored_table.labels == table.labels
    names = ["a", "b", "c", "d"]
    expected, got = _snapshots(learner, names, clock), _snapshots(restored, names, clock)
    for name in names:
        assert got[name]["categories"] == expected[name]["categories"]
        assert np.allclose(got[name]["probabilities"], expected[name]["probabilities"], atol=1e-7)
        assert got[name]["events"] == expected[name]["events"] == 500
    assert set(restored.classes) == set(learner.classes) and len(learner.classes) >= 3
    restored.absorb(_pending(restored_table, {1: {"c0": 5, "fresh": 5}}))   # supports keep growing after it
    assert len(restored.supports.support(1)) == len(learner.supports.support(1)) + 1


def test_released_keys_free_their_rows_and_are_not_published():
    clock = FakeClock()
    learner, table = _learner(clock=clock)
    _train(learner, _pending(table, {0: {"x": 10}, 1: {"y": 10}}), 2)
    learner.absorb(Pending(2, None, [0]))
    snapshots = _snapshots(learner, [None, "b"], clock)
    assert list(snapshots) == ["b"]
    learner.absorb(_pending(table, {2: {"z": 3}}))
    assert int(learner.supports.row[2]) == 0, "a new key takes the freed row"
    assert int(learner.classes[WIDTH].model.histogram.events[0]) == 3, "and starts afresh"


def test_rows_through_the_state_topic_codec_land_in_another_table_under_their_labels():
    """A key handed over: the receiving instance numbers the labels otherwise, probabilities go by label."""
    clock = FakeClock()
    learner, table = _learner(clock=clock)
    rng = np.random.default_rng(1)
    events = {row: {f"c{j}": int(n) for j, n in enumerate(rng.multinomial(400, rng.dirichlet(np.ones(s))))}
              for row, s in enumerate([4, 12, 30])}
    _train(learner, _pending(table, events), 20)
    key_rows, rows, versions = learner.take_changed_rows()
    assert sorted(key_rows.tolist()) == [0, 1, 2] and len(learner.take_changed_rows()[0]) == 0, "taken once"
    learner.mark_changed(key_rows[:1])
    assert learner.take_changed_rows()[0].tolist() == key_rows[:1].tolist(), "a failed write is taken again"

    other_table = CategoryTable(max_categories=1000)
    other_table.indices(["elsewhere", "c7", "c2"])   # the receiver met some labels first, in its own order
    codec = OpenRowCodec(other_table)
    decoded = codec.decode(codec.encode(rows, versions))
    assert decoded.bad == []
    local, refused = codec.localise(decoded.state)
    assert refused == []
    receiver, _ = _learner(table=other_table, clock=clock)
    receiver.restore_rows(key_rows + 3, local, decoded.versions)   # key k at row k + 3 there
    names = ["k0", "k1", "k2"]
    sent = _snapshots(learner, names, clock)
    got = _snapshots(receiver, [None, None, None, "k0", "k1", "k2"], clock)
    for name in names:
        assert got[name]["categories"] == sent[name]["categories"], "the key's own order is kept"
        assert got[name]["probabilities"] == sent[name]["probabilities"], "bit for bit (float32 rows)"
        assert got[name]["events"] == sent[name]["events"] == 400
    receiver.absorb(_pending(other_table, {4: {"c0": 3, "new": 2}}))  # k1 grows on at the receiver
    assert [other_table.labels[c] for c in receiver.supports.support(4)][-1] == "new"


def test_fixed_categories_are_one_class_over_the_whole_table_and_older_checkpoints_load_into_it():
    labels = ["a", "b", "c"]
    model = GumbelGAN(GANConfig(n_categories=3, samples_per_step=16), 4, seed=3)
    model.observe(torch.tensor([[5.0, 1.0, 0.0], [0.0, 2.0, 2.0], [1.0, 1.0, 1.0], [0.0, 0.0, 9.0]]))
    model.step(5)
    saved = {"model": model.state_dict(), "versions": torch.tensor([1, 2, 3, 4])}  # one model, before size classes
    table = CategoryTable(len(labels))
    table.indices(labels)
    learner = Learner(GANConfig(n_categories=3), table, FullSupports(3), device="cpu")
    learner.load_state_dict(saved)
    assert set(learner.classes) == {3} and learner.classes[3].versions.tolist() == [1, 2, 3, 4]
    assert torch.equal(learner.classes[3].model.probabilities(), model.probabilities())
    assert learner.supports.support(2).tolist() == [0, 1, 2] and table.labels == labels
    again = Learner(GANConfig(n_categories=3), table, FullSupports(3), device="cpu")
    again.load_state_dict(learner.state_dict())
    assert torch.equal(again.classes[3].model.probabilities(), model.probabilities())


def test_a_checkpoint_taken_before_any_event_loads_again():
    table = CategoryTable(3)
    table.indices(["a", "b", "c"])
    saved = Learner(GANConfig(n_categories=3), table, FullSupports(3), device="cpu").state_dict()
    assert saved["classes"] == {}  # a class is made at its first key's events
    again = Learner(GANConfig(n_categories=3), table, FullSupports(3), device="cpu")
    again.load_state_dict(saved)
    assert again.classes == {} and again.steps_taken == 0


def _replay(tmp_path, events, batch_size: int, batches_per_take: int, marks: list[int]) -> dict[int, tuple]:
    """Feed ``events`` (keys, categories, times) through ingest and the learner in batches of
    ``batch_size``, taking every ``batches_per_take`` batches; the histograms and clocks at ``marks``."""
    table = CategoryTable(3)
    table.indices(["a", "b", "c"])
    learner = Learner(GANConfig(n_categories=3, half_life_ms=60_000.0), table, FullSupports(3), device="cpu")
    ingest = Ingest(KeyTable(10), ["a", "b", "c"], metrics=Metrics(CollectorRegistry(), max_key_labels=10,
                                                                 clock=lambda: 0.0),
                    dead_letters=DeadLetterFile(tmp_path / "dead.jsonl"), bad_log=BadEventLog(10.0, clock=lambda: 0.0),
                    clock=lambda: 0.0, watermarks=Watermarks(None), half_life_ms=60_000.0)
    keys, categories, times = events
    seen = {}
    for n, start in enumerate(range(0, len(keys), batch_size)):
        stop = min(len(keys), start + batch_size)
        ingest.add(EventBatch(["k0", "k1", "k2"], keys[start:stop], categories[start:stop], times=times[start:stop]))
        if (n + 1) % batches_per_take == 0 or stop in marks:
            learner.absorb(ingest.take())
        if stop in marks:
            h = learner.classes[3].model.histogram
            seen[stop] = (h.counts[:3].clone(), h.newest[:3].clone(), h.events[:3].clone())
    return seen


def test_a_replay_at_another_speed_counts_the_same_histograms_at_each_offset(tmp_path):
    rng = np.random.default_rng(7)
    n = 6000
    keys = rng.choice(3, n, p=[0.7, 0.25, 0.05])  # keys at rates 14× apart
    times = 1_796_000_000_000 + np.sort(rng.integers(0, 1_800_000, n)) + rng.integers(-20_000, 20_000, n)
    categories = rng.integers(0, 3, n)
    marks = [1500, 3000, 4500, 6000]
    # live: small polls, a take every 2; replay: large polls, a take every poll
    live = _replay(tmp_path, (keys, categories, times), 10, 2, marks)
    fast = _replay(tmp_path, (keys, categories, times), 500, 1, marks)
    for mark in marks:
        (c1, t1, e1), (c2, t2, e2) = live[mark], fast[mark]
        assert torch.equal(t1, t2) and torch.equal(e1, e2)
        torch.testing.assert_close(c1, c2, rtol=1e-12, atol=0)  # float64 sums of the same terms in another order
    # and they are the definition: each event weighs 2^(−(T − t)/h), T its key's newest time
    for key in range(3):
        own = keys == key
        weights = np.exp2((times[own] - times[own].max()) / 60_000.0)
        expected = np.bincount(categories[own], weights=weights, minlength=3)
        np.testing.assert_allclose(live[6000][0][key].numpy(), expected, rtol=1e-12)


def test_the_newest_event_times_of_every_key_row_come_back_from_a_checkpoint():
    table = CategoryTable(max_categories=1000)
    learner = Learner(GANConfig(n_categories=WIDTH), table, Supports(smallest=WIDTH), device="cpu")
    counts = SparseCounts(width=table.max_categories)
    labels = [f"c{i}" for i in range(12)]  # key row 1 outgrows the narrowest class
    counts.add(np.array([0, 0] + [1] * 12), table.indices(["x", "y"] + labels))
    cells = counts.take()
    learner.absorb(Pending(3, cells, [], RowEvents(np.array([0, 1]), np.array([2, 12]), np.array([5_000, 9_000]))))
    assert learner.newest_times(3).tolist() == [5_000, 9_000, NO_TIME]
    again = Learner(GANConfig(n_categories=WIDTH), table, Supports(smallest=WIDTH), device="cpu")
    again.load_state_dict(learner.state_dict())
    assert again.newest_times(3).tolist() == [5_000, 9_000, NO_TIME]


def test_a_snapshot_is_as_of_its_keys_watermark_and_of_nothing_without_event_times():
    clock = FakeClock()
    table = CategoryTable(3)
    table.indices(["a", "b", "c"])
    learner = Learner(GANConfig(n_categories=3), table, FullSupports(3), device="cpu", lateness_ms=60_000, clock=clock)
    counts = SparseCounts(width=3)
    counts.add(np.array([0, 0, 1]), np.array([0, 1, 2]))
    learner.absorb(Pending(2, counts.take(), [],
                           RowEvents(np.array([0, 1]), np.array([2, 1]), np.array([1_796_637_600_000, NO_TIME]))))
    snapshots = _snapshots(learner, ["timed", "untimed"], clock)
    assert snapshots["timed"]["as_of"] == "2026-12-07T09:59:00.000Z"  # its newest event, less a minute
    assert snapshots["untimed"]["as_of"] is None
