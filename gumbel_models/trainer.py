"""The Gumbel-softmax GAN trainer: many independent categorical distributions, one batched step.

State per key ``b``: generator logits ``θ_b`` (and their average), a logistic discriminator
``(w_b, β_b)``, Adam moments for both, and the empirical histogram of the events observed.

One training step (``discriminator_steps`` D updates, then ``generator_steps`` G updates)::

    τ  = schedule(t)
    D: minimise Σ_k p̂_bk·softplus(−(w_bk+β_b)) + mean_m softplus(s_b(y_bm)) + ½γ‖w_b‖²
       with y_bm ~ GumbelSoftmax(θ_b, τ), detached from θ
    G: minimise mean_m softplus(−s_b(y_bm)),  y_bm ~ GumbelSoftmax(θ_b, τ), gradients into θ_b

Only keys that have observed events move. Nothing in a step reads a value back to the host:
losses, the non-finite update count and probabilities stay on the device until asked for.
"""
from __future__ import annotations

import torch

from . import discriminator as disc
from .gradients import discriminator_step, generator_step
from .change_detector import ChangeDetector
from .config import GANConfig, resolve_device
from .divergence import divergences
from .generator import CategoricalGenerator
from .gumbel_softmax import perturbed_logits
from .histogram import EmpiricalHistogram
from .row_adam import RowAdam

STATE_FORMAT = 1
RECENTRE_EVERY = 32  # steps between re-centring the logits (drift per step is ≤ lr)


class GumbelGAN:
    def __init__(self, config: GANConfig, n_keys: int = 1, *, seed: int = 0,
                 device: str | torch.device = "auto") -> None:
        self.config = config
        self.device = resolve_device(device)
        self.rng = torch.Generator(device=self.device).manual_seed(seed)
        dtype, k = config.torch_dtype, config.n_categories
        self.generator = CategoricalGenerator(n_keys, k, ema_decay=config.ema_decay,
                                              logit_range=config.logit_range, dtype=dtype, device=self.device)
        self.d_params = disc.init_params(n_keys, k, dtype=dtype, device=self.device)
        self.g_opt = RowAdam(self.generator.logits, lr=config.generator_lr, betas=config.betas)
        self.d_opt = RowAdam(self.d_params, lr=config.discriminator_lr, betas=config.betas)
        change = None if config.change_p_value is None else ChangeDetector(
            n_keys, k, window=config.change_window, p_value=config.change_p_value, device=self.device)
        self.histogram = EmpiricalHistogram(n_keys, k, half_life=config.half_life, change=change, device=self.device)
        # soft samples are not vertices, so only hard ones have an exact expected fake term
        self._expected_fake = config.hard and config.expected_fake
        self.t = 0
        self.nonfinite = torch.zeros((), dtype=torch.float64, device=self.device)  # skipped row-updates
        self.g_loss = torch.zeros(n_keys, device=self.device)
        self.d_loss = torch.zeros(n_keys, device=self.device)
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
        self.g_loss = torch.cat([self.g_loss, self.g_loss.new_zeros(n)])
        self.d_loss = torch.cat([self.d_loss, self.d_loss.new_zeros(n)])
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
        for part in (self.g_opt, self.d_opt, self.histogram):
            part.keep(keep)
        self.g_loss, self.d_loss = self.g_loss[keep], self.d_loss[keep]
        self._refresh_reference()

    def set_mask(self, rows, mask: torch.Tensor) -> None:
        """Restrict keys ``rows`` to the categories where ``mask`` ``[len(rows), K]`` is true."""
        index = torch.as_tensor(list(rows), dtype=torch.long, device=self.device)
        self.generator.set_mask(index, torch.as_tensor(mask).reshape(len(index), -1))

    # -- data and training --------------------------------------------------------------------
    def observe(self, counts) -> None:
        """Count events: ``counts`` ``[n_keys, K]`` (tensor or array) of new events per category."""
        counts = torch.as_tensor(counts, device=self.device)
        if counts.shape != (self.n_keys, self.config.n_categories):
            raise ValueError(f"counts must have shape {(self.n_keys, self.config.n_categories)}, "
                             f"got {tuple(counts.shape)}")
        self.histogram.observe(counts.masked_fill(~self.generator.mask, 0))
        self._refresh_reference()

    @property
    def temperature(self) -> float:
        return self.config.temperature(self.t)

    def step(self, n_steps: int = 1) -> None:
        for _ in range(n_steps):
            tau, lr_scale = self.temperature, self._lr_scale()
            samples = None
            for _ in range(self.config.discriminator_steps):
                samples = None if self._expected_fake else self._draw(tau)
                self._discriminator_update(samples, lr_scale)
            for _ in range(self.config.generator_steps):
                # θ has not moved since the last D update drew its samples: reuse them once.
                self._generator_update(samples or self._draw(tau), tau, lr_scale)
                samples = None
            self.t += 1
            if self.t % RECENTRE_EVERY == 0:
                self.generator.recentre()

    def _lr_scale(self) -> float:
        decay = self.config.lr_decay_steps
        return 1.0 if decay is None else 1.0 / (1.0 + self.t / decay)

    def _draw(self, tau: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Soft samples ``[B, M, K]`` and, in hard mode, their Gumbel-max indices ``[B, M]``."""
        perturbed = perturbed_logits(self.generator.masked(self.generator.logits), tau,
                                     self.config.samples_per_step, generator=self.rng)
        soft = torch.softmax(perturbed, dim=-1)
        return soft, (perturbed.argmax(dim=-1) if self.config.hard else None)

    def _real_weights(self) -> torch.Tensor:
        if self.config.real_batch is None:
            return self._reference
        n = self.config.real_batch
        safe = torch.where(self._active > 0, self._reference, torch.ones_like(self._reference))
        drawn = torch.multinomial(safe.float(), n, replacement=True, generator=self.rng)
        return torch.zeros_like(self._reference).scatter_add_(-1, drawn, torch.ones_like(drawn, dtype=safe.dtype)) / n

    def _discriminator_update(self, samples, lr_scale: float) -> None:
        fake = self.generator.probabilities(averaged=False).to(self.d_params) if samples is None else samples
        grad, loss = discriminator_step(self.d_params, self._real_weights(), fake, self.config.r1_gamma)
        grad, on = self._skip_nonfinite(grad)
        self.d_opt.step(self.d_params, grad, on, lr_scale)
        self.d_loss = loss

    def _generator_update(self, samples, tau: float, lr_scale: float) -> None:
        grad, loss = generator_step(self.d_params, *samples, tau)
        grad, on = self._skip_nonfinite(grad)
        self.g_opt.step(self.generator.logits, grad, on, lr_scale)
        self.generator.after_update(self.g_opt.steps, on)
        self.g_loss = loss

    def _skip_nonfinite(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero the rows whose gradient is not finite and count them; returns ``(grad, on [B, 1])``."""
        finite = torch.isfinite(grad).all(dim=-1, keepdim=True)
        on = self._active * finite
        self.nonfinite += (self._active - on).sum()
        return torch.where(finite, grad, 0.0), on

    def _refresh_reference(self) -> None:
        self._reference = self.histogram.probabilities(self.config.torch_dtype)
        self._active = self.histogram.has_data().unsqueeze(-1).to(self.config.torch_dtype)

    # -- reading ------------------------------------------------------------------------------
    def probabilities(self, averaged: bool = True) -> torch.Tensor:
        return self.generator.probabilities(averaged)

    def empirical(self) -> torch.Tensor:
        return self.histogram.probabilities(torch.float32)

    def divergences(self) -> dict[str, torch.Tensor]:
        """TV, KL(empirical ‖ learned) and JS per key, ``[B]`` each."""
        return divergences(self.empirical(), self.probabilities())

    def key_steps(self) -> torch.Tensor:
        """Generator updates applied to each key ``[B]``."""
        return self.g_opt.steps.squeeze(-1)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "format": STATE_FORMAT, "n_categories": self.config.n_categories, "t": self.t,
            "generator": self.generator.state_dict(), "d_params": self.d_params.clone(),
            "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
            "histogram": self.histogram.state_dict(), "rng": self.rng.get_state(),
            "nonfinite": self.nonfinite.clone(), "g_loss": self.g_loss.clone(), "d_loss": self.d_loss.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported trainer state format {state.get('format')!r}, expected {STATE_FORMAT}")
        if state["n_categories"] != self.config.n_categories:
            raise ValueError(f"state has {state['n_categories']} categories, config has {self.config.n_categories}")
        self.t = int(state["t"])
        self.generator.load_state_dict(state["generator"])
        self.d_params = state["d_params"].to(self.d_params).clone()
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.histogram.load_state_dict(state["histogram"])
        self.rng.set_state(state["rng"].cpu())
        self.nonfinite = state["nonfinite"].to(self.device).clone()
        self.g_loss = state["g_loss"].to(self.device).clone()
        self.d_loss = state["d_loss"].to(self.device).clone()
        self._refresh_reference()
