"""What the service saves in its local checkpoint, and the check that a saved one fits.

``{"version", "categories", "keys", "evictions", "learner", "source"}``: the key table, the
evictions not yet delivered, the learner (model and snapshot versions) and the source position.
Version 1 kept the keys as a plain list and no evictions; it still loads.
"""
from __future__ import annotations

CHECKPOINT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def service_state(labels: list[str] | str, keys: dict, evictions: list[dict], learner: dict, position: dict) -> dict:
    return {"version": CHECKPOINT_VERSION, "categories": labels, "keys": keys, "evictions": evictions,
            "learner": learner, "source": position}


def check_compatible(saved: dict, labels: list[str] | str) -> None:
    """Raise ``ValueError`` saying why ``saved`` does not fit a service over ``labels``."""
    if saved.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"service state version {saved.get('version')!r}, expected one of {READABLE_VERSIONS}")
    saved_labels = saved["categories"] if isinstance(saved["categories"], str) else list(saved["categories"])
    if saved_labels != labels:  # "open" for open categories, whose table is part of the learner's state
        raise ValueError(f"it was trained on categories {saved_labels!r}, the configuration has {labels!r}")
