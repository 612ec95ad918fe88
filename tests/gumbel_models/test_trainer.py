import numpy as np
import pytest
import torch

from gumbel_models import GANConfig, GumbelGAN, TemperatureSchedule, total_variation

SEED_TRUTH = np.array([0.0, 0.0, 0.1, 0.3, 0.6])


def _model(n_keys=2, **overrides) -> GumbelGAN:
    config = GANConfig(n_categories=5, **overrides)
    return GumbelGAN(config, n_keys, seed=11, device="cpu")


def _counts(rng, truth, n):
    return np.bincount(rng.choice(len(truth), size=n, p=truth), minlength=len(truth)).astype(float)


def test_learns_the_seed_distribution_close_to_counting():
    """Fixed seeds; tolerance TV ≤ 0.01 after 4,000 steps on 50,000 events (the bench goes further)."""
    rng = np.random.default_rng(0)
    model = _model(n_keys=1)
    model.observe(_counts(rng, SEED_TRUTH, 50_000)[None])
    model.step(4000)
    learned = model.probabilities()[0].numpy()
    assert 0.5 * np.abs(learned - model.empirical()[0].numpy()).sum() < 0.01
    assert learned[:2].max() < 0.005
    assert float(model.nonfinite) == 0


def test_a_rare_category_is_learned_within_its_counting_noise():
    """A category of probability 5e-4 in 100,000 events: counting's noise on it is 7e-5. The
    weight penalty follows how often samples land on a category (gumbel_models.discriminator);
    a flat one left it near 1e-3. Tolerance: 2 of counting's standard errors, after 3,000 steps."""
    truth = np.array([0.4, 0.3, 0.2, 0.0995, 0.0005])
    model = _model(n_keys=1)
    model.observe((truth * 100_000)[None])
    model.step(3000)
    assert abs(float(model.probabilities()[0, 4]) - 5e-4) < 1.4e-4


def test_a_category_absent_for_thousands_of_steps_comes_back_when_it_appears():
    """The penalty's floor keeps an absent category within reach: after 2,000 steps on [.6 .3 .1 0 0]
    the histogram restarts on the seed's distribution; tolerance TV ≤ 0.02 after 600 steps."""
    model = _model(n_keys=1)
    model.observe(np.array([[600.0, 300, 100, 0, 0]]))
    model.step(2000)
    model.histogram.reset(torch.tensor([0]))
    model.observe((SEED_TRUTH * 10_000)[None])
    model.step(600)
    assert float(total_variation(model.probabilities()[0], torch.tensor(SEED_TRUTH, dtype=torch.float32))) < 0.02


def _assert_same_state(a: dict, b: dict, path="") -> None:
    assert a.keys() == b.keys(), path
    for name in a:
        x, y = a[name], b[name]
        if isinstance(x, dict):
            _assert_same_state(x, y, f"{path}.{name}")
        elif isinstance(x, torch.Tensor):
            assert torch.equal(x, y), f"{path}.{name} differs"
        else:
            assert x == y, f"{path}.{name} differs"


def test_restored_trainer_continues_exactly_as_if_never_stopped():
    rng = np.random.default_rng(1)
    counts = np.stack([_counts(rng, SEED_TRUTH, 1000), _counts(rng, SEED_TRUTH[::-1], 1000)])
    original = _model(half_life=5000.0)
    original.observe(counts)
    original.step(300)
    saved = original.state_dict()

    restored = _model(half_life=5000.0)
    restored.load_state_dict(saved)
    for model in (original, restored):
        model.observe(counts)
        model.step(300)
    _assert_same_state(original.state_dict(), restored.state_dict())


def test_state_of_another_shape_or_format_is_rejected():
    state = _model().state_dict()
    with pytest.raises(ValueError, match="categories"):
        GumbelGAN(GANConfig(n_categories=4), 2, device="cpu").load_state_dict(state)
    with pytest.raises(ValueError, match="format"):
        _model().load_state_dict({**state, "format": 99})


def test_masked_categories_have_probability_exactly_zero():
    model = _model(n_keys=2)
    model.set_mask([1], torch.tensor([[True, False, True, True, False]]))
    model.observe(np.array([[5.0, 5, 5, 5, 5], [5, 5, 5, 5, 5]]))  # events in masked categories are ignored
    model.step(200)
    probs = model.probabilities()
    assert float(probs[1, 1]) == 0.0 and float(probs[1, 4]) == 0.0
    assert float(model.empirical()[1, 1]) == 0.0
    assert torch.allclose(probs.sum(-1), torch.ones(2))
    assert float(probs[0].min()) > 0.0


def test_a_key_without_a_single_category_is_rejected():
    with pytest.raises(ValueError, match="at least one"):
        _model().set_mask([0], torch.zeros(1, 5, dtype=torch.bool))


def test_adding_and_removing_keys_leaves_the_others_untouched():
    rng = np.random.default_rng(2)
    model = _model(n_keys=2)
    model.observe(np.stack([_counts(rng, SEED_TRUTH, 500), _counts(rng, SEED_TRUTH, 500)]))
    model.step(50)
    before = model.state_dict()
    rows = model.add_keys(3)
    assert list(rows) == [2, 3, 4] and model.n_keys == 5
    assert torch.equal(model.generator.logits[:2], before["generator"]["logits"])
    assert torch.equal(model.d_params[:2], before["d_params"])
    assert torch.equal(model.histogram.counts[:2], before["histogram"]["counts"])
    # keys without events do not train, and training them later does not disturb the others' steps
    model.step(10)
    assert model.key_steps().tolist() == [60.0, 60.0, 0.0, 0.0, 0.0]
    kept_logits = model.generator.logits[[0, 3]].clone()
    model.remove_keys([1, 2, 4])
    assert model.n_keys == 2 and torch.equal(model.generator.logits, kept_logits)


def test_forgetting_tracks_a_drifting_stream():
    model = _model(n_keys=1, half_life=1000.0)
    model.observe(np.array([[0.0, 0, 0, 0, 10_000]]))
    model.observe(np.array([[10_000.0, 0, 0, 0, 0]]))
    assert float(model.empirical()[0, 0]) > 0.99


def test_observe_rejects_counts_of_the_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        _model().observe(np.ones((3, 5)))


def test_non_finite_updates_are_counted_and_skipped():
    model = _model(n_keys=2)
    model.observe(np.ones((2, 5)))
    model.d_params[1, 0] = float("nan")
    model.step(3)
    assert float(model.nonfinite) > 0
    assert bool(torch.isfinite(model.generator.logits[0]).all())


@pytest.mark.parametrize("kind", ["constant", "exponential", "linear", "cosine"])
def test_temperature_schedule_position_is_part_of_the_state(kind):
    schedule = TemperatureSchedule(kind, initial=1.0, minimum=0.1, rate=1e-2, steps=100)
    model = _model(temperature=schedule)
    model.observe(np.ones((2, 5)))
    model.step(40)
    restored = _model(temperature=schedule)
    restored.load_state_dict(model.state_dict())
    assert restored.temperature == model.temperature == schedule(40)


def _trained(n_keys=5, steps=20, **overrides) -> GumbelGAN:
    rng = np.random.default_rng(3)
    model = _model(n_keys=n_keys, **overrides)
    model.observe(np.stack([_counts(rng, rng.dirichlet(np.ones(5)), 2000) for _ in range(n_keys)]))
    model.step(steps)
    return model


def test_a_step_on_active_rows_equals_the_full_step_of_those_rows_and_leaves_the_rest_bit_identical():
    whole, alone = _trained(), _trained()
    alone.remove_keys([0, 2, 4])          # a model of rows 1 and 3 only, same state and random stream
    before = whole.state_dict()
    whole.step(15, rows=torch.tensor([1, 3]))
    alone.step(15)
    for name in ("logits", "average"):
        assert torch.equal(getattr(whole.generator, name)[[1, 3]], getattr(alone.generator, name))
        assert torch.equal(getattr(whole.generator, name)[[0, 2, 4]], before["generator"][name][[0, 2, 4]])
    assert torch.equal(whole.d_params[[1, 3]], alone.d_params)
    assert torch.equal(whole.d_params[[0, 2, 4]], before["d_params"][[0, 2, 4]])
    for opt in ("g_opt", "d_opt"):
        for name, value in getattr(whole, opt).state_dict().items():
            assert torch.equal(value[[1, 3]], getattr(alone, opt).state_dict()[name])
            assert torch.equal(value[[0, 2, 4]], before[opt][name][[0, 2, 4]])
    assert whole.key_steps().tolist() == [20.0, 35.0, 20.0, 35.0, 20.0]


def _train_until_settled(model: GumbelGAN, max_rounds=2000) -> int:
    """Rounds of 10 steps on the active keys until none is left; returns the rounds run."""
    for rounds in range(max_rounds):
        active, samples = model.active_keys()
        if active.numel() == 0:
            return rounds
        model.step(10, rows=active, samples=int(samples.max()))
    raise AssertionError("keys never settled")


def test_keys_settle_within_tolerance_then_wake_on_new_events_and_settle_again():
    """Settled means TV(learned, empirical) ≤ max(floor, tolerance·sqrt(K/n)) = 0.001 here (n = 20,000),
    checked at 0.002 (the published divergences are float32)."""
    rng = np.random.default_rng(4)
    model = _model(n_keys=2)
    model.observe(np.stack([_counts(rng, SEED_TRUTH, 20_000), _counts(rng, SEED_TRUTH[::-1], 20_000)]))
    _train_until_settled(model)
    tv = model.divergences()["tv"]
    assert bool((tv <= 0.002).all()), tv
    steps = model.key_steps().clone()
    assert model.active_keys()[0].numel() == 0 and torch.equal(model.key_steps(), steps)  # asleep: no steps

    quiet = model.state_dict()
    model.observe(np.stack([_counts(rng, np.array([0.2, 0.2, 0.2, 0.2, 0.2]), 20_000), np.zeros(5)]))
    assert model.active_keys()[0].tolist() == [0]
    _train_until_settled(model)
    assert float(model.divergences()["tv"][0]) <= 0.002
    assert model.key_steps()[0] > steps[0] and model.key_steps()[1] == steps[1]
    assert torch.equal(model.generator.logits[1], quiet["generator"]["logits"][1])


def test_a_key_that_cannot_settle_sleeps_after_max_steps_awake_until_new_events():
    model = _model(n_keys=1, settle_floor=1e-9, settle_tolerance=1e-9, max_steps_awake=100)
    model.observe(np.array([[10.0, 20, 30, 40, 0]]))
    _train_until_settled(model)
    assert model.key_steps().tolist() == [100.0]
    model.observe(np.array([[1.0, 0, 0, 0, 0]]))
    _train_until_settled(model)
    assert model.key_steps().tolist() == [200.0]


def test_a_reset_row_starts_afresh_like_a_new_key():
    model = _trained(n_keys=3)
    fresh = _model(n_keys=1)
    model.reset_keys([1])
    assert torch.equal(model.generator.logits[1], fresh.generator.logits[0])
    assert torch.equal(model.d_params[1], fresh.d_params[0])
    assert model.key_steps()[1] == 0 and float(model.histogram.counts[1].sum()) == 0
    assert 1 not in model.active_keys()[0].tolist()


def test_keys_with_few_events_step_with_fewer_samples():
    """M = 256·(0.002/tol)², a power of two in [32, 256]; tol = max(0.002, 0.02·sqrt(5/n))."""
    model = _model(n_keys=3, settle_tolerance=0.02, settle_floor=0.002)
    model.observe(np.array([[1.0, 1, 0, 0, 0], [52.0, 26, 26, 13, 13], [0, 0, 1e5, 1e5, 1e5]]))
    rows, samples = model.active_keys()
    assert dict(zip(rows.tolist(), samples.tolist())) == {0: 32, 1: 64, 2: 256}


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_every_model_dtype_learns(dtype):
    """Fixed seed; tolerance: each key's settle tolerance (0.006–0.013 for its 10–42 events) after
    500 steps on 3 keys (measured 0.0015–0.004 in each dtype).
    bfloat16 used to turn every logit into NaN at the first step: its β2 rounds to 1."""
    model = GumbelGAN(GANConfig(n_categories=4, dtype=dtype), 3)
    model.observe(torch.arange(12, dtype=torch.float64).reshape(3, 4) + 1)
    model.step(500)
    tv = total_variation(model.probabilities(), model.empirical())
    tolerance = model.settling.tolerances(model.histogram.counts.sum(-1), torch.full((3,), 4))
    assert int(model.nonfinite) == 0 and bool((tv < tolerance).all()), (tv, tolerance)


def test_with_a_prior_keys_learn_their_posterior_mean_through_the_game_and_settle_on_it():
    """Key 0 has 6 events, key 1 60,000: the prior (α = 20) moves the first far from its histogram
    and the second hardly. Fixed seeds; learned within TV 0.01 of each target after settling."""
    rng = np.random.default_rng(7)
    model = _model(n_keys=2)
    model.observe(np.stack([np.array([0., 0., 0., 6., 0.]), _counts(rng, SEED_TRUTH, 60_000)]))
    prior = 20.0 * torch.tensor([0.3, 0.3, 0.2, 0.1, 0.1], dtype=torch.float64)
    model.set_prior(prior)
    expected = (model.histogram.counts + prior) / (model.histogram.counts.sum(-1, keepdim=True) + 20.0)
    assert torch.allclose(model.target().double(), expected, atol=1e-6)
    assert model.targets.of()[1].tolist() == pytest.approx([26.0, 60_020.0])
    _train_until_settled(model)
    learned = model.probabilities().double()
    assert float(total_variation(learned[0], expected[0])) < 0.01
    assert float(total_variation(learned[0], model.empirical()[0].double())) > 0.5  # not the histogram
    assert float(total_variation(learned[1], expected[1])) < 0.01
    assert torch.allclose(model.divergences()["tv"], total_variation(model.target(), model.probabilities()))


def test_without_a_prior_training_is_bit_for_bit_what_it_was():
    rng = np.random.default_rng(8)
    counts = np.stack([_counts(rng, SEED_TRUTH, 500), _counts(rng, SEED_TRUTH[::-1], 50)])
    plain, cleared = _model(n_keys=2), _model(n_keys=2)
    for model in (plain, cleared):
        model.observe(counts)
    cleared.set_prior(torch.ones(5, dtype=torch.float64))
    cleared.set_prior(None)
    for model in (plain, cleared):
        for _ in range(20):
            rows, samples = model.active_keys()
            model.step(5, rows=rows, samples=int(samples.max()) if rows.numel() else None)
    _assert_same_state(plain.state_dict(), cleared.state_dict())


def test_a_prior_of_the_wrong_shape_or_sign_is_refused():
    model = _model()
    with pytest.raises(ValueError, match="shape \\(5,\\)"):
        model.set_prior(torch.ones(4))
    with pytest.raises(ValueError, match="non-negative"):
        model.set_prior(-torch.ones(5))
