"""The Gumbel-softmax GAN trainer: many independent categorical distributions, one batched step.

State per key ``b``: generator logits ``θ_b`` (and their average), a logistic discriminator
``(w_b, β_b)``, Adam moments for both, and the empirical histogram of the events observed. What
the discriminator sees as real is the key's target ``p̂_b`` (:mod:`.target`): its histogram, plus
the pseudo-counts of a prior when one is set (:meth:`GumbelGAN.set_prior`), read by :mod:`.key_targets`.

One training step (``discriminator_steps`` D updates, then ``generator_steps`` G updates)::

    τ  = schedule(t)
    D: minimise Σ_k p̂_bk·softplus(−(w_bk+β_b)) + mean_m softplus(s_b(y_bm)) + ½γ‖w_b‖²
       with y_bm ~ GumbelSoftmax(θ_b, τ), detached from θ
    G: minimise mean_m softplus(−s_b(y_bm)),  y_bm ~ GumbelSoftmax(θ_b, τ), gradients into θ_b

Only keys with events move. A step may train a subset of keys (``rows``), gathered, stepped as a
model of those keys alone and scattered back, so its cost follows them; :meth:`GumbelGAN.active_keys`
names the keys with something to learn (:mod:`.settling`). A step's samples share one noise draw,
kept factored (:mod:`.samples`). Nothing in a step reads a value back to the host.
"""
from __future__ import annotations

import torch

from . import discriminator as disc
from .gradients import discriminator_step, generator_step
from .change_detector import ChangeDetector
from .config import GANConfig, resolve_device
from .divergence import divergences
from .generator import CategoricalGenerator
from .histogram import EmpiricalHistogram
from .settling import Settling
from .players import Players
from .key_targets import KeyTargets
from .target import KeyColumns
from . import samples as gumbel_samples
from .row_adam import RowAdam

STATE_FORMAT = 2
READABLE_FORMATS = (1, 2)  # format 1 had no settling state: every key starts awake-to-be-evaluated
RECENTRE_EVERY = 32  # steps between re-centring the logits (drift per step is ≤ lr)


class GumbelGAN:
    def __init__(self, config: GANConfig, n_keys: int = 1, *, seed: int = 0,
                 device: str | torch.device = "auto") -> None:
        self.config = config
        self.device = resolve_device(device)
        self.rng = torch.Generator(device=self.device).manual_seed(seed)
        dtype, k = config.torch_dtype, config.n_categories
        generator_lr, discriminator_lr = config.learning_rates
        self.generator = CategoricalGenerator(n_keys, k, ema_decay=config.averaging_decay,
                                              average_share=config.average_share,
                                              logit_range=config.logit_range, dtype=dtype, device=self.device)
        self.d_params = disc.init_params(n_keys, k, dtype=dtype, device=self.device)
        self.g_opt = RowAdam(self.generator.logits, lr=generator_lr, betas=config.betas)
        self.d_opt = RowAdam(self.d_params, lr=discriminator_lr, betas=config.betas)
        change = None if config.change_p_value is None else ChangeDetector(
            n_keys, k, window=config.change_window, p_value=config.change_p_value, device=self.device)
        self.histogram = EmpiricalHistogram(n_keys, k, half_life=config.half_life, half_life_ms=config.half_life_ms,
                                             change=change, device=self.device)
        self.settling = Settling(n_keys, tolerance=config.settle_tolerance, floor=config.settle_floor,
                                 max_steps_awake=config.max_steps_awake, max_samples=config.samples_per_step,
                                 min_samples=config.min_samples_per_step, device=self.device)
        # soft samples are not vertices, so only hard ones have an exact expected fake term
        self._expected_fake = config.hard and config.expected_fake
        self.t = 0
        self.nonfinite = torch.zeros((), dtype=torch.float64, device=self.device)  # skipped row-updates
        self.targets = KeyTargets(self.histogram, self.generator, k, self.device)
        self.g_loss, self.d_loss = torch.zeros(n_keys, device=self.device), torch.zeros(n_keys, device=self.device)
        self._refresh_reference()

    def __repr__(self) -> str:
        c = self.config
        return (f"GumbelGAN(keys={self.n_keys}, K={c.n_categories}, {'hard' if c.hard else 'soft'} samples, "
                f"{c.temperature!r}, G:D = {c.generator_steps}:{c.discriminator_steps}, t={self.t})")

    # -- keys ---------------------------------------------------------------------------------
    @property
    def n_keys(self) -> int:
        return self.d_params.shape[0]

    def add_keys(self, n: int = 1, mask: torch.Tensor | None = None) -> range:
        """Append ``n`` fresh keys (optionally with a category mask ``[n, K]``); returns their rows."""
        start = self.n_keys
        self.generator.append(n)
        self.d_params = torch.cat([self.d_params, disc.init_params(n, self.config.n_categories,
                                                                   dtype=self.d_params.dtype, device=self.device)])
        for opt in (self.g_opt, self.d_opt):
            opt.append(n)
        self.histogram.append(n)
        self.settling.append(n)
        self.g_loss, self.d_loss = (torch.cat([loss, loss.new_zeros(n)]) for loss in (self.g_loss, self.d_loss))
        rows = range(start, start + n)
        if mask is not None:
            self.set_mask(rows, mask)
        self._refresh_reference()
        return rows

    def remove_keys(self, rows) -> None:
        """Drop the given rows; the remaining keys keep their order and state."""
        keep = torch.ones(self.n_keys, dtype=torch.bool, device=self.device)
        keep[torch.as_tensor(list(rows), dtype=torch.long, device=self.device)] = False
        self.generator.keep(keep)
        self.d_params = self.d_params[keep]
        for part in (self.g_opt, self.d_opt, self.histogram, self.settling):
            part.keep(keep)
        self.g_loss, self.d_loss = self.g_loss[keep], self.d_loss[keep]
        self._refresh_reference()

    def reset_keys(self, rows: torch.Tensor) -> None:
        """Rows ``rows`` (``[A]`` indices) start afresh, as if just added: a new key reuses them."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        self.generator.reset(rows)
        self.d_params.index_fill_(0, rows, 0.0)
        for part in (self.g_opt, self.d_opt, self.histogram):
            part.reset(rows)
        self.rows_written(rows)

    def rows_written(self, rows: torch.Tensor) -> None:
        """Rows ``rows`` were set from outside (:func:`.rows.write_rows`): evaluate them afresh."""
        self.settling.reset(rows)
        self.settling.mark_rows(rows)
        for loss in (self.g_loss, self.d_loss):
            loss.index_fill_(0, rows, 0.0)
        self._refresh_reference(rows)

    def set_mask(self, rows, mask: torch.Tensor) -> None:
        """Restrict keys ``rows`` to the categories where ``mask`` ``[len(rows), K]`` is true."""
        index = torch.as_tensor(list(rows), dtype=torch.long, device=self.device)
        self.generator.set_mask(index, torch.as_tensor(mask).reshape(len(index), -1))

    def set_prior(self, pseudo_counts: torch.Tensor | None, columns: KeyColumns | None = None) -> None:
        """Every key's target becomes its histogram plus ``pseudo_counts`` over its own categories
        (None: the histogram alone; ``columns``: :meth:`.key_targets.KeyTargets.set_prior`); the
        keys with events are evaluated afresh."""
        self.targets.set_prior(pseudo_counts, columns)
        self.settling.mark_dirty(self.histogram.has_data())
        self._refresh_reference()

    # -- data and training --------------------------------------------------------------------
    def observe(self, counts, rows=None, newest=None, events=None) -> None:
        """Count events: ``counts`` ``[n_keys, K]`` (tensor or array) of new events per category, or
        ``[A, K]`` for the distinct rows ``rows`` ``[A]`` (then the cost follows those rows only).
        Forgetting in event time, ``counts`` are weighed relative to each row's ``newest`` event time
        (ms) and ``events`` says how many events they are (:mod:`.histogram`)."""
        counts = torch.as_tensor(counts, device=self.device)
        newest = None if newest is None else torch.as_tensor(newest, dtype=torch.int64, device=self.device)
        events = None if events is None else torch.as_tensor(events, dtype=torch.int64, device=self.device)
        index = None if rows is None else torch.as_tensor(rows, dtype=torch.long, device=self.device)
        expected = (self.n_keys if index is None else index.numel(), self.config.n_categories)
        if counts.shape != expected:
            raise ValueError(f"counts must have shape {expected}, got {tuple(counts.shape)}")
        mask = self.generator.mask if index is None else self.generator.mask.index_select(0, index)
        counts = counts.masked_fill(~mask, 0)
        self.histogram.observe(counts, index, newest, events)
        arrived = counts.sum(dim=-1) > 0
        if index is None:
            self.settling.mark_dirty(arrived)
        else:
            self.settling.mark_rows(index[arrived])
        self._refresh_reference(index)

    def active_keys(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows that still have something to learn (``[A]``, highest priority first) and the samples per
        step each needs (``[A]``); see :mod:`.settling`.

        Evaluates only keys that received events or were trained since the last call; reads back
        to the host once or twice, so call it once per round of steps, not per step.
        """
        rows = self.settling.candidates()
        if rows.numel() == 0:
            rows, tolerances = self.settling.awake_rows()
        else:
            mask = self.generator.mask.index_select(0, rows)
            goal, mass = self.targets.of(rows)
            # a row without events (a free one) has nothing to learn, whatever the prior says
            mass = torch.where(self._has_data.index_select(0, rows).squeeze(-1) > 0, mass, torch.zeros_like(mass))
            steps = self.g_opt.steps.index_select(0, rows).squeeze(-1)
            rows, tolerances = self.settling.evaluate(self.probabilities(rows=rows), goal, mass,
                                                      mask.sum(dim=-1), steps, rows)
        return rows, self.settling.samples(tolerances)

    @property
    def temperature(self) -> float:
        return self.config.temperature(self.t)

    def step(self, n_steps: int = 1, rows: torch.Tensor | None = None, samples: int | None = None,
             lr_scale: float = 1.0) -> None:
        """Run ``n_steps`` training steps on every key, or only on ``rows`` (``[A]`` row indices),
        with ``samples`` generator samples per key (default ``config.samples_per_step``) and both
        learning rates scaled by ``lr_scale``.

        A step on ``rows`` gathers those keys, trains them exactly as a model of those keys alone
        would be trained with the same random stream, and scatters them back; other rows keep
        their state bit for bit. Nothing is read back to the host.
        """
        players = self._players() if rows is None else self._players().take(rows)
        samples = self.config.samples_per_step if samples is None else samples
        for _ in range(n_steps):
            self._one_step(players, samples, lr_scale)
        if rows is None:
            self.g_loss, self.d_loss = players.g_loss, players.d_loss
            self.settling.mark_dirty(self._has_data.squeeze(-1) > 0)
        else:
            self._players().put(rows, players)
            self.settling.mark_rows(rows)  # trained: its excess has changed

    def _one_step(self, p: Players, samples: int, lr_scale: float) -> None:
        tau, lr_scale = self.temperature, self._lr_scale() * lr_scale
        drawn = None
        for _ in range(self.config.discriminator_steps):
            drawn = None if self._expected_fake else self._draw(p, tau, samples)
            self._discriminator_update(p, drawn, lr_scale)
        for _ in range(self.config.generator_steps):
            # θ has not moved since the last D update drew its samples: reuse them once.
            self._generator_update(p, self._draw(p, tau, samples) if drawn is None else drawn, tau, lr_scale)
            drawn = None
        self.t += 1
        if self.t % RECENTRE_EVERY == 0:
            p.generator.recentre()

    def _players(self) -> Players:
        return Players(self.generator, self.d_params, self.g_opt, self.d_opt, self._reference, self._has_data,
                       self.g_loss, self.d_loss)

    def _lr_scale(self) -> float:
        decay = self.config.lr_decay_steps
        return 1.0 if decay is None else 1.0 / (1.0 + self.t / decay)

    def _draw(self, p: Players, tau: float, samples: int) -> gumbel_samples.Samples:  # one noise draw for all rows
        return gumbel_samples.draw(p.generator.masked(p.generator.logits), tau, samples, hard=self.config.hard,
                                   generator=self.rng)

    def _real_weights(self, p: Players) -> torch.Tensor:
        if self.config.real_batch is None:
            return p.reference
        n = self.config.real_batch
        safe = torch.where(p.has_data > 0, p.reference, torch.ones_like(p.reference))
        drawn = torch.multinomial(safe.float(), n, replacement=True, generator=self.rng)
        return torch.zeros_like(p.reference).scatter_add_(-1, drawn, torch.ones_like(drawn, dtype=safe.dtype)) / n

    def _discriminator_update(self, p: Players, samples, lr_scale: float) -> None:
        q = p.generator.probabilities(averaged=False).to(p.d_params)
        real = self._real_weights(p)
        penalty = disc.penalty_weights(self.config.r1_gamma, real, q, p.generator.mask)
        grad, loss = discriminator_step(p.d_params, real, q if samples is None else samples, penalty)
        grad, on = self._skip_nonfinite(p, grad)
        p.d_opt.step(p.d_params, grad, on, lr_scale * self.config.young_step_scale(p.d_opt.steps))
        p.d_loss = loss

    def _generator_update(self, p: Players, samples, tau: float, lr_scale: float) -> None:
        grad, loss = generator_step(p.d_params, samples, tau)
        grad, on = self._skip_nonfinite(p, grad)
        p.g_opt.step(p.generator.logits, grad, on, lr_scale * self.config.young_step_scale(p.g_opt.steps))
        p.generator.after_update(p.g_opt.steps, on)
        p.g_loss = loss

    def _skip_nonfinite(self, p: Players, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero the rows whose gradient is not finite and count them; returns ``(grad, on [B, 1])``."""
        # a row's sum is finite iff its entries are (or, rarely, finite entries overflow the sum,
        # which skips a harmless update): cheaper than isfinite(grad).all(-1)
        finite = torch.isfinite(grad.sum(dim=-1, keepdim=True))
        on = p.has_data * finite
        self.nonfinite += (p.has_data - on).sum()
        return torch.where(finite, grad, 0.0), on

    def _refresh_reference(self, rows: torch.Tensor | None = None) -> None:
        dtype = self.config.torch_dtype
        if rows is None or self._reference.shape[0] != self.n_keys:
            self._reference = self.targets.of()[0].to(dtype)
            self._has_data = self.histogram.has_data().unsqueeze(-1).to(dtype)
        else:
            self._reference.index_copy_(0, rows, self.targets.of(rows)[0].to(dtype))
            self._has_data.index_copy_(0, rows, (self.histogram.events.index_select(0, rows) > 0)
                                        .unsqueeze(-1).to(dtype))

    # -- reading ------------------------------------------------------------------------------
    @property
    def prior(self) -> torch.Tensor | None:
        """The prior's pseudo-counts (:meth:`set_prior`), or None."""
        return self.targets.prior

    def probabilities(self, averaged: bool = True, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Learned ``q`` ``[B, K]`` (or of ``rows``), float32."""
        return self.generator.probabilities(averaged, rows)

    def empirical(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        return self.histogram.probabilities(torch.float32, rows)

    def target(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """What each key (or ``rows``) learns ``[B, K]``, float32: the empirical without a prior.
        With the effective events, and the intervals: :attr:`targets`."""
        return self.targets.of(rows)[0].to(torch.float32)

    def divergences(self, rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """TV, KL(target ‖ learned) and JS per key (or of ``rows``), ``[B]`` each."""
        return divergences(self.target(rows), self.probabilities(rows=rows))

    def key_steps(self) -> torch.Tensor:
        """Generator updates applied to each key ``[B]``."""
        return self.g_opt.steps.squeeze(-1)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "format": STATE_FORMAT, "n_categories": self.config.n_categories, "t": self.t,
            "generator": self.generator.state_dict(), "d_params": self.d_params.clone(),
            "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
            "histogram": self.histogram.state_dict(), "settling": self.settling.state_dict(),
            "rng": self.rng.get_state(),
            "nonfinite": self.nonfinite.clone(), "g_loss": self.g_loss.clone(), "d_loss": self.d_loss.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") not in READABLE_FORMATS:
            raise ValueError(f"unsupported trainer state format {state.get('format')!r}, expected one of {READABLE_FORMATS}")
        if state["n_categories"] != self.config.n_categories:
            raise ValueError(f"state has {state['n_categories']} categories, config has {self.config.n_categories}")
        self.t = int(state["t"])
        self.generator.load_state_dict(state["generator"])
        self.d_params = state["d_params"].to(self.d_params).clone()
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.histogram.load_state_dict(state["histogram"])
        self.settling.load_state_dict(state.get("settling", {}), self.n_keys)
        self.rng.set_state(state["rng"].cpu())
        self.nonfinite = state["nonfinite"].to(self.device).clone()
        self.g_loss = state["g_loss"].to(self.device).clone()
        self.d_loss = state["d_loss"].to(self.device).clone()
        self._refresh_reference()
