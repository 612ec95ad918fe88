"""Dataclass fields that carry their own bounds and description, and the one check that enforces them.

A field declared with :func:`checked` keeps its bounds (``ge``, ``gt``, ``le``, ``lt``) and, when it
is also a setting of the daemon, its description in its metadata. :func:`check_fields` is what a
dataclass runs in ``__post_init__``; :mod:`daemon.settings` makes its settings from
:func:`setting_fields` and runs :func:`check_field` on each value as the settings load.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Example:
...     rate: float = checked(0.5, "how fast", gt=0, lt=1)
...     def __post_init__(self): check_fields(self)
>>> Example(2.0)
Traceback (most recent call last):
ValueError: rate must lie in (0, 1), got 2.0
"""
from __future__ import annotations

import functools
import math
import numbers
import operator
from dataclasses import MISSING, field, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints


def checked(default: Any = MISSING, description: str | None = None, **bounds: float) -> Any:
    """A dataclass field whose ``bounds`` (any of ``ge``, ``gt``, ``le``, ``lt``) :func:`check_field`
    enforces; with a ``description`` it is also a setting of the daemon."""
    return field(default=default, metadata=bounds if description is None else {"description": description, **bounds})


_BOUNDS = {"ge": (operator.ge, ">="), "gt": (operator.gt, ">"), "le": (operator.le, "<="), "lt": (operator.lt, "<")}


@functools.cache
def _rules(config: type) -> dict[str, tuple[Any, dict[str, float]]]:
    """Type and bounds of each field of the dataclass ``config``."""
    hints = get_type_hints(config)
    return {f.name: (hints[f.name], {k: f.metadata[k] for k in _BOUNDS if k in f.metadata}) for f in fields(config)}


def check_field(config: type, name: str, value: Any) -> Any:
    """``value`` if field ``name`` of the dataclass ``config`` may hold it; else ValueError naming the field.

    None passes where the type allows it; a ``Literal`` type admits its choices; a bounded field a finite
    number within its bounds (a tuple: each element). Types themselves are not checked.
    """
    hint, bounds = _rules(config)[name]
    optional = type(None) in get_args(hint)
    if value is None and optional:
        return value
    if get_origin(hint) is Literal and value not in get_args(hint):
        raise ValueError(f"{name} must be one of {', '.join(map(str, get_args(hint)))}, got {value!r}")
    values = value if get_origin(hint) is tuple and isinstance(value, tuple) else (value,)
    if bounds and not all(_within(x, bounds) for x in values):
        each = "each " if get_origin(hint) is tuple else ""
        raise ValueError(f"{name} must {each}{_rule(hint, bounds)}{' or be None' if optional else ''}, got {value!r}")
    return value


def setting_fields(config: type) -> dict[str, tuple[Any, Any, str]]:
    """Type, default and description of each field of the dataclass ``config`` that has a description."""
    hints = get_type_hints(config)
    return {f.name: (hints[f.name], f.default if f.default_factory is MISSING else f.default_factory(),
                     f.metadata["description"]) for f in fields(config) if "description" in f.metadata}


def check_fields(config: Any) -> None:
    """:func:`check_field` on each field of the dataclass instance ``config``."""
    for name in _rules(type(config)):
        check_field(type(config), name, getattr(config, name))


def _within(x: Any, bounds: dict[str, float]) -> bool:
    return isinstance(x, numbers.Real) and math.isfinite(x) and all(_BOUNDS[k][0](x, b) for k, b in bounds.items())


def _rule(hint: Any, bounds: dict[str, float]) -> str:
    """``bounds`` in words: ``lie in [0, 1)``, ``be a finite number > 0``, ``be an integer >= 1``."""
    low, high = bounds.keys() & {"ge", "gt"}, bounds.keys() & {"le", "lt"}
    if low and high:
        (lo,), (hi,) = low, high
        return f"lie in {'(' if lo == 'gt' else '['}{bounds[lo]}, {bounds[hi]}{')' if hi == 'lt' else ']'}"
    kind = "an integer" if int in (hint, *get_args(hint)) else "a finite number"
    return f"be {kind} " + " and ".join(f"{_BOUNDS[k][1]} {b}" for k, b in bounds.items())
