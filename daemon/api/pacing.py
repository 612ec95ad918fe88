"""Pacing the reads of ``gumbeld run``: at most ``rate`` requests a second go on, so readers cannot
take the CPU that ingest and training need (``api.max_reads_per_second``).

A request over the rate waits its turn rather than being refused: a client that sends its next
request when the last is answered (most do) slows to the rate by itself, and its requests cost
the server nothing while they wait. A turn more than ``max_wait`` seconds away is refused (429)
instead, so an open-ended flood queues no further. The turns are those of a virtual schedule, one
every 1/rate seconds (GCRA, as in ATM's cell-rate control):

>>> now = [0.0]
>>> pacer = Pacer(rate=2.0, max_wait=1.0, clock=lambda: now[0])
>>> [pacer.wait() for _ in range(4)]   # turns at 0, 0.5 and 1 s; the fourth would wait 1.5 s
[0.0, 0.5, 1.0, None]
>>> now[0] = 5.0; pacer.wait()         # idle time is not saved up for a burst
0.0
"""
from __future__ import annotations

import time
from typing import Callable

MAX_WAIT = 1.0  # seconds a request may wait for its turn before it is refused


class Pacer:
    def __init__(self, rate: float, max_wait: float = MAX_WAIT, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or max_wait < 0:
            raise ValueError(f"a pacer needs rate > 0 and max_wait >= 0, not {rate} and {max_wait}")
        self.rate, self.max_wait, self._clock = rate, max_wait, clock
        self._interval, self._next = 1.0 / rate, float("-inf")

    def wait(self) -> float | None:
        """Seconds until this request's turn, which it then holds; None when that is more than
        ``max_wait`` away (the request holds no turn)."""
        now = self._clock()
        turn = max(self._next, now)
        if turn - now > self.max_wait:
            return None
        self._next = turn + self._interval
        return turn - now
