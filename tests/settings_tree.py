"""The settings tree as the tests see it, walked from the models of :mod:`daemon.settings`."""
from __future__ import annotations

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from daemon.settings import GumbeldSettings


def leaf_fields(model: type[BaseModel] = GumbeldSettings, prefix: str = "") -> dict[str, FieldInfo]:
    """Every setting that takes a value, by dotted name; a field typed as a model is a section, not a leaf."""
    leaves: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            leaves |= leaf_fields(field.annotation, f"{prefix}{name}.")
        else:
            leaves[prefix + name] = field
    return leaves


def env_var(name: str) -> str:
    """The environment variable of a dotted setting: ``metrics.port`` is ``GUMBELD_METRICS__PORT``."""
    return "GUMBELD_" + name.replace(".", "__").upper()
