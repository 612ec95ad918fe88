"""Exponential backoff with full jitter, for reconnecting to brokers.

>>> import random
>>> b = Backoff(initial=0.5, maximum=30.0, rng=random.Random(0))
>>> [round(b.next(), 3) for _ in range(4)]
[0.422, 0.758, 0.841, 1.036]
>>> b.reset(); b.attempt
0
"""
from __future__ import annotations

import random


class Backoff:
    def __init__(self, *, initial: float = 0.5, maximum: float = 30.0, rng: random.Random | None = None) -> None:
        self.initial, self.maximum = initial, maximum
        self._rng = rng or random.Random()
        self.attempt = 0

    def next(self) -> float:
        """Seconds to wait before the next attempt: uniform in [0, min(max, initial·2^attempt)]."""
        ceiling = min(self.maximum, self.initial * 2 ** self.attempt)
        self.attempt += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0
