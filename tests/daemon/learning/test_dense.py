import numpy as np
import pytest
import torch

from daemon.learning.dense import BLOCK_STEPS, DenseLearner
from daemon.snapshots import Eviction
from daemon.timestamps import rfc3339
from gumbel_models import GANConfig, GumbelGAN, total_variation

LABELS = ["a", "b", "c", "d"]
UNIFORM = [250.0, 250.0, 250.0, 250.0]      # learned starts uniform: settled from the start
SKEWED = [9000.0, 1000.0, 0.0, 0.0]         # far from uniform: something to learn


class FakeTime:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _absorb(learner: DenseLearner, counts) -> None:
    """Count ``counts`` ``[rows, K]`` into rows ``0 … rows − 1``, growing to them."""
    counts = np.asarray(counts, dtype=np.float64)
    learner.grow(counts.shape[0])
    touched = np.flatnonzero(counts.sum(axis=1))
    if len(touched):
        learner.observe(touched, counts[touched])


def _learner(rows, *, active_set=True, step_seconds=1.0, round_seconds=3.0, max_step_cells=1 << 20,
             samples_per_step=64, clock=None):
    """A learner over ``rows`` (event counts per key), whose model takes ``step_seconds`` of fake time per
    step call (one chunk of ``BLOCK_STEPS`` steps); returns it, the timer and a list of the stepped rows."""
    timer, stepped = FakeTime(), []
    model = GumbelGAN(GANConfig(n_categories=len(LABELS), samples_per_step=samples_per_step), 0, seed=3,
                      device="cpu")
    step = model.step

    def timed_step(n_steps=1, rows=None, samples=None, lr_scale=1.0):
        timer.now += step_seconds
        stepped.append(None if rows is None else rows.tolist())
        return step(n_steps, rows=rows, samples=samples, lr_scale=lr_scale)

    model.step = timed_step
    learner = DenseLearner(model, LABELS, round_seconds=round_seconds, active_set=active_set,
                           max_step_cells=max_step_cells, clock=clock or FakeTime(1000.0), timer=timer)
    _absorb(learner, rows)
    return learner, timer, stepped


def test_a_round_passes_over_a_doubling_prefix_of_the_plan_until_its_time_budget():
    # one key per chunk, so a plan has three chunks: passes over the first one, two, then three
    counts = [SKEWED, SKEWED[::-1], [5000.0, 0.0, 5000.0, 0.0]]
    learner, timer, stepped = _learner(counts, round_seconds=6.0, max_step_cells=1)
    order = [rows.tolist() for rows, _, _ in learner._plan().chunks]
    stats = learner.train()
    first, second, third = order
    assert stepped == [first, first, second, first, second, third]
    assert stats.steps == 6 * BLOCK_STEPS and stats.key_steps == 6 * BLOCK_STEPS
    assert stats.seconds == 6.0 and timer.now == 6.0
    assert learner.model.key_steps().sum().item() == 6 * BLOCK_STEPS
    # the budget runs out inside a pass
    learner, timer, stepped = _learner(counts, round_seconds=4.0, max_step_cells=1)
    stats = learner.train()
    assert stepped == [first, first, second, first] and stats.seconds == 4.0 == timer.now


def test_a_step_longer_than_the_budget_ends_the_round_after_it():
    learner, _, stepped = _learner([SKEWED, SKEWED], round_seconds=0.5, step_seconds=10.0, max_step_cells=1)
    stats = learner.train()
    assert len(stepped) == 1 and stats.steps == BLOCK_STEPS and stats.seconds == 10.0


def test_active_set_steps_only_unsettled_keys():
    learner, _, stepped = _learner([UNIFORM, SKEWED, [0.0] * 4])
    stats = learner.train()
    assert stepped == [[1], [1], [1]]
    assert learner.model.key_steps().tolist() == [0, 3 * BLOCK_STEPS, 0]
    assert (stats.steps, stats.key_steps, stats.active, stats.settled) == (3 * BLOCK_STEPS, 3 * BLOCK_STEPS, 1, 1)
    # news that move the settled key's histogram wake it
    _absorb(learner, [SKEWED, [0.0] * 4, [0.0] * 4])
    learner.train()
    assert learner.model.key_steps()[0].item() > 0


def test_a_settled_model_does_zero_steps():
    learner, timer, stepped = _learner([UNIFORM, [100.0, 100.0, 100.0, 100.0]])
    stats = learner.train()
    assert stepped == [] and timer.now == 0.0
    assert (stats.steps, stats.key_steps, stats.active, stats.settled) == (0, 0, 0, 2)
    assert learner.model.t == 0 and learner.model.key_steps().tolist() == [0, 0]
    # nor does one without any events
    empty, _, stepped = _learner([[0.0] * 4])
    assert empty.train().steps == 0 and stepped == []


def test_all_keys_mode_steps_every_key_with_events():
    learner, _, stepped = _learner([UNIFORM, SKEWED, [0.0] * 4], active_set=False)
    stats = learner.train()
    assert stepped == [[0, 1]] * 3
    assert learner.model.key_steps().tolist() == [3 * BLOCK_STEPS, 3 * BLOCK_STEPS, 0]
    assert (stats.key_steps, stats.active, stats.settled) == (6 * BLOCK_STEPS, 2, 0)


def _counts(n_keys, seed):
    rng = np.random.default_rng(seed)
    sizes = [10, 100, 1000, 10**6]  # masses that need 16 to 256 samples per step
    return [rng.multinomial(sizes[i % len(sizes)], rng.dirichlet(np.ones(len(LABELS)) * 0.5)).astype(float)
            for i in range(n_keys)]


@pytest.mark.parametrize("active_set", [True, False])
@pytest.mark.parametrize("max_step_cells", [1, 3 * 64 * 4, 1000, 1 << 20])
def test_max_step_cells_bounds_the_keys_per_chunk(active_set, max_step_cells):
    learner, _, _ = _learner(_counts(23, seed=5) + [[0.0] * 4], active_set=active_set,
                             max_step_cells=max_step_cells, samples_per_step=64)
    plan = learner._plan()
    k = len(LABELS)
    assert plan.chunks
    for rows, samples, _ in plan.chunks:
        assert rows.numel() == 1 or rows.numel() * samples * k <= max_step_cells
        assert rows.numel() == max(1, min(rows.numel(), max_step_cells // (samples * k)))
    chosen = torch.cat([rows for rows, _, _ in plan.chunks]).tolist()
    assert len(chosen) == len(set(chosen)) == plan.active   # every planned key once
    assert 23 not in chosen                                 # never a key without events
    if not active_set:
        assert sorted(chosen) == list(range(23)) and {m for _, m, _ in plan.chunks} == {64}
    if max_step_cells == 3 * 64 * 4 and not active_set:
        assert [rows.numel() for rows, _, _ in plan.chunks] == [3] * 7 + [2]


def test_active_set_samples_follow_the_needed_precision():
    learner, _, _ = _learner(_counts(8, seed=1), samples_per_step=256)
    plan = learner._plan()
    by_row = {row: m for rows, m, _ in plan.chunks for row in rows.tolist()}
    assert by_row and set(by_row.values()) <= {32, 64, 128, 256}
    assert by_row.get(3, 256) == 256 and by_row.get(0, 32) == 32   # 10**6 events vs 10 events (min_samples_per_step)


# -- publication ------------------------------------------------------------------------------
def _publish(learner, names, tolerance=1e-3, full_interval=60.0, labelled=None, evictions=()):
    labelled = np.ones(len(names), dtype=bool) if labelled is None else labelled
    named = np.array([name is not None for name in names], dtype=bool)
    publication, worst = learner.publication(names, named, list(evictions), full_interval=full_interval,
                                             tolerance=tolerance, labelled=labelled)
    batch = publication.snapshots
    return publication, dict(zip(batch.keys, batch.versions.tolist())), worst


def test_publication_selects_exactly_the_changed_keys_and_versions_go_up_by_one():
    clock = FakeTime(1000.0)
    rows = [UNIFORM, [25.0] * 4, [0.0, 0.0, 5.0, 5.0], [1.0] * 4, [0.0] * 4]
    learner, _, stepped = _learner(rows, clock=clock, round_seconds=1.0)
    names = ["a", "b", "c", None, "e"]   # row 3 is free (its key left), e has no events yet
    learner.train()  # one chunk of steps, on c: a, b and row 3 are settled
    assert stepped == [[2]]
    publication, versions, _ = _publish(learner, names, evictions=[Eviction("gone", "ttl", "x")])
    assert versions == {"a": 1, "b": 1, "c": 1}
    batch = publication.snapshots
    assert publication.evictions == [Eviction("gone", "ttl", "x")]
    assert batch.events.tolist() == [1000, 100, 10]
    assert batch.steps.tolist() == [0, 0, BLOCK_STEPS]
    assert batch.published_at == rfc3339(1000.0) == "1970-01-01T00:16:40.000Z"
    assert np.allclose(batch.learned, learner.model.probabilities()[:3].double().numpy(), atol=1e-6)
    assert np.allclose(batch.learned.sum(axis=1), 1.0, atol=1e-12)
    assert np.allclose(batch.empirical, [[0.25] * 4, [0.25] * 4, [0, 0, 0.5, 0.5]])

    assert _publish(learner, names)[1] == {}                    # nothing changed: nothing published

    _absorb(learner, [[0.0] * 4, [1.0, 0, 0, 0], [0.0] * 4, [0.0] * 4, [0.0] * 4])
    publication, versions, _ = _publish(learner, names)
    assert versions == {"b": 2} and publication.snapshots.events.tolist() == [101]
    assert _publish(learner, names)[1] == {}

    clock.now = 1059.9
    assert _publish(learner, names)[1] == {}
    clock.now = 1060.0                                          # a, b and c were published at 1000
    assert _publish(learner, names)[1] == {"a": 2, "b": 3, "c": 2}
    clock.now = 1119.9
    assert _publish(learner, names)[1] == {}
    assert _publish(learner, names, full_interval=59.9)[1] == {"a": 3, "b": 4, "c": 3}
    assert learner.versions.tolist() == [3, 4, 3, 0, 0]


def _moved_after_publish():
    """A learner whose key "b" trained one chunk after its first publish, and how far (TV) it moved."""
    learner, _, stepped = _learner([UNIFORM, [0.0, 0.0, 5.0, 5.0]], round_seconds=1.0)
    assert _publish(learner, ["a", "b"])[1] == {"a": 1, "b": 1}
    before = learner.model.probabilities().clone()
    learner.train()
    assert stepped == [[1]]
    moved = total_variation(learner.model.probabilities(), before).tolist()
    assert moved[0] == 0 and moved[1] > 0
    return learner, moved[1]


def test_publication_republishes_a_key_whose_learned_probabilities_moved_more_than_the_tolerance():
    learner, moved = _moved_after_publish()
    assert _publish(learner, ["a", "b"], tolerance=1.01 * moved)[1] == {}
    learner, again = _moved_after_publish()
    assert again == moved  # fixed seed: the same move
    assert _publish(learner, ["a", "b"], tolerance=0.99 * moved)[1] == {"b": 2}
    assert _publish(learner, ["a", "b"], tolerance=0.0)[1] == {}  # not moved since: nothing


def test_a_move_too_small_to_publish_stays_a_candidate_until_published():
    """A key may settle with no step after a publication that found it moved too little: its final
    state must still go out, so it is compared again at the next publication."""
    learner, moved = _moved_after_publish()
    assert _publish(learner, ["a", "b"], tolerance=1.01 * moved)[1] == {}
    assert _publish(learner, ["a", "b"], tolerance=0.99 * moved)[1] == {"b": 2}  # no training in between
    assert _publish(learner, ["a", "b"], tolerance=0.0)[1] == {}


def test_reset_rows_restart_their_version_and_counts():
    clock = FakeTime(1000.0)
    learner, _, _ = _learner([SKEWED, SKEWED], clock=clock)
    names = ["a", "b"]
    learner.train()
    assert _publish(learner, names)[1] == {"a": 1, "b": 1}
    _absorb(learner, [[0.0] * 4, [1.0, 0.0, 0.0, 0.0]])
    assert _publish(learner, names)[1] == {"b": 2}
    # b left, "new" took its row, with events of its own
    learner.reset([1])
    _absorb(learner, [[0.0] * 4, [0.0, 0.0, 3.0, 0.0]])
    publication, versions, _ = _publish(learner, ["a", "new"])
    assert versions == {"new": 1}
    assert publication.snapshots.events.tolist() == [3] and publication.snapshots.steps.tolist() == [0]
    assert publication.snapshots.empirical.tolist() == [[0.0, 0.0, 1.0, 0.0]]
    # a freed row that no key took yet is reset and never published
    learner.reset([0])
    clock.now += 3600.0
    assert _publish(learner, [None, "new"])[1] == {"new": 2}
    assert learner.versions.tolist() == [0, 2]


@pytest.mark.parametrize("labelled, worst_of", [([True, False, False, False, False], [1, 2]),
                                                ([True, True, False, False, False], [2]),
                                                ([False, False, False, False, False], [0, 1, 2]),
                                                ([True, True, True, False, False], [])])
def test_worst_divergence_is_over_live_keys_without_series_of_their_own(labelled, worst_of):
    # row 3 is free (with the events of the key that left), row 4 has no events: neither counts
    learner, _, _ = _learner([SKEWED, [10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 5.0, 5.0], [0.0, 9.0, 0.0, 1.0],
                              [0.0] * 4], round_seconds=2.0)
    learner.train()
    divergence = learner.model.divergences()
    _, _, worst = _publish(learner, ["a", "b", "c", None, "e"], labelled=np.array(labelled))
    if not worst_of:
        assert worst == {}
    for measure in ("tv", "kl", "js") if worst_of else ():
        assert worst[measure] == pytest.approx(max(divergence[measure][worst_of].tolist()))
