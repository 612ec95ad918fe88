"""The learner: every key's distribution, one dense batched learner per size class of supports.

The categories are a :class:`~daemon.categories.CategoryTable`: given up front (``model.categories``,
:class:`~daemon.learning.full_supports.FullSupports`: every key over the whole table, one class)
or learned from the stream (``"open"``, :class:`~daemon.learning.supports.Supports`: each key over
the categories it has seen, in classes by width, so state memory follows Σ over keys of the
categories each has seen, not keys × the catalogue). Each absorb

1. frees the rows of keys that left;
2. places the counted cells: a category new to a key takes its next column, and a key whose
   support outgrows its width moves to the next class with its whole state (padding masked, so
   its probabilities do not change, :func:`gumbel_models.size_classes.widen`);
3. unmasks the new columns (a new category starts at logit 0, as any category of a new key);
4. counts the cells into their classes, with each key's events and newest event time.

A training round gives the classes equal shares of ``round_seconds`` in turn; a class with
nothing to learn hands its share on. A snapshot lists the key's support in column order, so its
lists only grow at their end. Every method runs on the training thread
(:class:`~daemon.learning.training.Training`), so they never interleave and need no locks.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
import torch

from gumbel_models import GANConfig, GumbelGAN, resolve_device
from gumbel_models.histogram import NO_TIME
from gumbel_models.rows import read_rows
from gumbel_models.size_classes import widen

from ..arrays import grown
from ..categories import CategoryTable
from ..snapshots import Eviction, Publication, SnapshotBatch
from ..timestamps import rfc3339
from .dense import DenseLearner, RoundStats
from .full_supports import FullSupports
from .pending import Pending
from .key_rows import KeyRows
from .pooling import PriorClass, PriorRefresh
from .supports import Move, Supports


class Learner:
    def __init__(self, config: GANConfig, table: CategoryTable, supports: Supports | FullSupports, *, seed: int = 0,
                 device="auto", round_seconds: float = 0.1, active_set: bool = True, max_step_cells: int = 1 << 21,
                 prior: PriorRefresh | None = None, interval_level: float = 0.9, lateness_ms: int = 0,
                 clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        """``config``: the model settings (each class takes its own width); ``table``: the categories;
        ``prior``: the pooled prior's refresh; ``interval_level``: of the posterior intervals in snapshots;
        ``lateness_ms``: a snapshot is as of its key's newest event time less this (its watermark)."""
        self.config, self.table, self.supports, self.seed, self.device = config, table, supports, seed, device
        self.prior = prior
        self.round_seconds, self._clock, self._timer = round_seconds, clock, timer
        self._learner_options = dict(active_set=active_set, max_step_cells=max_step_cells, clock=clock, timer=timer,
                                     interval_level=interval_level, lateness_ms=lateness_ms)
        self.classes: dict[int, DenseLearner] = {}
        self._moves = 0  # part of the revision: a move changes state without a class counting it
        self._labels = np.zeros(0, dtype=object)

    @property
    def revision(self) -> int:
        """Equal revisions, equal state (each part only ever counts up)."""
        return self._moves + sum(learner.revision for learner in self.classes.values())

    @property
    def steps_taken(self) -> int:
        return max((learner.steps_taken for learner in self.classes.values()), default=0)

    def nonfinite_total(self) -> int:
        return sum(learner.nonfinite_total() for learner in self.classes.values())

    def describe(self) -> str:
        widths = ", ".join(f"{w}: {int((self.supports.classes[w].owner >= 0).sum())}" for w in sorted(self.classes))
        return (f"{len(self.table)} categories (at most {self.table.max_categories}), keys per width {{{widths}}}, "
                f"device {resolve_device(self.device)}")

    def _new_class(self, width: int) -> DenseLearner:
        model = GumbelGAN(replace(self.config, n_categories=width), 0, seed=self.seed + width - self.supports.smallest,
                          device=self.device)
        self.classes[width] = DenseLearner(model, [str(i) for i in range(width)], round_seconds=self.round_seconds,
                                           **self._learner_options)
        if self.prior is not None:
            self.prior.attach(self._prior_class(width))
        return self.classes[width]

    def _prior_class(self, width: int) -> PriorClass:
        """Class ``width`` as the pooled prior sees it: with fixed categories column k is category k."""
        columns = None if isinstance(self.supports, FullSupports) else self.supports.classes[width]
        return PriorClass(self.classes[width].model, columns)

    def _learner(self, width: int) -> DenseLearner:
        """The learner of class ``width``, made if new, with a model row for every row of the class."""
        learner = self.classes[width] if width in self.classes else self._new_class(width)
        learner.grow(len(self.supports.classes[width].owner))
        return learner

    # -- training -----------------------------------------------------------------------------
    def absorb(self, pending: Pending) -> None:
        if pending.reset_rows:                                                           # 1.
            for width, rows in self.supports.release(sorted(set(pending.reset_rows))).items():
                self._learner(width).reset(rows.tolist())
            self._moves += 1
        if pending.cells is None or not len(pending.cells.rows):
            return
        cells = pending.cells
        placed = self.supports.place(cells.rows, cells.categories, cells.counts)          # 2.
        for move in placed.moves:
            self._move(move)
        for width, rows in placed.grown.items():                                         # 3.
            sizes = torch.from_numpy(self.supports.classes[width].size[rows])
            self._learner(width).model.set_mask(rows, torch.arange(width) < sizes[:, None])
        for width, cells in placed.cells.items():                                        # 4.
            local, inverse = np.unique(cells.rows, return_inverse=True)
            counts = np.zeros((len(local), width))
            np.add.at(counts, (inverse, cells.columns), cells.counts)
            rows = None if pending.rows is None else pending.rows.at(self.supports.classes[width].owner[local])
            self._learner(width).observe(local, counts, rows)

    def _move(self, move: Move) -> None:
        old, new = self.classes[move.width], self._learner(move.new_width)
        state = read_rows(old.model, torch.from_numpy(move.rows).to(old.model.device))
        new.restore_rows(move.new_rows, widen(state, move.new_width), old.versions[move.rows].copy())
        old.reset(move.rows.tolist())
        self._moves += 1

    def train(self, pending: Pending) -> RoundStats:
        """Take ``pending``, then train every class in turn within ``round_seconds``."""
        self.absorb(pending)
        start, stats = self._timer(), []
        if self.prior is not None:
            self.prior.refresh([self._prior_class(width) for width in self.classes], len(self.table))
        widths = sorted(self.classes)
        for i, width in enumerate(widths):
            learner = self.classes[width]
            learner.round_seconds = max(0.0, self.round_seconds - (self._timer() - start)) / (len(widths) - i)
            stats.append(learner.train())
        if not stats:
            return RoundStats(0, 0, 0.0, 0, 0.0, 0.0, self.config.temperature(0), 0, 0)
        busiest = max(stats, key=lambda s: s.active + s.settled)
        weights = np.array([s.active + s.settled for s in stats], dtype=np.float64) + 1e-12
        return RoundStats(sum(s.steps for s in stats), sum(s.key_steps for s in stats), self._timer() - start,
                          sum(s.nonfinite for s in stats),
                          float(np.average([s.g_loss for s in stats], weights=weights)),
                          float(np.average([s.d_loss for s in stats], weights=weights)), busiest.temperature,
                          sum(s.active for s in stats), sum(s.settled for s in stats))

    # -- publishing ---------------------------------------------------------------------------
    def publication(self, names_by_row: Sequence[str | None], named: np.ndarray, evictions: list[Eviction], *,
                    full_interval: float, tolerance: float,
                    labelled: np.ndarray) -> tuple[Publication, dict[str, float]]:
        """Snapshots of the keys that changed since their last publish, each over its key's support,
        and the evictions (see :meth:`DenseLearner.publication`); also the worst published divergence
        of the keys without metric series of their own."""
        n = len(self.supports.width)
        named, labelled = grown(named, n)[:n], grown(labelled, n)[:n]
        parts, worst = [], {}
        for width, learner in self.classes.items():
            size_class = self.supports.classes[width]
            owner = grown(size_class.owner, learner.model.n_keys, fill=-1)[: learner.model.n_keys]
            mine = owner >= 0
            publication, class_worst = learner.publication(
                range(learner.model.n_keys), mine & named[owner.clip(0)], [], full_interval=full_interval,
                tolerance=tolerance, labelled=mine & labelled[owner.clip(0)])
            for measure, value in class_worst.items():
                worst[measure] = max(worst.get(measure, value), value)
            if len(publication.snapshots):
                parts.append((size_class, publication.snapshots))
        return Publication(self._merged(parts, names_by_row), evictions), worst

    def _merged(self, parts: list, names_by_row: Sequence[str | None]) -> SnapshotBatch:
        """One batch of snapshots, each cut to its key's support, from the classes' batches."""
        if not parts:
            return SnapshotBatch.empty(self.config.temperature(0), rfc3339(self._clock()))
        keys, categories, temperatures = [], [], []
        cut = {name: [] for name in ("learned", "empirical", "lower", "upper")}
        labels = self._label_array()
        for size_class, batch in parts:
            local = np.asarray(batch.keys, dtype=np.int64)
            keys += [names_by_row[row] for row in size_class.owner[local].tolist()]
            categories += size_class.labels_of(local, labels)
            sizes = size_class.size[local]
            for name, rows in cut.items():
                rows.append(_cut(getattr(batch, name), sizes))
            temperatures.append(np.full(len(local), batch.temperature))
        joined = {name: np.concatenate([getattr(batch, name) for _, batch in parts])
                  for name in ("tv", "kl", "js", "steps", "events", "versions", "effective_events", "as_of")}
        return SnapshotBatch(keys, categories, **{name: _joined(rows) for name, rows in cut.items()},
                             temperature=np.concatenate(temperatures), published_at=parts[0][1].published_at,
                             interval_level=parts[0][1].interval_level, **joined)

    # -- state topics -------------------------------------------------------------------------
    def take_changed_rows(self) -> tuple[np.ndarray, KeyRows, np.ndarray]:
        """The key rows changed (events, resets, training) since the last call, each key's state over its
        support with the support's labels (:class:`~daemon.learning.key_rows.KeyRows`), and their snapshot
        versions; they count as unchanged after."""
        key_rows, widths, supports, states, versions = [], [], [], {}, []
        labels = self._label_array()
        for width, learner in self.classes.items():
            rows, state, class_versions = learner.take_changed_rows()
            size_class = self.supports.classes[width]
            owner = grown(size_class.owner, learner.model.n_keys, fill=-1)[rows]
            held = np.flatnonzero(owner >= 0)  # the others were freed: their keys left or moved
            if not len(held):
                continue
            index = torch.from_numpy(held)
            states[width] = {f: v.index_select(0, index.to(v.device)) for f, v in state.items()}
            supports += size_class.labels_of(rows[held], labels)
            key_rows.append(owner[held])
            widths.append(np.full(len(held), width))
            versions.append(class_versions[held])
        if not key_rows:
            return np.zeros(0, np.int64), KeyRows(np.zeros(0, np.int64), [], {}), np.zeros(0, np.int64)
        return np.concatenate(key_rows), KeyRows(np.concatenate(widths), supports, states), np.concatenate(versions)

    def newest_times(self, n_rows: int) -> np.ndarray:
        """``[n_rows]`` int64: each key row's newest event time (``NO_TIME`` for none, or a free row)."""
        newest = np.full(n_rows, NO_TIME, dtype=np.int64)
        for width, learner in self.classes.items():
            owner = grown(self.supports.classes[width].owner, learner.model.n_keys, fill=-1)[: learner.model.n_keys]
            held = np.flatnonzero((owner >= 0) & (owner < n_rows))
            newest[owner[held]] = learner.model.histogram.newest.cpu().numpy()[held]
        return newest

    def _label_array(self) -> np.ndarray:
        """The table's labels as an array, to index by category (renewed when the table grew)."""
        if len(self._labels) != len(self.table):  # the event loop appends to it; read, never changed, here
            self._labels = np.array(self.table.labels, dtype=object)
        return self._labels

    def mark_changed(self, key_rows: np.ndarray) -> None:
        """Rows taken by :meth:`take_changed_rows` that could not be written: taken again next time."""
        key_rows = np.asarray(key_rows, dtype=np.int64)
        key_rows = key_rows[self.supports.width[key_rows] > 0]
        for width in np.unique(self.supports.width[key_rows]).tolist():
            of = key_rows[self.supports.width[key_rows] == width]
            self.classes[width].mark_changed(self.supports.row[of])

    def restore_rows(self, key_rows: np.ndarray, rows: KeyRows, versions: np.ndarray) -> None:
        """Set ``key_rows`` to restored key states (the codec has put their supports in this table) and
        snapshot versions; they are published at the next publication."""
        key_rows = np.asarray(key_rows, dtype=np.int64)
        placed = key_rows[key_rows < len(self.supports.width)]
        if (self.supports.width[placed] > 0).any():  # their rows were freed, and are reset now
            self.absorb(Pending(0, None, placed[self.supports.width[placed] > 0].tolist()))
        for width in rows.states:
            at = rows.positions(width)
            class_rows = self.supports.restore(key_rows[at], width, rows.categories[width])
            self._learner(width).restore_rows(class_rows, rows.states[width], versions[at])
        self._moves += 1

    # -- checkpoint ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"table": self.table.state_dict(), "supports": self.supports.state_dict(),
                "classes": {width: learner.state_dict() for width, learner in self.classes.items()}}

    def load_state_dict(self, state: dict) -> None:
        """A state of :meth:`state_dict`, or of fixed categories as saved before size classes (one model)."""
        if "model" in state:
            width, rows = self.supports.smallest, state["model"]["d_params"].shape[0]
            state = {"table": self.table.state_dict(), "supports": {"whole_table": width, "rows": rows},
                     "classes": {width: state}}
        self.table.load_state_dict(state["table"])
        self.supports.load_state_dict(state["supports"])
        if set(state["classes"]) - set(self.supports.classes):  # a class is made at its first key's events
            raise ValueError("the checkpoint's size classes and supports disagree")
        self.classes = {}
        for width, learner_state in state["classes"].items():
            self._new_class(int(width)).load_state_dict(learner_state)


def _cut(rows: np.ndarray, sizes: np.ndarray) -> np.ndarray | list[np.ndarray]:
    """``rows`` ``[n, W]``, each cut to its size: the array itself when every row is whole."""
    if (sizes == rows.shape[1]).all():
        return rows
    return [row[:size] for row, size in zip(rows, sizes.tolist())]


def _joined(parts: list) -> np.ndarray | list[np.ndarray]:
    """The rows of ``parts`` in order: one array when there is one whole part."""
    if len(parts) == 1:
        return parts[0]
    return [row for part in parts for row in part]
