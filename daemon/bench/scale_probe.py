"""What ``gumbeld bench scale`` watches a running daemon with: the process, its HTTP endpoints, its snapshots.

Everything here observes from outside, as an operator would: ``/proc/PID`` for CPU and memory,
``/metrics`` and ``/livez`` over HTTP, and the JSON-lines sink file read incrementally.

>>> percentile([1.0, 2.0, 3.0, 4.0], 50)
2.5
>>> percentile([], 99) is None
True
>>> round(parse_rfc3339("2024-01-02T03:04:05.250Z") % 60, 3)
5.25
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
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
from prometheus_client.parser import text_string_to_metric_families

MIB = 1 << 20
CPU_WINDOW = 10.0  # seconds of CPU time measured once settled, and at the end of --embedded
# Summed over all series of each; the last four are newer than the first two and may be missing.
WATCHED = ("gumbeld_events_total", "gumbeld_training_steps_total", "gumbeld_training_key_steps_total",
           "gumbeld_active_keys", "gumbeld_settled_keys", "gumbeld_keys_tracked")
LAG_BUCKET = "gumbeld_event_loop_lag_seconds_bucket"
# Only the families read are asked for (``name[]``): the whole exposition at 100,000 keys costs the
# daemon ~40 ms of CPU, 4 % of a core at one scrape a second, which would be the probe's own load.
SCRAPED = "/metrics?" + "&".join(f"name[]={name}" for name in (*WATCHED, LAG_BUCKET))
_TICKS = os.sysconf("SC_CLK_TCK")


def rounded(value, digits: int = 4):
    return None if value is None else round(value, digits)


def percentile(values, q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


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


def lag_percentile(first: dict, last: dict, q: float) -> float | None:
    """The ``q``-th percentile of the daemon's event-loop lag between two scrapes, from the
    ``gumbeld_event_loop_lag_seconds`` buckets (linear within a bucket)."""
    bounds = sorted((float(k.split(":", 1)[1]), k) for k in last if k.startswith(LAG_BUCKET + ":"))
    counts = [(b, last[k] - first.get(k, 0.0)) for b, k in bounds]
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
    """``python -m daemon run FLAGS`` in ``workdir``: stdout discarded, stderr kept in ``daemon.log``."""

    def __init__(self, workdir: Path, flags: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUMBELD_")}
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "daemon.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "daemon", "run", *flags], cwd=workdir, env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        self.started = time.monotonic()
        self.pid = self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

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
    """GET ``/livez`` every ``interval`` seconds; each latency (a failed probe counts as its time) is kept."""

    def __init__(self, port: int, interval: float = 0.1, timeout: float = 5.0) -> None:
        super().__init__(daemon=True, name="livez-prober")
        self.port, self.interval, self.timeout = port, interval, timeout
        self.latencies: list[float] = []
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
            self.failures += not ok
            next_at = max(next_at + self.interval, time.monotonic())
            self._halt.wait(next_at - time.monotonic())

    def stop(self) -> None:
        self._halt.set()
        self.join(self.timeout + 1)


class SnapshotReader:
    """Reads the JSON-lines sink file: the latest snapshot of each key and the distinct publish times.

    Only complete lines are parsed; the offset is remembered, so each call reads what was appended.
    Lines without ``probabilities`` are not snapshots (eviction records drop their key from the view).
    """

    def __init__(self, path: Path, chunk_bytes: int = 64 * MIB) -> None:
        self.path, self.chunk_bytes = path, chunk_bytes
        self.offset = 0
        self.lines = 0
        self.latest: dict[str, tuple[float, int]] = {}  # key -> (divergence.tv, events)
        self.publishes: list[float] = []                 # distinct published_at, in file order
        self._last_published: str | None = None

    def poll(self, until: float | None = None) -> None:
        """Read what was appended; with ``until`` (wall clock), stop before the first snapshot
        published after it, so the view is the subscriber's as of then."""
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                while True:
                    data = file.read(self.chunk_bytes)
                    end = data.rfind(b"\n") + 1
                    if end == 0:
                        return
                    used = self._parse(data[:end], until)
                    self.offset += used
                    if used < end or len(data) < self.chunk_bytes:
                        return
                    file.seek(self.offset)
        except FileNotFoundError:
            return

    def _parse(self, data: bytes, until: float | None) -> int:
        """Parse whole lines of ``data``; returns the bytes consumed."""
        latest, loads, used = self.latest, orjson.loads, 0
        for line in data.splitlines(keepends=True):
            record = loads(line) if line.strip() else None
            if record is not None and "probabilities" in record:
                published = record.get("published_at")
                if published is not None and published != self._last_published:
                    at = parse_rfc3339(published)
                    if until is not None and at > until:
                        return used
                    self._last_published = published
                    self.publishes.append(at)
                latest[record["key"]] = (float(record["divergence"]["tv"]), int(record["events"]))
            elif record is not None and record.get("evicted"):
                latest.pop(record.get("key"), None)
            used += len(line)
            self.lines += record is not None
        return used

    def tv_percentiles(self, min_events: int = 100) -> tuple[float | None, float | None, int]:
        """p50 and p99 of TV(learned, empirical) over the latest snapshots of keys with ``min_events`` events."""
        tv = [t for t, n in self.latest.values() if n >= min_events]
        return percentile(tv, 50), percentile(tv, 99), len(tv)

    def publish_gaps(self, start: float, end: float) -> list[float]:
        """Seconds between consecutive distinct publish times, both within [start, end] (wall clock)."""
        times = [t for t in self.publishes if start <= t <= end]
        return [b - a for a, b in zip(times, times[1:])]


def start_daemon(workdir: Path, flags: list[str], startup_timeout: float) -> tuple[Child, int]:
    """Start on a free port; a port taken between choosing and binding it means another try."""
    for attempt in range(3):
        port = free_port()
        child = Child(workdir, ["--metrics.port", str(port), *flags])
        try:
            child.wait_live(port, startup_timeout)
            return child, port
        except RuntimeError:
            child.kill()
            if attempt == 2 or "cannot serve metrics" not in child.log_tail():
                raise
    raise AssertionError("unreachable")
