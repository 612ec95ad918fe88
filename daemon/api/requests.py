"""Reading what a ``/v1`` request asks for: each malformed part is a :class:`Problem` naming it.

>>> events_as_counts(["a", "b", "a"], ["a", "b", "c"], limit=10)
[2, 1, 0]
>>> events_as_counts({"c": 4}, ["a", "b", "c"], limit=10)
[0, 0, 4]
>>> events_as_counts(["d"], ["a", "b", "c"], limit=10)
Traceback (most recent call last):
...
daemon.api.problems.Problem: categories the model does not know: ['d']
"""
from __future__ import annotations

import orjson
from aiohttp import web

from .problems import Problem

UNKNOWN_NAMED = 10  # unknown categories named in a 422 at most


def key_of(name: object, max_length: int) -> str:
    """``name`` as a key: a non-empty string of at most ``max_length`` characters."""
    if not isinstance(name, str) or not name:
        raise Problem(400, f"a key is a non-empty string, not {orjson.dumps(name).decode()[:80]}")
    if len(name) > max_length:
        raise Problem(400, f"key longer than {max_length} characters (api.max_key_length)")
    return name


def integer(request: web.Request, name: str, *, default: int | None, low: int, high: int) -> int | None:
    """Query parameter ``name`` as an integer in ``[low, high]``; ``default`` when absent."""
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Problem(400, f"query parameter {name} must be an integer, not {text[:40]!r}") from None
    if not low <= value <= high:
        raise Problem(400, f"query parameter {name} must be between {low} and {high}, not {value}")
    return value


async def json_object(request: web.Request, field: str) -> object:
    """The field ``field`` of the request's JSON object body."""
    body = await request.read()  # past api.max_body_bytes: aiohttp answers 413
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, f"the body is not JSON: {error}") from None
    if not isinstance(document, dict) or field not in document:
        raise Problem(400, f'the body must be a JSON object with "{field}"')
    return document[field]


def events_as_counts(events: object, categories: list[str], limit: int) -> list[int]:
    """Counts per category (in ``categories``' order) of ``events``: a list of categories, or
    ``{category: count}``; a category given as a number is its decimal text."""
    if isinstance(events, list):
        given = {}
        for event in events:
            if isinstance(event, bool) or not isinstance(event, (str, int)):
                raise Problem(400, f"an event is a category (a string or an integer), not {orjson.dumps(event).decode()[:80]}")
            given[str(event)] = given.get(str(event), 0) + 1
    elif isinstance(events, dict):
        given = events
        for name, count in given.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise Problem(400, f"the count of {name!r} must be a non-negative integer")
    else:
        raise Problem(400, '"events" is a list of categories or an object of counts per category')
    position = {label: i for i, label in enumerate(categories)}
    unknown = [name for name in given if name not in position]
    if unknown:
        raise Problem(422, f"categories the model does not know: {unknown[:UNKNOWN_NAMED]}", unknown=unknown[:UNKNOWN_NAMED])
    total = sum(given.values())
    if not 0 < total <= limit:
        raise Problem(400 if total else 422, f"score between 1 and {limit} events (api.max_score_events), not {total}")
    counts = [0] * len(categories)
    for name, count in given.items():
        counts[position[name]] += count
    return counts
