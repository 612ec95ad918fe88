"""Snapshots of known distributions, as gumbeld publishes them, for the tests of gumbeld watch."""
import orjson

from daemon.tools.client import Snapshot

PUBLISHED_AT = "2026-11-28T10:00:00.000Z"


def record(key: str, *, events: int = 100, version: int = 1, categories=("red", "green", "blue"),
           learned=(0.6, 0.3, 0.1), empirical=(0.5, 0.3, 0.2), tv: float = 0.1, kl: float = 0.0253,
           intervals: tuple[list[float], list[float]] | None = None, as_of: str | None = None) -> dict:
    """A snapshot's record; ``intervals``: ``(lower, upper)`` at level 0.9, or none (as earlier versions
    wrote); ``as_of``: the key's watermark, or none."""
    fields = {} if intervals is None else {"effective_events": float(events),
                                           "intervals": {"level": 0.9, "lower": intervals[0], "upper": intervals[1]}}
    if as_of is not None:
        fields["as_of"] = as_of
    return {"key": key, "categories": list(categories), "probabilities": list(learned), "empirical": list(empirical),
            "divergence": {"tv": tv, "kl": kl, "js": 0.006}, "temperature": 1.0, "step": 7, "events": events,
            "published_at": PUBLISHED_AT, "model": "gumbel-softmax-gan", "version": version, **fields}


def line(key: str, **fields) -> bytes:
    return orjson.dumps(record(key, **fields))


def snapshot(key: str, **fields) -> Snapshot:
    return Snapshot.model_validate(record(key, **fields))


def eviction_line(key: str) -> bytes:
    return orjson.dumps({"key": key, "evicted": True, "reason": "ttl", "evicted_at": PUBLISHED_AT})
