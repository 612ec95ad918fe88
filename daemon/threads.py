"""Worker threads that yield the CPU to the event loop.

The event loop's work is latency-bound (ingest, ``/livez``, Kafka heartbeats); training and
encoding are throughput-bound and would take every core they are given. Linux gives each thread
its own nice value, so the workers run a few steps nicer than the loop and the scheduler hands a
contended core to the loop first. Elsewhere the workers simply run at the process's priority.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

BACKGROUND_NICENESS = 5


def lower_thread_priority(niceness: int = BACKGROUND_NICENESS) -> None:
    """Make the calling thread ``niceness`` steps nicer than the process (best effort)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except (AttributeError, OSError):  # not Linux, or not allowed: run at the process's priority
        pass


def background_executor(name: str, workers: int = 1) -> ThreadPoolExecutor:
    """A thread pool whose threads run at :data:`BACKGROUND_NICENESS` below the event loop."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name, initializer=lower_thread_priority)
