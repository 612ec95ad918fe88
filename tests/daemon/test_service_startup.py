"""A startup that fails half-way closes whatever it had opened: training thread, source, sinks, server."""
import asyncio
import socket

import pytest

from daemon.service import Service, StartupError
from tests.daemon.in_process import RecordingSink, ScriptedSource, service_settings, train_threads


async def test_a_startup_failure_closes_what_had_started(tmp_path):
    """The metrics port is taken: startup fails after the source, sinks and training thread exist;
    serve() raises, and the training thread is gone, the source stopped, the sinks closed."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        source, sink = ScriptedSource(), RecordingSink()
        before = set(train_threads())
        service = Service(service_settings(tmp_path, metrics={"port": taken.getsockname()[1]}), source=source, sinks=[sink])
        with pytest.raises(StartupError, match="metrics"):
            await asyncio.wait_for(service.serve(), timeout=60)
    finally:
        taken.close()
    assert set(train_threads()) - before == set(), "no training thread is left behind"
    assert source.stopped == 1 and sink.closed == 1
    assert service.executor._shutdown and service.http is None  # the server never listened
    assert service.dead_letters._sink._file.closed


async def test_a_startup_failure_after_the_server_listens_stops_the_server(tmp_path, monkeypatch):
    """Startup fails at its very end: the HTTP server, already listening, is stopped with the rest."""
    from daemon.health import Health

    set_ready = Health.set_ready

    def fail_on_the_model(self, name, *args):
        if name == "model":
            raise RuntimeError("the model cannot be served")
        return set_ready(self, name, *args)
    monkeypatch.setattr(Health, "set_ready", fail_on_the_model)
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source, sink = ScriptedSource(), RecordingSink()
    service = Service(service_settings(tmp_path, metrics={"port": port}), source=source, sinks=[sink])
    with pytest.raises(RuntimeError, match="cannot be served"):
        await asyncio.wait_for(service.serve(), timeout=60)
    with pytest.raises(OSError):  # nothing listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert service.executor._shutdown and source.stopped == 1 and sink.closed == 1


async def test_a_startup_failure_on_the_checkpoint_closes_what_had_started(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "checkpoint.pt").write_bytes(b"not a checkpoint")
    source = ScriptedSource()
    before = set(train_threads())
    service = Service(service_settings(tmp_path), source=source, sinks=[RecordingSink()])
    with pytest.raises(StartupError, match="checkpoint"):
        await asyncio.wait_for(service.serve(), timeout=60)
    assert set(train_threads()) - before == set()
    assert source.stopped == 1
