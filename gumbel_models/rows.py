"""A key's whole learning state as one record: what moves a key from one model to another.

A model keeps each part of its state as a ``[B, …]`` tensor (generator, discriminator, both Adam
states, histogram). :func:`read_rows` gathers the rows of some keys into one mapping of ``[A, …]``
tensors, one per :data:`ROW_FIELDS` entry; :func:`write_rows` scatters such a mapping into other
rows, of the same model or of another with the same categories. A key written this way continues
exactly where it was: the next step moves it as it would have moved in its old model, given the
same temperature and random draws.

Not carried: what the model shares between keys (temperature schedule, random generator) and
what is derived from the row (the settling state: a written key is evaluated afresh).

Fields and shapes, for ``K`` categories::

    counts [K] f64   events [] i64   newest [] i64   window [K] f64
                                         histogram, events ever, newest event time (ms), change window
    logits [K]       average [K]     mask [K] bool         generator (model dtype)
    d_params [K+1]                                          discriminator weights, then bias
    g_exp_avg [K]    g_exp_avg_sq [K]    g_steps [1]        generator Adam
    d_exp_avg [K+1]  d_exp_avg_sq [K+1]  d_steps [1]        discriminator Adam

>>> import torch
>>> from gumbel_models import GANConfig, GumbelGAN
>>> a, b = GumbelGAN(GANConfig(n_categories=3), 2), GumbelGAN(GANConfig(n_categories=3), 5)
>>> a.observe(torch.tensor([[5., 1., 0.], [0., 0., 2.]])); a.step(10)
>>> write_rows(b, torch.tensor([4]), read_rows(a, torch.tensor([0])))
>>> bool(torch.equal(b.probabilities()[4], a.probabilities()[0])), int(b.histogram.events[4])
(True, 6)
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

ROW_FIELDS = ("counts", "events", "newest", "window", "logits", "average", "mask", "d_params",
              "g_exp_avg", "g_exp_avg_sq", "g_steps", "d_exp_avg", "d_exp_avg_sq", "d_steps")


def _parts(model) -> dict[str, tuple[object, str]]:
    """Field → (object holding the tensor, attribute name)."""
    h, g = model.histogram, model.generator
    parts = {"counts": (h, "counts"), "events": (h, "events"), "newest": (h, "newest"), "logits": (g, "logits"), "average": (g, "average"),
             "mask": (g, "mask"), "d_params": (model, "d_params")}
    for prefix, opt in (("g", model.g_opt), ("d", model.d_opt)):
        for name in ("exp_avg", "exp_avg_sq", "steps"):
            parts[f"{prefix}_{name}"] = (opt, name)
    if h.change is not None:
        parts["window"] = (h.change, "counts")
    return parts


def read_rows(model, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """The state of keys ``rows`` ``[A]``: field → ``[A, …]`` copy, on the model's device.

    Without a change detector, ``window`` is zeros.
    """
    rows = torch.as_tensor(rows, dtype=torch.long, device=model.device)
    state = {field: getattr(holder, name).index_select(0, rows) for field, (holder, name) in _parts(model).items()}
    if "window" not in state:
        state["window"] = state["counts"].new_zeros(state["counts"].shape)
    return state


def write_rows(model, rows: torch.Tensor, state: Mapping[str, torch.Tensor]) -> None:
    """Set keys ``rows`` ``[A]`` (distinct) to ``state`` (as :func:`read_rows` returns, ``[A, …]``).

    The keys are evaluated afresh at the next :meth:`~gumbel_models.GumbelGAN.active_keys`; a
    mapping with missing fields or other shapes raises ``ValueError`` and changes nothing.
    """
    rows = torch.as_tensor(rows, dtype=torch.long, device=model.device)
    parts = _parts(model)
    missing = [field for field in ROW_FIELDS if field not in state]
    if missing:
        raise ValueError(f"row state lacks {', '.join(missing)}")
    values = {}
    for field, (holder, name) in parts.items():
        target = getattr(holder, name)
        value = torch.as_tensor(state[field])
        if tuple(value.shape) != (rows.numel(), *target.shape[1:]):
            raise ValueError(f"row field {field} has shape {tuple(value.shape)}, "
                             f"expected {(rows.numel(), *target.shape[1:])}")
        values[field] = value.to(device=target.device, dtype=target.dtype)
    if not bool(values["mask"].any(dim=-1).all()):
        raise ValueError("every key needs at least one unmasked category")
    for field, (holder, name) in parts.items():
        getattr(holder, name).index_copy_(0, rows, values[field])
    model.rows_written(rows)
