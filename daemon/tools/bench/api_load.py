"""The load generator of ``gumbeld bench api``: wrk (Debian's package ``wrk``), single-key GETs.

Each request asks for one key drawn uniformly from a file of keys (``GET /v1/keys/{key}``), over
``connections`` keep-alive connections from ``threads`` threads, for ``seconds``. Flat out, each
connection sends its next request as soon as the previous one is answered: the most the server
answers. Paced, requests leave at a fixed rate, and the latencies are those of that rate.

>>> parse_result("Running 1s test\\nWRK_RESULT {\\"requests\\": 10, \\"duration_us\\": 2000000, \\"p50_us\\": 900, "
...              "\\"p99_us\\": 4100, \\"max_us\\": 5000, \\"non_2xx\\": 0, \\"errors\\": 0}\\n")
{'requests': 10, 'requests_per_second': 5.0, 'latency_p50_ms': 0.9, 'latency_p99_ms': 4.1, 'latency_max_ms': 5.0, 'non_2xx': 0, 'errors': 0}
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

MARK = "WRK_RESULT "

# setup numbers the threads; init: each reads the keys and seeds its own draws by the seed and its
# number; done: one JSON line the harness parses.
SCRIPT = """
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local keys = {}
init = function(args)
  for line in io.lines(args[1]) do keys[#keys + 1] = line end
  math.randomseed(tonumber(args[2]) * 1000 + id)
end
request = function()
  return wrk.format("GET", "/v1/keys/" .. keys[math.random(#keys)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('%s{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
                         '"non_2xx": %d, "errors": %d}\\n', "MARK", summary.requests, summary.duration,
                         latency:percentile(50), latency:percentile(99), latency.max, e.status,
                         e.connect + e.read + e.write + e.timeout))
end
""".replace('"MARK"', json.dumps(MARK))

# With a rate: each thread hands out send times ``interval`` ms apart (its share of the rate) to
# whichever of its connections is ready, so requests leave at the rate whatever the latency, as
# long as enough connections are free. LuaJIT's FFI reads the monotonic clock.
PACING = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local interval, next_at = INTERVAL, nil
delay = function()
  local now = now_ms()
  local slot = math.max(next_at or now, now)
  next_at = slot + interval
  return slot - now
end
"""


def script(rate: float, threads: int) -> str:
    """The wrk script: uniform random keys, flat out (``rate`` 0) or paced at ``rate`` requests/s."""
    return SCRIPT if rate <= 0 else SCRIPT + PACING.replace("INTERVAL", repr(1000.0 * threads / rate))


class WrkUnavailable(RuntimeError):
    pass


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkUnavailable("wrk is not on PATH (Debian: apt-get install wrk)")
    return found


def parse_result(output: str) -> dict:
    """The figures of wrk's ``done`` line: requests, requests/s, latency p50/p99/max in ms, non-2xx
    answers and socket errors."""
    line = next((line for line in output.splitlines() if line.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output[-2000:]}")
    raw = json.loads(line[len(MARK):])
    return {"requests": raw["requests"],
            "requests_per_second": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "latency_p50_ms": raw["p50_us"] / 1000, "latency_p99_ms": raw["p99_us"] / 1000,
            "latency_max_ms": raw["max_us"] / 1000, "non_2xx": raw["non_2xx"], "errors": raw["errors"]}


def pin(pid: int, cpus: set[int]) -> None:
    """Keep every thread of process ``pid`` on ``cpus``."""
    for task in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(task), cpus)


def single_key_gets(port: int, keys: Path, *, seconds: float, connections: int, threads: int, seed: int,
                    workdir: Path, rate: float = 0.0, cpus: set[int] | None = None, binary: str | None = None) -> dict:
    """Run wrk against ``127.0.0.1:port`` for ``seconds``, flat out or at ``rate`` requests/s, on
    ``cpus`` (None: any); its figures (:func:`parse_result`)."""
    path = workdir / "single_key_gets.lua"
    path.write_text(script(rate, threads))
    command = [binary or wrk_binary(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
               "--timeout", "5s", "-s", str(path), f"http://127.0.0.1:{port}", "--", str(keys), str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus))
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr[-2000:]}")
    return parse_result(done.stdout)
