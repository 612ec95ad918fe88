"""A learner and a key table afresh, as the settings say (or the key table from a checkpoint)."""
from __future__ import annotations

from ..categories import CategoryTable
from ..settings import GumbeldSettings
from .full_supports import FullSupports
from .keys import KeyTable
from .learner import Learner
from .pooling import PriorFitted, PriorRefresh
from .supports import Supports


def new_learner(settings: GumbeldSettings, categories: CategoryTable | None = None, *, clock,
                metrics: PriorFitted | None = None) -> Learner:
    """A learner afresh over the fixed categories (a table of them, every key over all), or over the
    open ``categories`` table (emptied: also after a checkpoint that did not fit); ``metrics`` hears
    of each fit of a pooled prior."""
    m, t = settings.model, settings.training
    config = m.gan_config()
    if categories is not None:
        categories.load_state_dict({"labels": []})
        table, supports = categories, Supports(smallest=config.n_categories)
    else:
        table, supports = CategoryTable(len(m.labels)), FullSupports(len(m.labels))
        table.indices(m.labels)
    prior = PriorRefresh(seed=t.seed, metrics=metrics) if m.prior == "pooled" else None
    return Learner(config, table, supports, seed=t.seed, device=t.device, round_seconds=t.round_seconds,
                   active_set=t.active_set, max_step_cells=t.max_step_cells, prior=prior,
                   interval_level=m.interval_level, lateness_ms=m.allowed_lateness_ms or 0, clock=clock)


def new_keys(settings: GumbeldSettings, state: dict | None = None) -> KeyTable:
    """The key table, afresh or from a checkpoint's ``state``."""
    m = settings.model
    return KeyTable(m.max_keys, m.max_keys_policy) if state is None else \
        KeyTable.from_state(state, m.max_keys, m.max_keys_policy)
