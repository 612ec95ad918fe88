"""The process around the service: signals, garbage-collector tuning, the event loop, exit codes."""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys

import torch

from .read_server import ReadServer
from .service import Service, StartupError
from .settings import GumbeldSettings

log = logging.getLogger("gumbeld")
# A supervisor that signals both the process and its process group delivers one stop request as two
# signals milliseconds apart; only a signal this long after the first is a second request.
SECOND_SIGNAL_GRACE = 1.0  # seconds


def install_signal_handlers(service: Service | ReadServer) -> None:
    """First SIGTERM/SIGINT: drain and stop. Another, :data:`SECOND_SIGNAL_GRACE` seconds or more
    after the first: exit at once, without the final checkpoint. One within the grace is ignored.
    A service already stopping on its own (stdout's reader went away) lets the first signal drain."""
    loop = asyncio.get_running_loop()
    first_at: float | None = None

    def on_signal(signum: int) -> None:
        nonlocal first_at
        name = signal.Signals(signum).name
        if first_at is not None:  # a signal asked to stop before
            if loop.time() - first_at < SECOND_SIGNAL_GRACE:
                log.info("%s again within %g s: still draining", name, SECOND_SIGNAL_GRACE)
                return
            log.error("second %s: exiting without the final checkpoint", name)
            os._exit(128 + signum)
        first_at = loop.time()
        log.info("%s received: draining", name)
        service.stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def tune_garbage_collection() -> None:
    """Fewer, cheaper collections for a process that makes millions of short-lived records.

    Everything alive after start-up (modules, torch) is frozen out of the collector's scans, and a
    young generation of 50,000 objects instead of 700 makes collections rarer: measured with
    ``gumbeld bench ingest``, the collector otherwise takes about half of the consume loop.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def set_training_threads(threads: int | None) -> None:
    """Torch's intra-op threads: by default one core stays free for the event loop.

    Torch's CPU kernels spin-wait for all their threads; when one of them shares a core with the
    event loop, every kernel waits on it. Measured on 2 cores while the loop ingested: 2 threads
    gave 31,000 key-steps/s, 1 thread 195,000.
    """
    torch.set_num_threads(threads if threads is not None else max(1, (os.cpu_count() or 1) - 1))


def share_the_interpreter() -> None:
    """Hand the interpreter lock over within 1 ms instead of 5 ms.

    The event loop re-takes the lock after every socket wait; with the training and encoding
    threads busy, each take could wait a whole switch interval, and a request that waits on
    several stalls for tens of milliseconds. Measured with ``gumbeld bench scale`` at 100,000 keys:
    event-loop lag p99 0.083 s at 5 ms, 0.046 s at 1 ms (training then did fewer key-steps/s,
    42,000 against 80,000 in that pair of runs).
    """
    sys.setswitchinterval(0.001)


def run(settings: GumbeldSettings) -> int:
    """``gumbeld run``: the service until stopped; returns the process exit code."""
    set_training_threads(settings.training.threads)
    return _until_stopped(Service, settings)


def serve(settings: GumbeldSettings) -> int:
    """``gumbeld serve``: the read server until stopped; returns the process exit code."""
    return _until_stopped(ReadServer, settings)


def _until_stopped(kind: type[Service] | type[ReadServer], settings: GumbeldSettings) -> int:
    tune_garbage_collection()
    share_the_interpreter()
    async def main() -> int:
        service = kind(settings)
        install_signal_handlers(service)
        return await service.serve()

    try:
        return asyncio.run(main())
    except StartupError as error:
        log.error("cannot start: %s", error)
        return 1
    except Exception:  # a bug: say so loudly, with the traceback, and exit non-zero
        log.exception("gumbeld stopped on an unexpected error")
        return 1
