"""Moving keys between models with read_rows / write_rows."""
import pytest
import torch

from gumbel_models import GANConfig, GumbelGAN
from gumbel_models.rows import ROW_FIELDS, read_rows, write_rows


def trained(config: GANConfig, n_keys: int, seed: int = 0) -> GumbelGAN:
    model = GumbelGAN(config, n_keys, seed=seed)
    counts = torch.distributions.Multinomial(200, probs=torch.softmax(torch.randn(n_keys, config.n_categories,
                                                                          generator=torch.Generator().manual_seed(seed)), -1)).sample()
    model.observe(counts)
    model.step(50)
    return model


def test_a_moved_key_continues_exactly_as_it_would_have():
    config = GANConfig(n_categories=6, samples_per_step=32)
    source = trained(config, 4)
    target = GumbelGAN(config, 7, seed=5)
    target.observe(torch.ones(7, 6))
    rows_from, rows_to = torch.tensor([1, 3]), torch.tensor([6, 2])
    write_rows(target, rows_to, read_rows(source, rows_from))
    # the same temperature position and random stream: a step moves both copies identically
    target.t, target.rng = source.t, torch.Generator().manual_seed(11)
    source.rng = torch.Generator().manual_seed(11)
    source.step(3, rows=rows_from)
    target.step(3, rows=rows_to)
    for field, value in read_rows(source, rows_from).items():
        assert torch.equal(value, read_rows(target, rows_to)[field]), field
    assert torch.equal(target.probabilities(rows=rows_to), source.probabilities(rows=rows_from))


def test_written_rows_leave_the_others_bit_identical_and_are_evaluated_afresh():
    config = GANConfig(n_categories=4)
    source, target = trained(config, 2), trained(config, 5, seed=1)
    before = read_rows(target, torch.tensor([0, 1, 3, 4]))
    target.active_keys()  # evaluates and clears every dirty row
    write_rows(target, torch.tensor([2]), read_rows(source, torch.tensor([0])))
    after = read_rows(target, torch.tensor([0, 1, 3, 4]))
    assert all(torch.equal(before[f], after[f]) for f in ROW_FIELDS)
    assert target.settling.candidates().tolist() == [2]
    assert torch.equal(target.empirical(torch.tensor([2])), source.empirical(torch.tensor([0])))


def test_the_change_window_travels_with_a_detector_and_is_zero_without():
    with_detector = GANConfig(n_categories=3, change_p_value=1e-3, change_window=50)
    model = GumbelGAN(with_detector, 2)
    model.observe(torch.tensor([[1., 2., 0.], [0., 0., 3.]]))  # fewer events than a window: kept in it
    assert read_rows(model, torch.tensor([1]))["window"].tolist() == [[0., 0., 3.]]
    plain = read_rows(trained(GANConfig(n_categories=3), 2), torch.tensor([0]))
    assert plain["window"].shape == (1, 3) and plain["window"].sum() == 0


@pytest.mark.parametrize("broken, message", [
    (lambda s: s.pop("logits"), "lacks logits"),
    (lambda s: s.__setitem__("counts", torch.zeros(1, 5)), "counts has shape"),
    (lambda s: s["mask"].fill_(False), "at least one unmasked"),
])
def test_a_bad_row_state_is_refused_and_changes_nothing(broken, message):
    config = GANConfig(n_categories=4)
    source, target = trained(config, 1), trained(config, 2, seed=3)
    before = read_rows(target, torch.arange(2))
    state = read_rows(source, torch.tensor([0]))
    broken(state)
    with pytest.raises(ValueError, match=message):
        write_rows(target, torch.tensor([1]), state)
    assert all(torch.equal(before[f], read_rows(target, torch.arange(2))[f]) for f in ROW_FIELDS)
