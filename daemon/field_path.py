"""Where a field sits in a JSON event: a name, a dotted path, or a JSON Pointer, parsed once.

Events from CloudEvents, Segment-style trackers and change-data-capture tools carry their fields
in nested objects. ``source.kafka.category_field`` and ``source.kafka.key_field`` name one as:

- a plain name, ``category``: the member of the event object (no dot, no leading ``/``);
- a dotted path, ``properties.category`` or ``payload.after.category``: one name per object level;
- a JSON Pointer (RFC 6901), anything starting with ``/``: ``/properties/category``, with ``~1``
  for a ``/`` and ``~0`` for a ``~`` inside a name. The pointer is how a name holding a dot (or
  an empty name) is written: ``/user.id`` is the member ``"user.id"``, ``user.id`` is ``id`` in
  ``user``.

In both path forms a step into an array is its index, ``0``, ``1``, … (``items.0.category`` or
``/items/0/category``); JSON Pointer's ``-`` (past the last element) and indices with leading
zeros address nothing.

>>> path = FieldPath("properties.category")
>>> path.find({"properties": {"category": "red"}}), path.find({"properties": "red"})
('red', None)
>>> FieldPath("/items/1/sku").find({"items": [{"sku": 3}, {"sku": 4}]})
4
>>> FieldPath("/a~1b/c~0d").steps, FieldPath("/user.id").name, FieldPath("category").name
(('a/b', 'c~d'), 'user.id', 'category')
>>> FieldPath("user..id")
Traceback (most recent call last):
ValueError: 'user..id' has an empty name between dots; a name that holds a dot or is empty is written as a JSON Pointer, e.g. /user.id
"""
from __future__ import annotations

import re
from typing import Any

_INDEX = re.compile(r"0|[1-9][0-9]*")  # RFC 6901 array indices: no sign, no leading zeros
_BAD_ESCAPE = re.compile(r"~(?![01])")


class FieldPath:
    """A path into a JSON value: ``steps`` (member names, or array indices as their digits).

    ``name`` is the one member name of a path one step deep (``category``, ``/category``) and
    ``None`` otherwise: the decoder's fast path reads such a field with a single ``dict.get``.
    ``str(path)`` is the path as it was written, for messages.
    """

    __slots__ = ("text", "steps", "name", "_walk")

    def __init__(self, text: str) -> None:
        self.text = text
        self.steps = _pointer_steps(text) if text.startswith("/") else _dotted_steps(text)
        self.name = self.steps[0] if len(self.steps) == 1 else None
        self._walk = tuple((step, int(step) if _INDEX.fullmatch(step) else None) for step in self.steps)

    def find(self, value: Any, default: Any = None) -> Any:
        """The value at this path inside ``value``, or ``default`` where there is none: a missing
        member, an index past the end or not an index, or a step into a string, number or null."""
        for name, index in self._walk:
            if isinstance(value, dict):
                value = value.get(name, _MISSING)
                if value is _MISSING:
                    return default
            elif isinstance(value, list) and index is not None and index < len(value):
                value = value[index]
            else:
                return default
        return value

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"FieldPath({self.text!r})"


_MISSING = object()


def _dotted_steps(text: str) -> tuple[str, ...]:
    if not text:
        raise ValueError("a field path must not be empty: give a name, a dotted path or a JSON Pointer")
    steps = tuple(text.split("."))
    if "" in steps:
        raise ValueError(f"{text!r} has an empty name between dots; a name that holds a dot or is empty is "
                         "written as a JSON Pointer, e.g. /user.id")
    return steps


def _pointer_steps(text: str) -> tuple[str, ...]:
    bad = _BAD_ESCAPE.search(text)
    if bad:
        raise ValueError(f"{text!r} is not a JSON Pointer: '~' at position {bad.start()} must be followed by 0 or 1 "
                         "(~0 stands for '~', ~1 for '/')")
    return tuple(step.replace("~1", "/").replace("~0", "~") for step in text[1:].split("/"))
