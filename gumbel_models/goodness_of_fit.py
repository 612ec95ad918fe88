"""How well a batch of events fits a distribution: log-likelihood, surprise and a G-test.

For counts ``O`` (``[K]``, ``n = Σ O``) of a batch and a distribution ``p`` (``[K]``)::

    log L = Σ_k O_k log p_k                     (natural log; the batch's log-likelihood)
    surprise = −log L / (n log 2)               (mean bits per event)
    G = 2 Σ_k O_k log(O_k / (n p_k))  ~  χ²(K − 1) when the batch was drawn from p

and the p-value is ``P(χ²(K − 1) ≥ G)``. Probabilities are floored at ``FLOOR`` first, so an
event of a category the model gives (almost) no mass is very surprising rather than infinitely so.

>>> import torch
>>> p = torch.tensor([0.5, 0.5], dtype=torch.float64)
>>> fit = goodness_of_fit(torch.tensor([50., 50.], dtype=torch.float64), p)
>>> round(fit.surprise_bits, 6), round(fit.p_value, 6)
(1.0, 1.0)
>>> goodness_of_fit(torch.tensor([90., 10.], dtype=torch.float64), p).p_value < 1e-10
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FLOOR = 1e-12  # below float32's resolution near 1: a probability published as 0 is at most this


@dataclass(frozen=True)
class Fit:
    log_likelihood: float   # of the whole batch, natural log
    surprise_bits: float    # mean −log2 p over the batch's events
    g: float                # the G statistic
    degrees_of_freedom: int
    p_value: float


def floored(probabilities: torch.Tensor) -> torch.Tensor:
    """``probabilities`` (``[K]``) floored at ``FLOOR`` and normalised again, in float64: what events are scored by."""
    p = probabilities.to(torch.float64).clamp(min=FLOOR)
    return p / p.sum()


def goodness_of_fit(counts: torch.Tensor, probabilities: torch.Tensor) -> Fit:
    """The fit of ``counts`` (``[K]``, at least one event) to ``probabilities`` (``[K]``, sums to 1)."""
    p = floored(probabilities)
    counts = counts.to(torch.float64)
    n = float(counts.sum())
    log_likelihood = float((counts * p.log()).sum())
    g = float(2 * xlogx_over(counts, n * p).sum().clamp(min=0.0))
    dof = probabilities.numel() - 1
    p_value = float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                            torch.tensor(g / 2, dtype=torch.float64))) if dof > 0 else 1.0
    return Fit(log_likelihood, -log_likelihood / (n * math.log(2)), g, dof, p_value)


def xlogx_over(observed: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """``O·log(O/E)``, 0 where ``O = 0``."""
    return torch.xlogy(observed, observed) - torch.xlogy(observed, expected)
