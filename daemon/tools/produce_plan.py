"""What ``gumbeld produce`` writes: the plan its options describe, and its events as messages.

Events are drawn in NumPy batches by :class:`daemon.sources.synthetic.SyntheticSource` (the same
per-key distributions and drift as ``source.synthetic``) and encoded in one of the
``source.kafka.value_format`` formats, with the distribution key as the message key; each label's
value is encoded once.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import orjson
from pydantic import ValidationError

from ..settings import SEED_DISTRIBUTION, SyntheticSettings
from ..sources.synthetic import SyntheticSource


class UsageError(ValueError):
    """Options that make no sense together; the message says which."""


@dataclass(frozen=True)
class ProducePlan:
    topic: str
    value_format: str
    synthetic: SyntheticSettings  # keys (listed or generated), distributions, drift and seed of the events
    labels: list[str]
    rate: float = 0.0             # events/s; 0 = as fast as possible
    events: int | None = None     # stop after this many; None = until stopped
    batch: int = 1000             # events per message, array format

    @classmethod
    def from_options(cls, topic: str, value_format: str, keys_json: str | None, categories_json: str | None,
                     rate: float = 0.0, events: int | None = None, batch: int = 1000, seed: int = 0,
                     generated_json: str | None = None) -> "ProducePlan":
        if rate < 0 or (events is not None and events < 0) or batch < 1:
            raise UsageError("--rate and --events must be >= 0 and --batch >= 1")
        if keys_json and generated_json:
            raise UsageError("give --keys or --generated-keys, not both")
        if generated_json and value_format == "array":
            raise UsageError("--generated-keys works with --format json, scalar or text, not array")
        option, field, text = (("--generated-keys", "generated_keys", generated_json) if generated_json
                               else ("--keys", "keys", keys_json))
        try:
            synthetic = SyntheticSettings(**({field: json.loads(text)} if text else {}), seed=seed, rate=0)
        except (ValueError, TypeError, ValidationError) as error:
            raise UsageError(f"{option}: {error}") from None
        try:
            labels = json.loads(categories_json) if categories_json else None
        except ValueError as error:
            raise UsageError(f"--categories: {error}") from None
        if synthetic.generated_keys is not None:  # K is the labels', as the model's: "0".."4" by default
            n = len(labels) if isinstance(labels, list) else len(SEED_DISTRIBUTION)
        else:
            widths = {len(spec.probabilities) for spec in synthetic.keys.values()}
            widths |= {len(spec.drift.probabilities) for spec in synthetic.keys.values() if spec.drift}
            if len(widths) != 1:
                raise UsageError(f"every key needs the same number of probabilities, got {sorted(widths)}")
            n = widths.pop()
        if labels is None:
            labels = [str(i) for i in range(n)]
        if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels) and len(set(labels)) == len(labels)):
            raise UsageError("--categories must be a JSON list of distinct strings")
        if len(labels) < 2:
            raise UsageError("--categories must name at least two categories")
        if len(labels) != n:
            raise UsageError(f"--categories names {len(labels)} categories but the keys have {n} probabilities")
        return cls(topic, value_format, synthetic, labels, rate, events, batch)


class EventMessages:
    """Draws events and encodes them as ``(key, value)`` messages; each label is encoded once."""

    def __init__(self, plan: ProducePlan, rng: np.random.Generator, chunk_events: int) -> None:
        self.plan, self._rng = plan, rng
        self.key_names = list(plan.synthetic.keys)
        self._key_bytes = [k.encode() for k in self.key_names]
        encode = {"json": lambda label: orjson.dumps({"category": label}), "scalar": orjson.dumps,
                  "text": str.encode, "array": orjson.dumps}[plan.value_format]
        self._values = [encode(label) for label in plan.labels]
        self._labels = np.array(plan.labels, dtype=object)
        if plan.value_format == "array":  # one source per key: every array carries a single key
            self._sources = [SyntheticSource(plan.synthetic.model_copy(update={"keys": {name: spec}, "batch_size": plan.batch}),
                                             clock=time.monotonic) for name, spec in plan.synthetic.keys.items()]
        else:
            self._source = SyntheticSource(plan.synthetic.model_copy(update={"batch_size": chunk_events}),
                                           clock=time.monotonic, n_categories=len(plan.labels))

    def draw(self, events: int) -> tuple[list[tuple[bytes, bytes]], int]:
        """Messages carrying ``events`` events (at most ``chunk_events``), and how many they carry.

        Only the last draw of a run may want fewer events than a batch: it is cut short.
        """
        if self.plan.value_format != "array":
            batch = self._source.batch(self._rng, events)  # names only the keys it draws
            keys, values = [name.encode() for name in batch.key_names], self._values
            messages = [(keys[k], values[c]) for k, c in zip(batch.keys.tolist(), batch.categories.tolist())]
            return messages, len(messages)
        messages, carried = [], 0
        while carried < events:
            key = int(self._rng.integers(len(self._sources)))
            categories = self._sources[key].batch(self._rng).categories[: events - carried]
            messages.append((self._key_bytes[key], orjson.dumps(self._labels[categories].tolist())))
            carried += len(categories)
        return messages, carried
