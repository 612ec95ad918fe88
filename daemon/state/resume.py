"""Resuming at startup: the learner, key table and source position of the local checkpoint.

A checkpoint that cannot be read, or that does not fit the configuration (other categories, a
broken state), stops the start with what to do — unless ``checkpoint.fresh_start``, which starts
afresh and says so.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from ..categories import CategoryTable
from ..errors import StartupError
from ..learning.keys import KeyTable
from ..learning.learner import Learner
from ..metrics import Metrics
from ..settings import GumbeldSettings
from ..learning.factory import new_keys, new_learner
from .checkpoint import CheckpointError, CheckpointStore
from .service_state import check_compatible

log = logging.getLogger("gumbeld")


@dataclass
class Resumed:
    learner: Learner
    keys: KeyTable
    saved: dict | None  # the checkpoint resumed from; None: a fresh start


def resume(settings: GumbeldSettings, store: CheckpointStore, *, source, metrics: Metrics,
           categories: CategoryTable | None, clock: Callable[[], float]) -> Resumed:
    """The state of ``store``'s checkpoint, or a fresh one; ``source`` gets its position back.

    Runs on the training thread: loading puts the model on its device.
    """
    s, labels = settings.checkpoint, settings.model.categories if settings.model.open else settings.model.labels
    learner = new_learner(settings, categories, clock=clock, metrics=metrics)
    try:
        saved = store.load()
    except CheckpointError as error:
        if not s.fresh_start:
            raise StartupError(str(error)) from None
        log.warning("starting fresh, ignoring the checkpoint: %s", error)
        return Resumed(learner, new_keys(settings), None)
    if saved is None:
        log.info("no checkpoint in %s: starting fresh", s.directory)
        return Resumed(learner, new_keys(settings), None)
    try:
        check_compatible(saved, labels)
        keys = new_keys(settings, saved["keys"])
        learner.load_state_dict(saved["learner"])
        source.restore(saved.get("source", {}))
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        if not s.fresh_start:
            raise StartupError(f"checkpoint in {s.directory} does not fit this configuration: {error}. "
                               "Remove it or set checkpoint.fresh_start=true to start anew.") from None
        log.warning("starting fresh, checkpoint does not fit: %s", error)
        return Resumed(new_learner(settings, categories, clock=clock, metrics=metrics), new_keys(settings), None)
    if store.saved_at is not None:
        metrics.checkpoint_restored(store.saved_at)
        # downtime is not idleness: the keys' events may be waiting in the source
        keys.last_seen[: keys.n_rows] += max(0.0, clock() - store.saved_at)
    log.info("resumed from checkpoint: %d keys, step %d", len(keys), learner.steps_taken)
    return Resumed(learner, keys, saved)
