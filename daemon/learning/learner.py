"""The learner of open categories: one :class:`~daemon.learning.learner.Learner` per size class.

Keys are grouped by the width of their support (:mod:`daemon.learning.supports`), each width a dense
batched model of that many categories, so state memory follows Σ over keys of the categories
each has seen, not keys × the catalogue. Each absorb

1. frees the rows of keys that left;
2. places the counted cells: a category new to a key takes its next column, and a key whose
   support outgrows its width moves to the next class with its whole state (padding masked, so
   its probabilities do not change, :func:`gumbel_models.size_classes.widen`);
3. unmasks the new columns (a new category starts at logit 0, as any category of a new key);
4. counts the cells into their classes.

A training round gives the classes equal shares of ``round_seconds`` in turn; a class with
nothing to learn hands its share on. A snapshot lists the key's support in column order, so its
lists only grow at their end. Like :class:`~daemon.learning.learner.Learner`, every method runs on the
training thread.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
import torch

from gumbel_models import GANConfig, GumbelGAN
from gumbel_models.rows import read_rows
from gumbel_models.size_classes import widen

from ..arrays import grown
from ..categories import CategoryTable
from .ingest import Pending
from ..snapshots import Eviction, Publication, SnapshotBatch
from ..state.changelog.open_rows import OpenRows
from ..timestamps import rfc3339
from .learner import Learner, RoundStats
from .supports import Move, Supports


class OpenLearner:
    def __init__(self, config: GANConfig, table: CategoryTable, *, seed: int = 0, device="auto",
                 round_seconds: float = 0.1, active_set: bool = True, max_step_cells: int = 1 << 21,
                 clock: Callable[[], float] = time.time, timer: Callable[[], float] = time.perf_counter) -> None:
        """``config``: the model settings; its ``n_categories`` is the narrowest class's width."""
        self.config, self.table, self.seed, self.device = config, table, seed, device
        self.round_seconds, self._clock, self._timer = round_seconds, clock, timer
        self._learner_options = dict(active_set=active_set, max_step_cells=max_step_cells, clock=clock, timer=timer)
        self.supports = Supports(smallest=config.n_categories)
        self.classes: dict[int, Learner] = {}
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
        return f"open categories ({len(self.table)} of at most {self.table.max_categories}), keys per width {{{widths}}}"

    def _new_class(self, width: int) -> Learner:
        model = GumbelGAN(replace(self.config, n_categories=width), 0, seed=self.seed + width, device=self.device)
        self.classes[width] = Learner(model, [str(i) for i in range(width)], round_seconds=self.round_seconds,
                                      **self._learner_options)
        return self.classes[width]

    def _learner(self, width: int) -> Learner:
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
        placed = self.supports.place(*pending.cells)                                     # 2.
        for move in placed.moves:
            self._move(move)
        for width, rows in placed.grown.items():                                         # 3.
            sizes = torch.from_numpy(self.supports.classes[width].size[rows])
            self._learner(width).model.set_mask(rows, torch.arange(width) < sizes[:, None])
        for width, cells in placed.cells.items():                                        # 4.
            local, inverse = np.unique(cells.rows, return_inverse=True)
            counts = np.zeros((len(local), width))
            np.add.at(counts, (inverse, cells.columns), cells.counts)
            self._learner(width).observe(local, counts)

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
        widths = sorted(self.classes)
        for i, width in enumerate(widths):
            learner = self.classes[width]
            learner.round_seconds = max(0.0, self.round_seconds - (self._timer() - start)) / (len(widths) - i)
            stats.append(learner.train(Pending(0, None, [])))
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
        """As :meth:`Learner.publication`, each snapshot over its key's support."""
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
        """One batch of per-key snapshots, truncated to each key's support, from the classes' batches."""
        keys, categories, learned, empirical, temperatures, columns = [], [], [], [], [], []
        labels = self._label_array()
        for size_class, batch in parts:
            local = np.asarray(batch.keys, dtype=np.int64)
            sizes, supports = size_class.size[local].tolist(), size_class.categories[local]
            for j, (row, size) in enumerate(zip(size_class.owner[local].tolist(), sizes)):
                keys.append(names_by_row[row])
                categories.append(labels[supports[j, :size]].tolist())
                learned.append(batch.learned[j, :size])
                empirical.append(batch.empirical[j, :size])
            temperatures.append(np.full(len(local), batch.temperature))
            columns.append(batch)
        if not parts:
            return SnapshotBatch.empty([], self.config.temperature(0), rfc3339(self._clock()))
        joined = {name: np.concatenate([getattr(b, name) for b in columns])
                  for name in ("tv", "kl", "js", "steps", "events", "versions")}
        return SnapshotBatch(keys, categories, learned, empirical, temperature=np.concatenate(temperatures),
                             published_at=columns[0].published_at, per_key=True, **joined)

    # -- state topics -------------------------------------------------------------------------
    def take_changed_rows(self) -> tuple[np.ndarray, OpenRows, np.ndarray]:
        """As :meth:`Learner.take_changed_rows`, by key row: each key's state over its support, with the
        support's labels (:class:`~daemon.state.changelog.open_rows.OpenRows`)."""
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
            for row in rows[held].tolist():
                supports.append(labels[size_class.categories[row, : size_class.size[row]]].tolist())
            key_rows.append(owner[held])
            widths.append(np.full(len(held), width))
            versions.append(class_versions[held])
        if not key_rows:
            return np.zeros(0, np.int64), OpenRows(np.zeros(0, np.int64), [], {}), np.zeros(0, np.int64)
        return np.concatenate(key_rows), OpenRows(np.concatenate(widths), supports, states), np.concatenate(versions)

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

    def restore_rows(self, key_rows: np.ndarray, rows: OpenRows, versions: np.ndarray) -> None:
        """Set ``key_rows`` to restored key states (:meth:`OpenRowCodec.localise
        <daemon.state.changelog.open_rows.OpenRowCodec.localise>` has put their supports in this table)."""
        key_rows = np.asarray(key_rows, dtype=np.int64)
        placed = key_rows[key_rows < len(self.supports.width)]
        if (self.supports.width[placed] > 0).any():  # not expected (their rows were freed): free them now
            self.absorb(Pending(0, None, placed[self.supports.width[placed] > 0].tolist()))
        for width in rows.states:
            at = rows.positions(width)
            class_rows = self.supports.restore(key_rows[at], width, rows.categories[width])
            self._learner(width).restore_rows(class_rows, rows.states[width], versions[at])
        self._moves += 1

    # -- checkpoint ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"open": True, "table": self.table.state_dict(), "supports": self.supports.state_dict(),
                "classes": {width: learner.state_dict() for width, learner in self.classes.items()}}

    def load_state_dict(self, state: dict) -> None:
        if not state.get("open"):
            raise ValueError("the checkpoint holds fixed categories; the configuration has open ones")
        self.table.load_state_dict(state["table"])
        self.supports.load_state_dict(state["supports"])
        if set(state["classes"]) != set(self.supports.classes):
            raise ValueError("the checkpoint's size classes and supports disagree")
        self.classes = {}
        for width, learner_state in state["classes"].items():
            self._new_class(int(width)).load_state_dict(learner_state)
