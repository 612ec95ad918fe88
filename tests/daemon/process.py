"""``gumbeld run`` as a child process, its stdout snapshots and stderr log collected live."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


class Daemon:
    """``python -m daemon run`` (or ``command``) in ``workdir``; ``read_stdout=False`` leaves its stdout pipe to the caller."""

    def __init__(self, workdir: Path, *flags: str, read_stdout: bool = True, command: str = "run") -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUMBELD_")}
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "daemon", command, "--metrics.port", "0", *flags],
                                     cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.snapshots: list[dict] = []
        self.log: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stderr, self.log, str), daemon=True)]
        if read_stdout:
            self.readers.append(threading.Thread(target=self._read, args=(self.proc.stdout, self.snapshots, json.loads),
                                                 daemon=True))
        for reader in self.readers:
            reader.start()
        self.started = time.monotonic()

    @staticmethod
    def _read(stream, into, parse):
        for line in stream:
            into.append(parse(line))

    def wait_for(self, condition, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            assert self.proc.poll() is None, f"gumbeld exited {self.proc.returncode}: {''.join(self.log)}"
            time.sleep(0.05)
        raise AssertionError(f"timed out; log:\n{''.join(self.log)}")

    def port(self) -> int:
        def found():
            for line in self.log:
                match = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
                if match:
                    return int(match.group(1))
        return self.wait_for(found)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port()}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> tuple[int, float]:
        self.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = self.proc.wait(timeout=30)
        return code, time.monotonic() - started
