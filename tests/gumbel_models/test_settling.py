import torch

from gumbel_models.settling import Settling


def _settling(n_keys):
    return Settling(n_keys, tolerance=0.02, floor=0.002, max_steps_awake=100, max_samples=256, min_samples=32)


def test_awake_keys_come_in_order_of_misattributed_events_beyond_tolerance_per_sample():
    # heavy: 10^6 events just above its tolerance (the floor), 256 samples a step;
    # light: 20 events far from its tolerance, 32 samples; n·TV alone would put heavy first (2010 vs 8)
    s = _settling(3)
    s.mark_dirty(torch.ones(3, dtype=torch.bool))
    empirical = torch.tensor([[0.50201, 0.49799], [0.9, 0.1], [0.5, 0.5]], dtype=torch.float64)
    learned = torch.full((3, 2), 0.5, dtype=torch.float64)
    mass, categories = torch.tensor([1e6, 20.0, 50.0]), torch.tensor([2, 2, 2])
    rows, tolerances = s.evaluate(learned, empirical, mass, categories, steps=torch.zeros(3))
    assert rows.tolist() == [1, 0]                       # the settled third key is not planned
    assert s.samples(tolerances).tolist() == [32, 256]
    tv = torch.tensor([0.4, 0.00201], dtype=torch.float64)
    expected = (tv - tolerances) * torch.tensor([20.0, 1e6], dtype=torch.float64) / torch.tensor([32.0, 256.0])
    assert torch.allclose(s.priority[rows], expected, rtol=1e-4)


def test_samples_follow_the_tolerance_between_the_bounds_and_step_scale_matches():
    s = _settling(1)
    tolerances = torch.tensor([0.002, 0.0028, 0.004, 0.1], dtype=torch.float64)
    assert s.samples(tolerances).tolist() == [256, 128, 64, 32]
    assert s.step_scale(64) == 2.0 and s.step_scale(256) == 1.0
