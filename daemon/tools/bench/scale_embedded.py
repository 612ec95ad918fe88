"""``gumbeld bench scale --embedded``: plain ``gumbeld run`` on its built-in default, the stream still flowing."""
from __future__ import annotations

import time
from pathlib import Path

from .scale_probe import CPU_WINDOW, cpu_seconds, rounded, scrape, start_daemon


def run_embedded(args, workdir: Path) -> dict:
    """``gumbeld run`` on its built-in default; CPU % of one core over its last 10 s, the stream still flowing."""
    child, port = start_daemon(workdir, ["--checkpoint.directory", str(workdir / "state"), "--sinks.stdout", "false"],
                               args.startup_timeout)
    try:
        marks = []
        for at in (args.embedded_seconds - CPU_WINDOW, args.embedded_seconds):
            time.sleep(max(0.0, child.started + at - time.monotonic()))
            marks.append((time.monotonic(), cpu_seconds(child.pid), (scrape(port) or {}).get("gumbeld_events_total")))
            child.check_running()
        code, shutdown_seconds, _ = child.terminate(args.shutdown_timeout)
    finally:
        child.kill()
    (t0, c0, e0), (t1, c1, e1) = marks
    return {"embedded_default_cpu_percent": rounded(100.0 * (c1 - c0) / (t1 - t0), 1) if None not in (c0, c1) else None,
            "events_per_second": rounded((e1 - e0) / (t1 - t0), 1) if None not in (e0, e1) else None,
            "stream_flowing": None if None in (e0, e1) else e1 > e0, "exit_code": code,
            "shutdown_seconds": rounded(shutdown_seconds, 3)}
