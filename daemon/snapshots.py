"""What a publish sends: snapshots of the keys that changed, and evictions, encoded once for every sink.

The learner fills a :class:`SnapshotBatch` column by column (NumPy arrays, one read from the
device); :meth:`Publication.encode` turns snapshots and evictions into JSON once, off the event
loop, for all sinks alike: the JSON-lines form (``lines``) for stdout and files, and
``(key, value)`` messages for Kafka, where an eviction is a tombstone (``value`` None).

>>> import numpy as np
>>> batch = SnapshotBatch(keys=["a"], categories=["x", "y"], learned=np.array([[0.25, 0.75]]),
...     empirical=np.array([[0.2, 0.8]]), tv=np.array([0.05]), kl=np.array([0.01]), js=np.array([0.002]),
...     temperature=1.0, steps=np.array([10]), events=np.array([5]), versions=np.array([3]),
...     published_at="2026-01-01T00:00:00.000Z")
>>> p = Publication(batch, [Eviction("b", "ttl", "2026-01-01T00:00:00.000Z")]).encode()
>>> p.values[1] is None, p.lines[1].decode()
(True, '{"key":"b","evicted":true,"reason":"ttl","evicted_at":"2026-01-01T00:00:00.000Z"}')
>>> orjson.loads(p.lines[0])["probabilities"], orjson.loads(p.lines[0])["empirical"]
([0.25, 0.75], [0.2, 0.8])
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson

MODEL_NAME = "gumbel-softmax-gan"


@dataclass
class SnapshotBatch:
    keys: list[str]
    categories: list[str]
    learned: np.ndarray        # [n, K] float64, rows sum to 1
    empirical: np.ndarray      # [n, K]
    tv: np.ndarray             # [n]
    kl: np.ndarray
    js: np.ndarray
    temperature: float
    steps: np.ndarray          # [n] generator updates of each key
    events: np.ndarray         # [n] events counted for each key
    versions: np.ndarray       # [n] each key's snapshot version
    published_at: str

    def __len__(self) -> int:
        return len(self.keys)

    def records(self) -> list[dict]:
        """The snapshots as the published contract's JSON objects (see README)."""
        return self.records_at(range(len(self.keys)))

    def records_at(self, indices) -> list[dict]:
        """The records of the snapshots at ``indices``."""
        indices = list(indices)
        learned, empirical = self.learned[indices].tolist(), self.empirical[indices].tolist()
        tv, kl, js = self.tv[indices].tolist(), self.kl[indices].tolist(), self.js[indices].tolist()
        steps, events = self.steps[indices].tolist(), self.events[indices].tolist()
        versions = self.versions[indices].tolist()
        return [{"key": self.keys[i], "categories": self.categories, "probabilities": learned[j],
                 "empirical": empirical[j], "divergence": {"tv": tv[j], "kl": kl[j], "js": js[j]},
                 "temperature": self.temperature, "step": int(steps[j]), "events": int(events[j]),
                 "published_at": self.published_at, "model": MODEL_NAME, "version": int(versions[j])}
                for j, i in enumerate(indices)]

    @classmethod
    def empty(cls, categories: list[str], temperature: float, published_at: str) -> "SnapshotBatch":
        k = len(categories)
        nothing = np.zeros(0, dtype=np.int64)
        return cls([], categories, np.zeros((0, k)), np.zeros((0, k)), nothing, nothing, nothing, temperature,
                   nothing, nothing, nothing, published_at)


@dataclass(frozen=True)
class Eviction:
    """A key that left: subscribers of compacted topics get a tombstone, files get this record."""

    key: str
    reason: str            # "ttl", "max_keys"
    evicted_at: str

    def record(self) -> dict:
        return {"key": self.key, "evicted": True, "reason": self.reason, "evicted_at": self.evicted_at}


@dataclass
class Publication:
    snapshots: SnapshotBatch
    evictions: list[Eviction] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)             # message keys
    values: list[bytes | None] = field(default_factory=list)    # snapshot JSON; None: tombstone
    lines: list[bytes] = field(default_factory=list)            # JSON-lines form of each message

    def __len__(self) -> int:
        return len(self.snapshots) + len(self.evictions)

    def encode(self) -> "Publication":
        """Fill ``keys``, ``values`` and ``lines`` (blocking: call it off the event loop)."""
        b = self.snapshots
        # Values go out with float32 precision (what the model computes in), written straight from
        # the arrays; the category list is encoded once. 2.5× faster than plain dicts of floats.
        categories, learned, empirical = orjson.Fragment(orjson.dumps(b.categories)), \
            b.learned.astype(np.float32), b.empirical.astype(np.float32)
        tv, kl, js = b.tv.tolist(), b.kl.tolist(), b.js.tolist()
        steps, events, versions = b.steps.tolist(), b.events.tolist(), b.versions.tolist()
        for i, key in enumerate(b.keys):
            encoded = orjson.dumps(
                {"key": key, "categories": categories, "probabilities": learned[i], "empirical": empirical[i],
                 "divergence": {"tv": tv[i], "kl": kl[i], "js": js[i]}, "temperature": b.temperature,
                 "step": int(steps[i]), "events": int(events[i]), "published_at": b.published_at,
                 "model": MODEL_NAME, "version": int(versions[i])}, option=orjson.OPT_SERIALIZE_NUMPY)
            self.keys.append(key.encode())
            self.values.append(encoded)
            self.lines.append(encoded)
        for eviction in self.evictions:
            self.keys.append(eviction.key.encode())
            self.values.append(None)
            self.lines.append(orjson.dumps(eviction.record()))
        return self
