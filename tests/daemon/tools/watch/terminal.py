"""``gumbeld watch`` in a real terminal: a detached tmux session on a server of the test's own."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

WIDTH, HEIGHT = 160, 50


class Pane:
    """``gumbeld watch ARGS`` (after ``| `` a ``stdin`` command, if given) in a WIDTH×HEIGHT tmux pane."""

    def __init__(self, tmux: str, workdir: Path, *args: str, stdin: str | None = None) -> None:
        self.tmux = [tmux, "-S", str(workdir / "tmux.socket"), "-f", "/dev/null"]
        self.exit_file, self.stderr_file = workdir / "exit-status", workdir / "stderr"
        command = shlex.join([sys.executable, "-m", "daemon", "watch", *args])
        if stdin:
            command = f"{stdin} | {command}"
        # The shell stays after gumbeld exits, so its exit status is kept and the pane can be read.
        script = f"{command} 2>{shlex.quote(str(self.stderr_file))}; echo $? > {shlex.quote(str(self.exit_file))}; sleep 600"
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX") and not k.startswith("GUMBELD_")}
        env.update(TERM="xterm-256color", LC_ALL="C.UTF-8")
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "watch", "-x", str(WIDTH), "-y", str(HEIGHT),
                        "-c", str(workdir), script], check=True, env=env, timeout=30)

    def text(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", "watch"], check=True, capture_output=True,
                              text=True, timeout=30).stdout

    def send(self, *keys: str) -> None:
        """tmux key names (``q``, ``NPage``, ``Escape``, ``Enter``), or ``"-l", TEXT`` for text typed as is."""
        subprocess.run([*self.tmux, "send-keys", "-t", "watch", *keys], check=True, timeout=30)

    def wait_for(self, condition, timeout: float = 30.0, what: str = "") -> str:
        """The pane's text once ``condition(text)`` holds; fails with the last text seen if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}; the pane:\n{text}\nstderr:\n"
                                     f"{self.stderr()}exit status: {self.exit_status()}")
            time.sleep(0.1)

    def exit_status(self) -> int | None:
        try:
            return int(self.exit_file.read_text())
        except (OSError, ValueError):
            return None

    def wait_for_exit(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while (status := self.exit_status()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"gumbeld watch still runs; the pane:\n{self.text()}")
            time.sleep(0.1)
        return status

    def stderr(self) -> str:
        try:
            return self.stderr_file.read_text()
        except OSError:
            return ""

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, timeout=30)
