"""What ``gumbeld bench scale`` watches a running daemon with: the process and its HTTP endpoints.

Everything here observes from outside, as an operator would: ``/proc/PID`` for CPU and memory,
``/metrics`` and ``/livez`` over HTTP (the snapshot file: :mod:`.scale_snapshots`).

>>> percentile([1.0, 2.0, 3.0, 4.0], 50)
2.5
>>> percentile([], 99) is None
True
>>> lag_worst({}, {LAG_BUCKET + ":0.01": 3.0, LAG_BUCKET + ":0.05": 4.0, LAG_BUCKET + ":+Inf": 4.0})
0.05
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

MIB = 1 << 20
CPU_WINDOW = 10.0  # seconds of CPU time measured once settled, and at the end of --embedded
# Summed over all series of each; the last six are newer than the first two and may be missing.
WATCHED = ("gumbeld_events_total", "gumbeld_training_steps_total", "gumbeld_training_key_steps_total",
           "gumbeld_active_keys", "gumbeld_settled_keys", "gumbeld_keys_tracked", "gumbeld_checkpoints_written_total",
           "gumbeld_checkpoints_failed_total")
LAG_BUCKET = "gumbeld_event_loop_lag_seconds_bucket"
# Only the families read are asked for (``name[]``): rendering the whole exposition of many keys
# every second would add the probe's own load to the daemon it measures.
SCRAPED = "/metrics?" + "&".join(f"name[]={name}" for name in (*WATCHED, LAG_BUCKET))
_TICKS = os.sysconf("SC_CLK_TCK")


def rounded(value, digits: int = 4):
    return None if value is None else round(value, digits)


def percentile(values, q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (all its threads)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)


def rss_bytes(pid: int) -> int | None:
    """The largest resident set size of the process so far: VmHWM (peak VmRSS), else VmRSS."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    found = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            found[name] = int(value.split()[0]) * 1024
    return max(found.values()) if found else None


def http_get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def scrape(port: int, timeout: float = 10.0) -> dict[str, float] | None:
    """The :data:`WATCHED` samples of ``/metrics``, each summed over its series; absent ones left out."""
    try:
        status, body = http_get(port, SCRAPED, timeout)
    except OSError:
        return None
    if status != 200:
        return None
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name in WATCHED:
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
            elif sample.name == LAG_BUCKET:
                sums[f"{LAG_BUCKET}:{sample.labels['le']}"] = sample.value
    return sums


def _lag_buckets(first: dict, last: dict) -> list[tuple[float, float]]:
    """``(upper bound, observations ≤ it)`` of ``gumbeld_event_loop_lag_seconds`` between two scrapes."""
    bounds = sorted((float(k.split(":", 1)[1]), k) for k in last if k.startswith(LAG_BUCKET + ":"))
    return [(b, last[k] - first.get(k, 0.0)) for b, k in bounds]


def lag_worst(first: dict, last: dict) -> float | None:
    """The worst event-loop lag between two scrapes, as the bound of its histogram bucket: every
    probe was at most this late (``inf``: some probe was later than the largest finite bound)."""
    counts = _lag_buckets(first, last)
    if not counts or counts[-1][1] <= 0:
        return None
    return next(bound for bound, cumulative in counts if cumulative >= counts[-1][1])


def finite(worst: float | None, notes: list[str]) -> float | None:
    """``worst`` (of :func:`lag_worst`) for a report: beyond the histogram's largest bound it is
    null, and ``notes`` says so."""
    if worst == float("inf"):
        notes.append("an event-loop lag probe fired later than the largest bucket bound of "
                     "gumbeld_event_loop_lag_seconds")
        return None
    return worst


def lag_percentile(first: dict, last: dict, q: float) -> float | None:
    """The ``q``-th percentile of the daemon's event-loop lag between two scrapes, from the
    ``gumbeld_event_loop_lag_seconds`` buckets (linear within a bucket)."""
    counts = _lag_buckets(first, last)
    if not counts or counts[-1][1] <= 0:
        return None
    wanted, lower, below = counts[-1][1] * q / 100.0, 0.0, 0.0
    for bound, cumulative in counts:
        if cumulative >= wanted:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (wanted - below) / max(cumulative - below, 1e-12)
        lower, below = bound, cumulative
    return lower


class Child:
    """``python -m daemon COMMAND FLAGS`` in ``workdir`` (``run`` by default): stdout discarded, stderr
    kept in ``daemon.log`` (``COMMAND.log`` for another command)."""

    def __init__(self, workdir: Path, flags: list[str], command: str = "run") -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUMBELD_")}
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / ("daemon.log" if command == "run" else f"{command}.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "daemon", command, *flags], cwd=workdir, env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        self.started = time.monotonic()
        self.pid = self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_running(self) -> None:
        """RuntimeError, with the log's tail, once gumbeld has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"gumbeld exited {self.proc.returncode} during the run:\n{self.log_tail()}")

    def wait_live(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gumbeld exited {self.proc.returncode} at start-up:\n{self.log_tail()}")
            try:
                if http_get(port, "/livez", 1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gumbeld did not answer /livez within {timeout:g} s:\n{self.log_tail()}")

    def terminate(self, timeout: float) -> tuple[int, float, float]:
        """SIGTERM and wait: (exit code, seconds to exit, wall-clock time of the signal). Killed after timeout."""
        sent_wall, sent = time.time(), time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code, time.monotonic() - sent, sent_wall

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class LivenessProber(threading.Thread):
    """GET ``/livez`` every ``interval`` seconds; each latency (a failed probe counts as its time) is
    kept, with the monotonic time its probe was sent (``sent``)."""

    def __init__(self, port: int, interval: float = 0.1, timeout: float = 5.0) -> None:
        super().__init__(daemon=True, name="livez-prober")
        self.port, self.interval, self.timeout = port, interval, timeout
        self.latencies: list[float] = []
        self.sent: list[float] = []
        self.failures = 0
        self._halt = threading.Event()

    def run(self) -> None:
        next_at = time.monotonic()
        while not self._halt.is_set():
            started = time.monotonic()
            try:
                ok = http_get(self.port, "/livez", self.timeout)[0] == 200
            except OSError:
                ok = False
            self.latencies.append(time.monotonic() - started)
            self.sent.append(started)
            self.failures += not ok
            next_at = max(next_at + self.interval, time.monotonic())
            self._halt.wait(next_at - time.monotonic())

    def stop(self) -> None:
        self._halt.set()
        self.join(self.timeout + 1)

    def between(self, start: float, end: float) -> list[float]:
        """The latencies of the probes sent within ``[start, end]`` (monotonic time)."""
        return [latency for sent, latency in zip(self.sent, self.latencies) if start <= sent <= end]


def start_daemon(workdir: Path, flags: list[str], startup_timeout: float, command: str = "run") -> tuple[Child, int]:
    """Start on a free port; a port taken between choosing and binding it means another try."""
    for attempt in range(3):
        port = free_port()
        child = Child(workdir, ["--metrics.port", str(port), *flags], command)
        try:
            child.wait_live(port, startup_timeout)
            return child, port
        except RuntimeError:
            child.kill()
            if attempt == 2 or "cannot serve metrics" not in child.log_tail():
                raise
    raise AssertionError("unreachable")


def format_table(rows: list[dict], columns: tuple[str, ...]) -> str:
    """``rows`` as aligned text columns, ``—`` where a value is missing."""
    cells = [["—" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
