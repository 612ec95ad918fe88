"""KafkaJS, the pure-JavaScript Kafka client, run by Node.js: ``node/produce.mjs`` and ``node/consume.mjs``.

The scripts print JSON lines on stdout and exit non-zero on any error; ``scripts/test`` installs
KafkaJS from ``node/package-lock.json`` (``npm ci``).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Sequence

import pytest

from tests.tools import required_tool

NODE_PROJECT = Path(__file__).parent / "node"


def produce(bootstrap: str, topic: str, messages: Sequence[tuple[str | None, str | None]], *,
            compression: str = "none", timeout: float = 60.0) -> dict:
    """Send ``(key, value)`` pairs in order; returns the script's summary ``{"sent": n, "keys": {key: n}}``."""
    lines = "".join(json.dumps({"key": key, "value": value}) + "\n" for key, value in messages)
    [summary] = _run("produce.mjs", ["--bootstrap", bootstrap, "--topic", topic, "--compression", compression],
                     lines, timeout)
    return summary


def read(bootstrap: str, topic: str, ends: dict[int, int], *, timeout: float = 30.0) -> list[dict]:
    """Every record of ``topic`` from the beginning up to ``ends`` (partition → end offset, exclusive), as
    ``{partition, offset, key, value, headers}`` with text key and value (``None`` when null)."""
    return _run("consume.mjs", ["--bootstrap", bootstrap, "--topic", topic, "--ends", json.dumps(ends),
                                "--timeout", str(timeout)], "", timeout + 15)


def _run(script: str, arguments: list[str], stdin: str, timeout: float) -> list[dict]:
    node = required_tool("node", "nodejs")
    if not (NODE_PROJECT / "node_modules" / "kafkajs" / "package.json").exists():
        pytest.fail(f"KafkaJS is not installed in {NODE_PROJECT}; run `scripts/test` (it runs `npm ci` there)",
                    pytrace=False)
    done = subprocess.run([node, str(NODE_PROJECT / script), *arguments], input=stdin, capture_output=True,
                          text=True, timeout=timeout, cwd=NODE_PROJECT)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
