"""gumbel_models.target: the posterior mean a key learns, over its own categories."""
import torch

from gumbel_models.target import target


def test_the_prior_weighs_as_its_concentration_in_events_and_only_over_a_keys_categories():
    counts = torch.tensor([[10., 0., 0., 0.], [0., 0., 0., 0.]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True], [False, True, True, False]])
    prior = torch.tensor([1., 2., 3., 4.], dtype=torch.float64)
    probabilities, effective = target(counts, mask, prior)
    assert effective.tolist() == [20.0, 5.0]
    assert probabilities[0].tolist() == [11 / 20, 2 / 20, 3 / 20, 4 / 20]
    assert probabilities[1].tolist() == [0.0, 2 / 5, 3 / 5, 0.0]  # no events: the prior's mean, restricted


def test_without_a_prior_the_target_is_the_histogram_and_a_key_without_events_is_zero():
    counts = torch.tensor([[1., 3.], [0., 0.]], dtype=torch.float64)
    probabilities, effective = target(counts, torch.ones(2, 2, dtype=torch.bool), None)
    assert probabilities.tolist() == [[0.25, 0.75], [0.0, 0.0]] and effective.tolist() == [4.0, 0.0]
