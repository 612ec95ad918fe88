"""One width's learner: keys × W, dense and batched on the device, trained in time-bounded rounds.

The :class:`~daemon.learning.learner.Learner` keeps one per size class and calls it only from the
training thread. A round is bounded in time, not steps: it trains the keys that still had
something to learn when it started (see :mod:`gumbel_models.settling`), in chunks of at most
``max_step_cells`` keys × samples × categories, highest priority first, in passes over a growing
prefix of the plan — its first chunk, then two, four, … and then all of it, over and over — until
``round_seconds`` have passed; when no key has anything to learn it returns at once. The keys
that gain most from a step take the most steps (docs/benchmarks.md, "Measurements behind the
code", has the figures behind the doubling prefix and the default chunk size). Values cross to
the host a few times per round (the active set, losses, counters) and once per publication —
never inside the training steps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from gumbel_models import GumbelGAN, divergences, total_variation
from gumbel_models.histogram import NO_TIME
from gumbel_models.rows import read_rows, write_rows

from ..arrays import grown
from ..snapshots import Eviction, Publication, SnapshotBatch
from ..timestamps import rfc3339
from .bounds import IntervalBounds
from .pending import RowEvents

BLOCK_STEPS = 4  # steps per chunk between clock reads: gathering a chunk costs ~2% of 4 steps


@dataclass(frozen=True)
class RoundStats:
    steps: int             # step calls (each trains one chunk of keys)
    key_steps: int         # Σ over steps of the keys stepped
    seconds: float
    nonfinite: int         # skipped updates so far
    g_loss: float
    d_loss: float
    temperature: float
    active: int            # keys with something to learn when the round started
    settled: int           # keys with events and nothing to learn


class DenseLearner:
    def __init__(self, model: GumbelGAN, labels: Sequence[str], *, round_seconds: float = 0.1,
                 active_set: bool = True, max_step_cells: int = 1 << 21, interval_level: float = 0.9,
                 lateness_ms: int = 0, clock: Callable[[], float] = time.time, timer: Callable[[], float] = time.perf_counter) -> None:
        self.model, self.labels = model, list(labels)
        self._bounds = IntervalBounds(interval_level)
        self.lateness_ms = lateness_ms  # a snapshot's as_of is its key's newest event time less this
        self.round_seconds, self.active_set, self.max_step_cells = round_seconds, active_set, max_step_cells
        self._clock, self._timer = clock, timer
        self.versions = np.zeros(model.n_keys, dtype=np.int64)
        self._published_events = np.zeros(model.n_keys, dtype=np.int64)
        self._published_time = np.full(model.n_keys, -np.inf)
        self._published_learned = torch.zeros(model.n_keys, model.config.n_categories, device=model.device)
        self._changed = True   # counts or training since the last publication
        self.revision = 0      # counts, resets or training so far: equal revisions, equal state
        self._trained = torch.zeros(model.n_keys, dtype=torch.bool, device=model.device)  # since its last publication
        self._unwritten = torch.zeros(model.n_keys, dtype=torch.bool, device=model.device)  # since last taken as rows
        self._divergence = {m: np.zeros(model.n_keys) for m in ("tv", "kl", "js")}   # as last published
        self._worst: dict[str, float] = {}

    @property
    def steps_taken(self) -> int:
        return self.model.t

    def nonfinite_total(self) -> int:
        """Row-updates skipped as non-finite so far (reads the device)."""
        return int(self.model.nonfinite.item())

    def describe(self) -> str:
        return f"device {self.model.device}, {self.model!r}"

    # -- training -----------------------------------------------------------------------------
    def grow(self, n_rows: int) -> None:
        """Room for ``n_rows`` rows; grows by half at least, as copying every row is O(rows)."""
        if n_rows <= self.model.n_keys:
            return
        extra = max(n_rows, self.model.n_keys + self.model.n_keys // 2) - self.model.n_keys
        self.model.add_keys(extra)
        rows = self.model.n_keys
        self.versions, self._published_events = grown(self.versions, rows), grown(self._published_events, rows)
        self._published_time = grown(self._published_time, rows, fill=-np.inf)
        self._divergence = {measure: grown(values, rows) for measure, values in self._divergence.items()}
        self._published_learned = torch.cat([self._published_learned,
                                             self._published_learned.new_zeros(extra, self.model.config.n_categories)])
        self._trained = torch.cat([self._trained, self._trained.new_zeros(extra)])
        self._unwritten = torch.cat([self._unwritten, self._unwritten.new_zeros(extra)])

    def reset(self, rows: Sequence[int]) -> None:
        """Start ``rows`` afresh (their keys left; new keys take them)."""
        rows = list(rows)
        if not rows:
            return
        self.model.reset_keys(rows)
        self._bounds.forget(rows)
        self._unwritten[rows] = True
        self.versions[rows], self._published_events[rows], self._published_time[rows] = 0, 0, -np.inf
        self._changed, self.revision = True, self.revision + 1

    def observe(self, rows: np.ndarray, counts: np.ndarray, events: RowEvents | None = None) -> None:
        """Count ``counts`` ``[len(rows), K]`` new events into the distinct ``rows``; ``events``: how many
        each row received and its newest event time, which the counts are weighed relative to
        (None: the counts are the events, without times)."""
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        if events is None:
            self.model.observe(counts, index)
        else:
            self.model.observe(counts, index, torch.from_numpy(events.newest), torch.from_numpy(events.events))
        self._unwritten.index_fill_(0, index.to(self._unwritten.device), True)
        self._changed, self.revision = True, self.revision + 1

    def train(self) -> RoundStats:
        """Train for at most ``round_seconds`` (less when every key settles)."""
        start = self._timer()
        deadline, steps, key_steps = start + self.round_seconds, 0, 0
        plan = self._plan()  # once per round: a key that settles mid-round trains on until the round ends
        # chunks in this pass, doubling: the first in line take the most steps (all keys: every step)
        reach = 1 if self.active_set else len(plan.chunks)
        while plan.chunks and self._timer() < deadline:
            for rows, samples, lr_scale in plan.chunks[:reach]:
                self.model.step(BLOCK_STEPS, rows=rows, samples=samples, lr_scale=lr_scale)
                self._trained.index_fill_(0, rows, True)
                self._unwritten.index_fill_(0, rows, True)
                steps, key_steps = steps + BLOCK_STEPS, key_steps + BLOCK_STEPS * rows.numel()
                if self._timer() >= deadline:
                    break
            reach *= 2
        active = plan.active
        if steps:
            self._changed, self.revision = True, self.revision + 1
        model = self.model
        has_data = model.histogram.has_data()
        losses = torch.stack([model.g_loss[has_data].mean(), model.d_loss[has_data].mean()]) if bool(has_data.any()) \
            else torch.zeros(2)
        g_loss, d_loss, nonfinite, with_data = torch.cat([losses.float().cpu(), model.nonfinite.float().cpu().view(1),
                                                          has_data.sum().float().cpu().view(1)]).tolist()
        return RoundStats(steps, key_steps, self._timer() - start, int(nonfinite), g_loss, d_loss, model.temperature,
                          active, int(with_data) - active)

    def _plan(self) -> "_Plan":
        """The keys to train now, as ``(rows, samples, lr factor)`` chunks, highest priority first."""
        model = self.model
        if self.active_set:
            rows, samples = model.active_keys()
        else:  # the baseline: every key with events, every step
            rows = torch.nonzero(model.histogram.has_data()).squeeze(-1)
            samples = torch.full_like(rows, model.config.samples_per_step)
        if rows.numel() == 0:
            return _Plan(0, [])
        position, k, chunks = torch.arange(rows.numel(), device=rows.device), model.config.n_categories, []
        for m in torch.unique(samples).tolist():
            chosen = samples == m
            of_class, first = rows[chosen], position[chosen]
            per_step = max(1, self.max_step_cells // (m * k))
            starts = list(range(0, of_class.numel(), per_step))
            order = first[starts].tolist() if starts else []
            chunks += [(order[i], of_class[s:s + per_step], m) for i, s in enumerate(starts)]
        chunks.sort(key=lambda chunk: chunk[0])
        return _Plan(rows.numel(), [(chunk_rows, m, model.settling.step_scale(m) if self.active_set else 1.0)
                                    for _, chunk_rows, m in chunks])

    # -- publishing ---------------------------------------------------------------------------
    def publication(self, names_by_row: Sequence[str | None], named: np.ndarray, evictions: list[Eviction], *,
                    full_interval: float, tolerance: float,
                    labelled: np.ndarray) -> tuple[Publication, dict[str, float]]:
        """Snapshots of the keys that changed since their last publish, and the evictions.

        A key is published when it has new events, when its learned probabilities moved by more
        than ``tolerance`` — and, while it is still learning, than its own settle tolerance (less is
        within its counting noise, and it would otherwise be republished every interval) — or when it was
        last published ``full_interval`` seconds ago or more. Only keys trained since their last
        publication can have moved, so only they are compared. Also returns, per measure, the worst
        published divergence among keys without metric series of their own (``labelled`` False).
        """
        model, now, n = self.model, self._clock(), self.model.n_keys
        named = grown(named[:n], n)  # ``[rows]`` rows whose key is in the table
        due = named & (self._published_events > 0) & (now - self._published_time >= full_interval)
        if not self._changed and not due.any() and not bool(self._trained.any()):  # idle: nothing to read
            return Publication(SnapshotBatch.empty(model.temperature, rfc3339(now)), evictions), self._worst
        self._changed = False
        events = model.histogram.events.cpu().numpy()
        live = named & (events > 0)
        due &= live
        chosen = due | (live & (events != self._published_events))
        trained = torch.nonzero(self._trained).squeeze(-1)
        if trained.numel():
            # a key still learning moves every round: republish it when it moved past its own
            # tolerance; a key that settled publishes its final state
            awake = model.settling.awake.index_select(0, trained)
            self._trained.index_copy_(0, trained, awake)  # a settled key's state is final once compared
            own = torch.where(awake, model.settling.tol.index_select(0, trained).clamp(min=tolerance),
                              torch.full_like(model.settling.tol.index_select(0, trained), tolerance))
            moved = total_variation(model.probabilities(rows=trained), self._published_learned.index_select(0, trained))
            chosen[trained[moved > own].cpu().numpy()] = True
        chosen &= live
        rows = np.flatnonzero(chosen)
        rows_t = torch.from_numpy(rows).to(model.device)
        # an awake key trained but not published stays a candidate: it may settle without another
        # step, and its final state must go out
        self._trained.index_fill_(0, rows_t, False)
        learned, empirical = model.probabilities(rows=rows_t), model.empirical(rows_t)
        # against what the key learns: its histogram, plus the pooled prior's pseudo-counts with one
        goal, effective = model.targets.of(rows_t)
        divergence = {m: v.cpu().numpy() for m, v in divergences(goal.to(torch.float32), learned).items()}
        self._published_learned.index_copy_(0, rows_t, learned)
        self.versions[rows] += 1
        self._published_events[rows], self._published_time[rows] = events[rows], now
        for measure, values in divergence.items():
            self._divergence[measure][rows] = values
        others = live & ~labelled[:n] if len(labelled) >= n else live & ~np.pad(labelled, (0, n - len(labelled)))
        self._worst = {m: float(v[others].max()) for m, v in self._divergence.items()} if others.any() else {}
        probabilities = learned.double().cpu().numpy()
        probabilities /= probabilities.sum(axis=1, keepdims=True).clip(min=1e-300)
        lower, upper = self._bounds.of(model, rows_t, events[rows])
        newest = model.histogram.newest.index_select(0, rows_t).cpu().numpy()
        batch = SnapshotBatch(
            [names_by_row[r] for r in rows.tolist()], [self.labels] * len(rows), probabilities,
            empirical.double().cpu().numpy(), divergence["tv"], divergence["kl"], divergence["js"],
            model.temperature, model.key_steps().index_select(0, rows_t).cpu().numpy(), events[rows],
            self.versions[rows].copy(), rfc3339(now), effective.cpu().numpy(),
            lower, upper, self._bounds.level, np.where(newest == NO_TIME, NO_TIME, newest - self.lateness_ms))
        return Publication(batch, evictions), self._worst

    # -- state --------------------------------------------------------------------------------
    def take_changed_rows(self) -> tuple[np.ndarray, dict[str, torch.Tensor], np.ndarray]:
        """Rows changed (events, resets, training) since the last call, their whole state
        (:func:`~gumbel_models.rows.read_rows`) and snapshot versions; they count as unchanged after."""
        rows = torch.nonzero(self._unwritten).squeeze(-1)
        self._unwritten.index_fill_(0, rows, False)
        index = rows.cpu().numpy()
        return index, read_rows(self.model, rows), self.versions[index].copy()

    def mark_changed(self, rows: np.ndarray) -> None:
        """Rows taken by :meth:`take_changed_rows` that could not be written: taken again next time."""
        self._unwritten[torch.from_numpy(rows).to(self._unwritten.device)] = True

    def restore_rows(self, rows: np.ndarray, state: dict[str, torch.Tensor], versions: np.ndarray) -> None:
        """Set ``rows`` to restored key states (as :meth:`take_changed_rows` gives) and snapshot versions;
        they are published at the next publication."""
        if len(rows):
            self.grow(int(rows.max()) + 1)
        index = torch.from_numpy(rows).to(self.model.device)
        write_rows(self.model, index, state)
        self._bounds.forget(rows)
        self.versions[rows] = versions
        self._published_events[rows], self._published_time[rows] = 0, -np.inf
        self._changed, self.revision = True, self.revision + 1

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "versions": torch.from_numpy(self.versions.copy())}

    def load_state_dict(self, state: dict) -> None:
        self.grow(state["model"]["d_params"].shape[0])
        self.model.load_state_dict(state["model"])
        self.versions = state["versions"].numpy().astype(np.int64).copy()
        self._unwritten.fill_(True)  # this state may never have been written as rows


@dataclass(frozen=True)
class _Plan:
    active: int
    chunks: list[tuple[torch.Tensor, int, float]]   # (rows, samples per step, learning-rate factor)
