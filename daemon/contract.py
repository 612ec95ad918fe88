"""The published contract: one key's snapshot, as the topic, the JSON lines and ``/v1`` carry it.

:class:`Snapshot` validates it (see the README): the three lists agree in length, both
distributions sum to 1, divergences lie in their ranges, every interval holds its bounds in order. Its JSON Schema, for subscribers in
other languages, is checked in at ``docs/snapshot.schema.json``; ``/v1``'s OpenAPI document
refers to it.

>>> line = ('{"key": "a", "categories": ["x", "y"], "probabilities": [0.25, 0.75], '
...         '"empirical": [0.2, 0.8], "divergence": {"tv": 0.05, "kl": 0.006, "js": 0.0015}, '
...         '"temperature": 1.0, "step": 10, "events": 5, "published_at": "2026-01-01T00:00:00.000Z", '
...         '"model": "gumbel-softmax-gan", "version": 3}')
>>> snapshot = Snapshot.model_validate_json(line)
>>> snapshot.key, snapshot.distribution()
('a', {'x': 0.25, 'y': 0.75})
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SUM_TOLERANCE = 1e-4  # float32 values, rounded once each: sums stay far closer to 1 than this


class Divergence(BaseModel):
    model_config = ConfigDict(frozen=True)
    tv: float = Field(ge=0, le=1, description="total variation between learned and the key's target: its empirical distribution, joined by the pooled prior's pseudo-counts with model.prior = pooled")
    kl: float = Field(ge=0, description="KL(target ‖ learned), nats (smoothed by 1e-6: always finite)")
    js: float = Field(ge=0, le=math.log(2) + 1e-6, description="Jensen–Shannon divergence, nats")


class Intervals(BaseModel):
    model_config = ConfigDict(frozen=True)
    level: float = Field(gt=0, lt=1, description="the posterior probability each interval holds (model.interval_level)")
    lower: list[float] = Field(description="per category, in the order of categories: the (1 − level)/2 quantile of its posterior marginal")
    upper: list[float] = Field(description="per category: the (1 + level)/2 quantile")

    @model_validator(mode="after")
    def _ordered(self) -> "Intervals":
        if len(self.lower) != len(self.upper):
            raise ValueError(f"intervals have {len(self.lower)} lower and {len(self.upper)} upper bounds")
        if any(not 0.0 <= lo <= hi <= 1.0 for lo, hi in zip(self.lower, self.upper)):
            raise ValueError("an interval is not 0 <= lower <= upper <= 1")
        return self


class Snapshot(BaseModel):
    """One key's learned distribution as gumbeld publishes it (unknown fields are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    key: str = Field(min_length=1, description="the distribution key")
    categories: list[str] = Field(min_length=1, description="category labels, in the order of both distributions")
    probabilities: list[float] = Field(description="the learned distribution")
    empirical: list[float] = Field(description="the normalised histogram of the key's events")
    divergence: Divergence
    temperature: float = Field(gt=0, description="Gumbel-softmax temperature at this step")
    step: int = Field(ge=0, description="generator updates applied to this key")
    events: int = Field(ge=0, description="events counted for this key since it first appeared")
    effective_events: float | None = Field(None, ge=0, description="events plus the pooled prior's weight over the key's categories (α with fixed categories; events alone with model.prior = none); Beta(p·N, (1 − p)·N) of a probability p and these N gives intervals at other levels. Absent only from snapshots that earlier versions wrote")
    intervals: Intervals | None = Field(None, description="how sure each category's probability is: the equal-tailed interval of its posterior marginal, of the histogram joined by the pooled prior (with model.prior = none, of each category's count under Jeffreys' prior). Absent only from snapshots that earlier versions wrote")
    as_of: datetime | None = Field(None, description="the key's watermark: its newest event time less model.allowed_lateness, RFC 3339, UTC; the snapshot describes the key's events up to it (later events within the lateness may still join). Null when the key's events carry no time; absent only from snapshots that earlier versions wrote")
    published_at: datetime = Field(description="RFC 3339, UTC")
    model: Literal["gumbel-softmax-gan"] = "gumbel-softmax-gan"
    version: int = Field(ge=1, description="per key, +1 with every snapshot, across restarts")

    @model_validator(mode="after")
    def _distributions(self) -> "Snapshot":
        k = len(self.categories)
        for name in ("probabilities", "empirical"):
            values = getattr(self, name)
            if len(values) != k:
                raise ValueError(f"{name} has {len(values)} values for {k} categories")
            if any(not 0.0 <= v <= 1.0 for v in values):
                raise ValueError(f"{name} has a value outside [0, 1]")
            if abs(math.fsum(values) - 1.0) > SUM_TOLERANCE:
                raise ValueError(f"{name} sums to {math.fsum(values):.6g}, not 1")
        if self.intervals is not None and len(self.intervals.lower) != k:
            raise ValueError(f"intervals have {len(self.intervals.lower)} bounds for {k} categories")
        return self

    def distribution(self) -> dict[str, float]:
        """Category → learned probability."""
        return dict(zip(self.categories, self.probabilities))


def schema() -> dict:
    """The JSON Schema of a snapshot (``docs/snapshot.schema.json``)."""
    return Snapshot.model_json_schema()
