"""``gumbeld run`` as a user runs it: a real process, real signals, a real restart, a real pipe."""
import json
import os
import select
import signal
import subprocess
import sys
import time

import numpy as np

from tests.daemon.process import Daemon

TRUTH = np.array([0.0, 0.0, 0.1, 0.3, 0.6])


def _tv(snapshot: dict) -> float:
    return 0.5 * float(np.abs(np.array(snapshot["probabilities"]) - TRUTH).sum())


def test_run_learns_serves_stops_on_sigterm_and_resumes(tmp_path):
    first = Daemon(tmp_path)
    first.port()  # started serving
    close = first.wait_for(lambda: next((s for s in first.snapshots if _tv(s) <= 0.01), None))
    assert close["key"] == "default" and close["categories"] == ["0", "1", "2", "3", "4"]
    status, metrics = first.get("/metrics")
    assert status == 200 and "gumbeld_training_steps_total" in metrics
    assert first.get("/readyz")[0] == 200 and first.get("/livez")[0] == 200

    code, seconds = first.stop()
    assert code == 0, "".join(first.log)
    assert seconds < 10
    last = first.snapshots[-1]
    assert (tmp_path / "gumbeld-state" / "checkpoint.pt").exists()

    second = Daemon(tmp_path)
    second.wait_for(lambda: any("resumed from checkpoint" in line for line in second.log))
    resumed = second.wait_for(lambda: second.snapshots[0] if second.snapshots else None)
    assert resumed["step"] >= last["step"]           # continues, no relearning from scratch
    assert resumed["events"] >= last["events"]
    assert resumed["version"] > last["version"]
    assert _tv(resumed) <= 0.02
    assert second.stop()[0] == 0


def test_invalid_setting_exits_2_naming_it_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "daemon", "run", "--publish_interval", "-1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "publish_interval" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_checkpoint_stops_the_start_with_a_clear_message(tmp_path):
    (tmp_path / "gumbeld-state").mkdir()
    (tmp_path / "gumbeld-state" / "checkpoint.pt").write_bytes(b"\x00garbage")
    result = subprocess.run([sys.executable, "-m", "daemon", "run", "--metrics.port", "0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "checkpoint" in result.stderr and "fresh_start" in result.stderr and "Traceback" not in result.stderr


def test_two_sigterms_milliseconds_apart_drain_once_with_the_final_checkpoint(tmp_path):
    """As from a supervisor that signals the process and its group: one stop, not a forced exit."""
    daemon = Daemon(tmp_path)
    daemon.port()  # started serving
    signalled = time.time()
    daemon.proc.send_signal(signal.SIGTERM)
    time.sleep(0.01)
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=30) == 0, "".join(daemon.log)
    log = "".join(daemon.log)
    assert "still draining" in log and "without the final checkpoint" not in log
    assert (tmp_path / "gumbeld-state" / "checkpoint.pt").stat().st_mtime >= signalled  # the final one
    assert "gumbeld stopped at step" in log


def _lines(fd: int, count: int, timeout: float = 60.0) -> list[bytes]:
    """The first ``count`` lines read from the pipe ``fd``, waiting at most ``timeout`` seconds."""
    data, deadline = b"", time.monotonic() + timeout
    while data.count(b"\n") < count:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"timed out; read {data!r}"
        chunk = os.read(fd, 65536)
        assert chunk, "gumbeld closed its stdout"
        data += chunk
    return data.split(b"\n")[:count]


def test_a_reader_closing_stdout_stops_the_run_as_sigterm_does(tmp_path):
    """``gumbeld run | gumbeld watch -``, then q in watch: one line says why, the drain, exit 0."""
    daemon = Daemon(tmp_path, read_stdout=False)
    try:
        snapshots = [json.loads(line) for line in _lines(daemon.proc.stdout.fileno(), 3)]
        assert [s["key"] for s in snapshots] == ["default"] * 3
        closed, started = time.time(), time.monotonic()
        daemon.proc.stdout.close()
        assert daemon.proc.wait(timeout=30) == 0, "".join(daemon.log)
        assert time.monotonic() - started < 10
    finally:
        if daemon.proc.poll() is None:
            daemon.kill()
    daemon.readers[0].join(timeout=10)  # stderr read to its end
    log = "".join(daemon.log)
    assert log.count("stdout was closed by its reader: stopping") == 1, log
    assert "Traceback" not in log and "Exception ignored" not in log and "Broken pipe" not in log, log
    assert "gumbeld stopped at step" in log
    assert (tmp_path / "gumbeld-state" / "checkpoint.pt").stat().st_mtime >= closed  # the final one


def test_gumbeld_run_piped_into_head_exits_0(tmp_path):
    gumbeld = f"{sys.executable} -m daemon run --metrics.port 0"
    shell = subprocess.Popen(["bash", "-c", f"set -o pipefail; {gumbeld} 2>gumbeld.log | head -n 2"],
                             cwd=tmp_path, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = shell.communicate(timeout=120)
    finally:
        if shell.poll() is None:  # gumbeld kept running: stop the whole pipeline
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
    log = (tmp_path / "gumbeld.log").read_text()
    assert shell.returncode == 0, log
    assert [json.loads(line)["key"] for line in out.splitlines()] == ["default"] * 2
    assert "stdout was closed by its reader: stopping" in log and "Traceback" not in log, log
