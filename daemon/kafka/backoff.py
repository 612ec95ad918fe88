"""Exponential backoff with full jitter, for (re)connecting to brokers — the one way gumbeld retries.

:func:`retry` runs an attempt until it succeeds (the Kafka source's consumer, the load
generator's producer); the producers of the sinks use a :class:`Backoff` to space their starts.

>>> import random
>>> b = Backoff(initial=0.5, maximum=30.0, rng=random.Random(0))
>>> [round(b.next(), 3) for _ in range(4)]
[0.422, 0.758, 0.841, 1.036]
>>> b.reset(); b.attempt
0
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Awaitable, Callable, TypeVar

from aiokafka.errors import KafkaError

T = TypeVar("T")


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


async def retry(attempt: Callable[[], Awaitable[T]], backoff: Backoff, *, errors: tuple = (KafkaError,),
                deadline: float | None = None, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                on_failure: Callable[[Exception, float], None] | None = None) -> T:
    """``await attempt()`` until it returns, sleeping ``backoff.next()`` seconds after each failure.

    Only ``errors`` are retried; ``on_failure(error, wait)`` is called before each sleep. With a
    ``deadline`` (on ``clock``) no sleep goes past it, and a failure after it raises its error.
    """
    while True:
        try:
            return await attempt()
        except errors as error:
            wait = backoff.next()
            if deadline is not None:
                if clock() >= deadline:
                    raise
                wait = min(wait, deadline - clock())
            if on_failure is not None:
                on_failure(error, wait)
            await sleep(wait)
