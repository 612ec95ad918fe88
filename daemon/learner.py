"""The learner: the one owner of the model, called only from the training thread.

Every method runs on a single-thread executor, so training rounds, snapshots and checkpoint
states never interleave and need no locks. Values cross to the host once per round (losses,
counters) and once per snapshot — never inside the training steps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np
import torch

from gumbel_models import GumbelGAN

MODEL_NAME = "gumbel-softmax-gan"


@dataclass(frozen=True)
class RoundStats:
    steps: int
    seconds: float
    nonfinite: int         # skipped updates so far
    g_loss: float
    d_loss: float
    temperature: float


def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Learner:
    def __init__(self, model: GumbelGAN, labels: Sequence[str], *, clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.model, self.labels = model, list(labels)
        self._clock, self._timer = clock, timer
        self.versions = np.zeros(model.n_keys, dtype=np.int64)

    def train(self, n_keys: int, counts: np.ndarray | None, steps: int) -> RoundStats:
        """Take new keys and counts, then run ``steps`` training steps."""
        if n_keys > self.model.n_keys:
            self.model.add_keys(n_keys - self.model.n_keys)
            self.versions = np.concatenate([self.versions, np.zeros(n_keys - len(self.versions), np.int64)])
        if counts is not None:
            self.model.observe(counts)
        start = self._timer()
        self.model.step(steps)
        active = self.model.histogram.has_data()
        g_loss, d_loss = (self.model.g_loss[active].mean(), self.model.d_loss[active].mean()) if bool(active.any()) \
            else (torch.zeros(()), torch.zeros(()))
        stats = torch.stack([g_loss.float().cpu(), d_loss.float().cpu(), self.model.nonfinite.float().cpu()]).tolist()
        return RoundStats(steps, self._timer() - start, int(stats[2]), stats[0], stats[1], self.model.temperature)

    def snapshots(self, key_names: Sequence[str]) -> list[dict]:
        """One snapshot per key that has events (the learned-distribution contract, see README)."""
        model = self.model
        learned = model.probabilities().double().cpu().numpy()
        learned /= learned.sum(axis=1, keepdims=True)
        empirical = model.empirical().double().cpu().numpy()
        divergence = {name: value.cpu().numpy() for name, value in model.divergences().items()}
        steps = model.key_steps().cpu().numpy()
        events = model.histogram.events.cpu().numpy()
        published_at, temperature = rfc3339(self._clock()), model.temperature
        out = []
        for row, key in enumerate(key_names[: model.n_keys]):
            if events[row] == 0:
                continue
            self.versions[row] += 1
            out.append({
                "key": key, "categories": self.labels,
                "probabilities": learned[row].tolist(), "empirical": empirical[row].tolist(),
                "divergence": {name: float(value[row]) for name, value in divergence.items()},
                "temperature": temperature, "step": int(steps[row]), "events": int(events[row]),
                "published_at": published_at, "model": MODEL_NAME, "version": int(self.versions[row]),
            })
        return out

    def remove_rows(self, rows: list[int]) -> None:
        if rows:
            self.model.remove_keys(rows)
            self.versions = np.delete(self.versions, rows)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "versions": torch.from_numpy(self.versions.copy())}

    def load_state_dict(self, state: dict) -> None:
        n_keys = state["model"]["d_params"].shape[0]
        if n_keys > self.model.n_keys:
            self.model.add_keys(n_keys - self.model.n_keys)
        self.model.load_state_dict(state["model"])
        self.versions = state["versions"].numpy().astype(np.int64).copy()
