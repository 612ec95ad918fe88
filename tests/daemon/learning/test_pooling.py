"""A running learner's pooled prior (daemon.learning.pooling): fitted on the training thread, set
when it moved, and what it does to a key with few events. Seeds are fixed; tolerances stated."""
import numpy as np
import pytest
import torch

from daemon.categories import CategoryTable
from daemon.learning.full_supports import FullSupports
from daemon.learning.pending import Pending, SparseCounts
from daemon.learning.learner import Learner
from daemon.learning.pooling import PriorClass, PriorRefresh
from daemon.learning.supports import Supports
from gumbel_models import GANConfig, GumbelGAN, total_variation

MEAN = np.array([0.4, 0.3, 0.2, 0.1])


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FitMetrics:
    """What a refresh tells the metrics: each fit set, ``(concentration, share)``, and each fit rejected."""

    def __init__(self) -> None:
        self.fits: list[tuple[float, float]] = []
        self.rejected = 0

    def prior_fitted(self, concentration, share):
        self.fits.append((concentration, share))

    def prior_rejected(self):
        self.rejected += 1


def _population(keys: int, events: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multinomial(events, rng.dirichlet(30.0 * MEAN, size=keys)).astype(np.float64)


def test_a_refresh_fits_every_interval_and_sets_the_prior_only_when_it_moved():
    model = GumbelGAN(GANConfig(n_categories=4), 500, seed=0, device="cpu")
    model.observe(_population(500, 50, seed=1))
    timer, metrics = Timer(), FitMetrics()
    fits = metrics.fits
    refresh = PriorRefresh(interval=10.0, sample_keys=1000, metrics=metrics, timer=timer)  # every key: same fit
    classes = [PriorClass(model)]
    assert refresh.refresh(classes, 4) and model.prior is not None
    assert fits[0][0] == refresh.prior.events and 0.2 < fits[0][1] < 0.6  # α/(50+α) with α ≈ 30
    assert np.abs(refresh.prior.mean.numpy() - MEAN).max() < 0.03 and 15 < refresh.prior.concentration < 60
    assert not refresh.refresh(classes, 4)                    # within the interval: no fit at all
    timer.now = 10.0
    first = model.prior.clone()
    assert not refresh.refresh(classes, 4) and torch.equal(model.prior, first)  # fitted again, not moved: not set
    model.observe(np.tile([0.0, 0.0, 0.0, 200.0], (500, 1)))  # the population moves to the last category
    timer.now = 20.0
    assert refresh.refresh(classes, 4) and float(refresh.prior.mean[3]) > 0.5
    assert metrics.rejected == 0  # every fit here is finite


def test_a_fit_that_is_not_finite_is_counted_and_set_aside_and_the_models_keep_their_prior():
    model = GumbelGAN(GANConfig(n_categories=4), 50, seed=0, device="cpu")
    model.observe(_population(50, 50, seed=1))
    timer, metrics = Timer(), FitMetrics()
    refresh = PriorRefresh(interval=10.0, metrics=metrics, timer=timer)
    assert refresh.refresh([PriorClass(model)], 4)
    first = model.prior.clone()
    model.histogram.counts[3, 0] = float("inf")  # nothing in the service makes one: this stands for a bug
    timer.now = 10.0
    assert not refresh.refresh([PriorClass(model)], 4)
    assert metrics.rejected == 1 and torch.equal(model.prior, first) and refresh.last_fit.finite


def test_refits_on_other_samples_of_one_population_keep_the_prior_the_models_have():
    """3,000 keys around MEAN (seed 4), fitted on 1,000 of them drawn afresh at each of 20 refreshes:
    each sample's mean differs from the last by more than the 0.002 TV tolerance, but within the
    fits' noise, so the models keep their first prior and no key is woken for nothing."""
    model = GumbelGAN(GANConfig(n_categories=4), 3000, seed=0, device="cpu")
    model.observe(_population(3000, 20, seed=4))
    timer = Timer()
    refresh = PriorRefresh(interval=10.0, sample_keys=1000, timer=timer)
    assert refresh.refresh([PriorClass(model)], 4)
    first, shifts, last = model.prior, [], refresh.prior
    for i in range(1, 21):
        timer.now = 10.0 * i
        assert not refresh.refresh([PriorClass(model)], 4)
        shifts.append(0.5 * float((refresh.last_fit.mean - last.mean).abs().sum()))
        last = refresh.last_fit
    assert model.prior is first and np.median(shifts) > 0.002, shifts


def test_with_forgetting_the_prior_weighs_in_the_same_decayed_units_as_the_events_it_joins():
    """500 keys (seed 3) around MEAN with α = 30, each fed 2,000 events in batches of 10 with a
    half-life of 50 events: a key's histogram holds ~77 decayed events (10/(1 − 2^(−10/50))), not
    2,000. The fit runs on those, so the prior's share of a key's target is α/(77 + α), about 0.3,
    where against all 2,000 events it would be 0.015. Tolerance: α within 15–120 (decayed counts are
    less noisy than a multinomial sample of their mass, which the fit reads as less spread)."""
    model = GumbelGAN(GANConfig(n_categories=4, half_life=50.0), 500, seed=0, device="cpu")
    rng = np.random.default_rng(3)
    truth = rng.dirichlet(30.0 * MEAN, size=500)
    for _ in range(200):
        model.observe(rng.multinomial(10, truth).astype(np.float64))
    fits = []

    class Metrics:
        def prior_fitted(self, concentration, share):
            fits.append((concentration, share))

    assert PriorRefresh(seed=0, metrics=Metrics()).refresh([PriorClass(model)], 4)
    mass = float(model.histogram.counts.sum(dim=-1).mean())
    concentration, share = fits[0]
    assert 70 < mass < 80 and 15 < concentration < 120, (mass, concentration)
    assert share == pytest.approx(float((concentration / (model.histogram.counts.sum(dim=-1) + concentration)).mean()))
    assert 0.15 < share < 0.65
    assert model.targets.of()[1].mean().item() == pytest.approx(mass + concentration, rel=1e-6)


def test_a_key_with_three_events_learns_near_the_population_through_the_game_and_without_a_prior_does_not():
    """300 keys of 200 events around MEAN, and key 300 with 3 events of category 3 only. With the
    pooled prior its learned distribution is within TV 0.05 of its posterior mean; without, it is its
    histogram's (TV > 0.5 from the population mean)."""
    learned = {}
    for prior in (None, PriorRefresh(seed=0)):
        table = CategoryTable(4)
        table.indices(["a", "b", "c", "d"])
        learner = Learner(GANConfig(n_categories=4), table, FullSupports(4), seed=0, device="cpu",
                          round_seconds=0.2, prior=prior)
        counts = np.vstack([_population(300, 200, seed=2), [[0.0, 0.0, 0.0, 3.0]]])
        cells = SparseCounts(width=4)
        for row, categories in enumerate(counts.astype(int)):
            cells.add(np.repeat(row, categories.sum()), np.repeat(np.arange(4), categories))
        learner.train(Pending(len(counts), cells.take()))
        for _ in range(200):
            if learner.train(Pending(0, None, [])).active == 0:
                break
        model = learner.classes[4].model
        learned[prior is None] = model.probabilities()[300].double()
        if prior is not None:
            target = (torch.tensor([0.0, 0.0, 0.0, 3.0], dtype=torch.float64) + prior.prior.pseudo_counts) \
                / (3.0 + prior.prior.events)
            assert float(total_variation(learned[False], target)) < 0.05
            assert float(total_variation(learned[False], torch.from_numpy(MEAN))) < 0.2
    assert float(total_variation(learned[True], torch.from_numpy(MEAN))) > 0.5


def test_with_open_categories_each_key_learns_the_population_over_its_own_categories():
    """Open categories (seed 0): 300 keys of 200 events around MEAN over labels a–d, each seeing
    all four, and a key with 3 events of d, then 2 of a. Its prior is the population's over the
    categories it has seen: its target is (3 + α·m_d, 2 + α·m_a)/(5 + α·(m_a + m_d)), which it
    learns within TV 0.05 through the game, and b and c, never seen, stay at 0."""
    table = CategoryTable(100)
    learner = Learner(GANConfig(n_categories=4), table, Supports(smallest=4), seed=0, device="cpu",
                      round_seconds=0.2, prior=PriorRefresh(seed=0))
    labels = np.array(["a", "b", "c", "d"])

    def events(rows, per_row_counts):
        cells = SparseCounts(width=100)
        for row, counts in zip(rows, per_row_counts.astype(int)):
            cells.add(np.repeat(row, counts.sum()), table.indices(list(np.repeat(labels, counts))))
        return cells.take()

    population = _population(300, 200, seed=2)
    learner.train(Pending(301, events(range(300), population)))
    learner.train(Pending(0, events([300], np.array([[0.0, 0.0, 0.0, 3.0]])), []))
    prior = learner.prior.prior
    assert prior is not None and np.abs(prior.mean.numpy()[table.indices(["a", "b", "c", "d"])] - MEAN).max() < 0.03
    learner.train(Pending(0, events([300], np.array([[2.0, 0.0, 0.0, 0.0]])), []))
    for _ in range(300):
        if learner.train(Pending(0, None, [])).active == 0:
            break
    width = int(learner.supports.width[300])
    model, row = learner.classes[width].model, int(learner.supports.row[300])
    support = learner.supports.support(300).tolist()
    assert [table.labels[c] for c in support] == ["d", "a"]
    a = prior.pseudo_counts.numpy()[support]
    target = (np.array([3.0, 2.0]) + a) / (5.0 + a.sum())
    learned = model.probabilities()[row].double().numpy()
    assert 0.5 * np.abs(learned[:2] - target).sum() < 0.05, (learned, target)
    assert learned[2:].sum() == 0.0  # columns it does not use (b and c, never seen)
