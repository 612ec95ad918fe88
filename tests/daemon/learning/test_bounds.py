"""daemon.learning.bounds: a publication's intervals are those of the model now, computed again only
for rows whose counts or prior changed."""
import numpy as np
import torch

from daemon.learning.bounds import IntervalBounds
from gumbel_models import GANConfig, GumbelGAN


def _model() -> GumbelGAN:
    model = GumbelGAN(GANConfig(n_categories=3), 3, seed=0, device="cpu")
    model.observe(np.array([[6.0, 2.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 4.0]]))
    return model


def _fresh(model: GumbelGAN, rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return tuple(bound.numpy() for bound in model.targets.intervals(0.9, rows))


def test_new_events_a_new_prior_a_forgotten_row_and_new_rows_are_computed_again_and_nothing_else():
    model, bounds, rows = _model(), IntervalBounds(0.9), torch.arange(3)
    events = lambda: model.histogram.events.numpy().astype(np.int64)[rows.numpy()]  # noqa: E731
    bounds.of(model, rows, events())
    assert bounds.computed == 3
    model.observe(np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    lower, upper = bounds.of(model, rows, events())
    assert bounds.computed == 4                                 # row 1 alone
    assert np.array_equal(lower, _fresh(model, rows)[0]) and np.array_equal(upper, _fresh(model, rows)[1])
    model.set_prior(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    lower, _ = bounds.of(model, rows, events())
    assert bounds.computed == 7 and np.array_equal(lower, _fresh(model, rows)[0])   # every row
    bounds.forget(np.array([2]))
    bounds.of(model, rows, events())
    assert bounds.computed == 8
    model.add_keys(2)
    model.observe(np.array([[1.0, 0.0, 0.0]]), rows=torch.tensor([4]))
    rows = torch.arange(5)
    lower, upper = bounds.of(model, rows, events())
    assert bounds.computed == 10 and np.array_equal(upper, _fresh(model, rows)[1])  # the two new rows
