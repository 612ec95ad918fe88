"""A learner and a key table afresh, as the settings say (or the key table from a checkpoint)."""
from __future__ import annotations

from gumbel_models import GumbelGAN

from ..categories import CategoryTable
from ..settings import GumbeldSettings
from .keys import KeyTable
from .learner import Learner
from .open_learner import OpenLearner


def new_learner(settings: GumbeldSettings, categories: CategoryTable | None = None, *, clock) -> Learner | OpenLearner:
    """A learner afresh: over the fixed categories, or over the open ``categories`` table (emptied:
    also after a checkpoint that did not fit)."""
    m, t = settings.model, settings.training
    options = dict(round_seconds=t.round_seconds, active_set=t.active_set, max_step_cells=t.max_step_cells, clock=clock)
    if categories is not None:
        categories.load_state_dict({"labels": []})
        return OpenLearner(m.gan_config(), categories, seed=t.seed, device=t.device, **options)
    return Learner(GumbelGAN(m.gan_config(), 0, seed=t.seed, device=t.device), m.labels, **options)


def new_keys(settings: GumbeldSettings, state: dict | None = None) -> KeyTable:
    """The key table, afresh or from a checkpoint's ``state``."""
    m = settings.model
    return KeyTable(m.max_keys, m.max_keys_policy) if state is None else \
        KeyTable.from_state(state, m.max_keys, m.max_keys_policy)
