from __future__ import annotations

import subprocess
import sys
import threading
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch

from daemon.state import checkpoint as checkpoint_module
from daemon.state.checkpoint import CHECKPOINT_FORMAT, CheckpointError, CheckpointStore
from gumbel_models import GANConfig, GumbelGAN


def trained_gan(seed: int = 0) -> GumbelGAN:
    gan = GumbelGAN(GANConfig(n_categories=5), 2, seed=seed, device="cpu")
    gan.observe(torch.tensor([[1, 2, 3, 4, 10], [7, 0, 0, 1, 2]]))
    gan.step(5)
    return gan


def assert_same(a, b, where="state") -> None:
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    else:
        assert a == b, where


def temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture
def store(tmp_path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "state", clock=lambda: 1234.5)


def test_no_checkpoint_loads_as_none(store):
    assert store.load() is None  # the directory does not even exist yet
    store.directory.mkdir()
    assert store.load() is None
    assert store.saved_at is None


def test_gan_state_round_trips_exactly(store):
    gan = trained_gan()
    path = store.save(gan.state_dict())
    assert path == store.directory / "checkpoint.pt" and path.is_file()
    assert temp_files(store.directory) == []
    assert store.saved_at == 1234.5

    restored_state = CheckpointStore(store.directory).load()
    assert_same(gan.state_dict(), restored_state)
    restored = GumbelGAN(GANConfig(n_categories=5), 2, seed=99, device="cpu")
    restored.load_state_dict(restored_state)
    assert_same(gan.state_dict(), restored.state_dict())
    # The random generator came back too: both continue identically.
    gan.step(3)
    restored.step(3)
    assert_same(gan.state_dict(), restored.state_dict())


def test_saved_at_comes_back_with_the_checkpoint(store):
    store.save({"t": 1})
    fresh = CheckpointStore(store.directory)
    fresh.load()
    assert fresh.saved_at == 1234.5


def test_plain_values_round_trip(store):
    state = {"none": None, "flag": True, "n": 3, "x": 0.5, "name": "k", "list": [1, "a", None],
             "pair": (1, 2), "nested": {0: torch.arange(3)}, "bytes": torch.ByteTensor([1, 255])}
    store.save(state)
    assert_same(store.load(), state)


def test_failed_write_keeps_the_previous_checkpoint(store, monkeypatch):
    store.save({"t": 1})

    def partial_save(obj, file):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", partial_save)
    with pytest.raises(CheckpointError, match="No space left") as failure:
        store.save({"t": 2})
    assert str(store.path) in str(failure.value)
    monkeypatch.undo()
    assert store.load() == {"t": 1}
    assert temp_files(store.directory) == []


def test_failed_rename_keeps_the_previous_checkpoint(store, monkeypatch):
    store.save({"t": 1})

    def failing_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(checkpoint_module.os, "replace", failing_replace)
    with pytest.raises(CheckpointError, match="rename failed"):
        store.save({"t": 2})
    monkeypatch.undo()
    assert store.load() == {"t": 1}
    assert temp_files(store.directory) == []


def test_crash_between_write_and_rename_leaves_previous_checkpoint(store):
    store.save({"t": 1})
    # A real process dies after writing the temporary file and before the rename.
    crash = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from daemon.state import checkpoint\n"
        "checkpoint.os.replace = lambda src, dst: os._exit(17)\n"
        "checkpoint.CheckpointStore(Path(sys.argv[1])).save({'t': 2})\n")
    result = subprocess.run([sys.executable, "-c", crash, str(store.directory)], timeout=120)
    assert result.returncode == 17
    assert len(temp_files(store.directory)) == 1
    assert CheckpointStore(store.directory).load() == {"t": 1}
    assert temp_files(store.directory) == []


def test_truncated_temp_file_left_behind_is_ignored_and_removed(store):
    store.save({"t": 1})
    complete = store.path.read_bytes()
    leftover = store.directory / ".checkpoint.pt.crashed.tmp"
    leftover.write_bytes(complete[: len(complete) // 2])
    assert store.load() == {"t": 1}
    assert not leftover.exists()
    leftover.write_bytes(b"junk")
    store.save({"t": 2})  # a save cleans up as well
    assert not leftover.exists()
    assert store.load() == {"t": 2}


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a checkpoint" * 10, "truncated"])
def test_corrupt_checkpoint_raises_naming_the_file(store, content):
    store.save({"t": 1, "w": torch.ones(1000)})
    complete = store.path.read_bytes()
    store.path.write_bytes(complete[: len(complete) // 2] if content == "truncated" else content)
    with pytest.raises(CheckpointError) as failure:
        store.load()
    message = str(failure.value)
    assert str(store.path) in message
    assert "checkpoint.fresh_start=true" in message and "remove" in message


def test_damaged_archive_raises_checkpoint_error(store):
    store.save({"t": 1, "w": torch.ones(1000)})
    data = bytearray(store.path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xff" * 64  # the index survives, the content does not
    store.path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged") as failure:
        store.load()
    assert str(store.path) in str(failure.value)


def test_other_format_number_is_refused(store):
    store.directory.mkdir()
    torch.save({"format": CHECKPOINT_FORMAT + 1, "saved_at": 0.0, "state": {}}, store.path)
    with pytest.raises(CheckpointError, match=f"format {CHECKPOINT_FORMAT + 1}") as failure:
        store.load()
    assert str(store.path) in str(failure.value)


@pytest.mark.parametrize("payload", [[1, 2, 3], {"state": {}}, {"format": CHECKPOINT_FORMAT, "saved_at": 0,
                                                                 "state": [1]}])
def test_a_torch_file_that_is_not_a_checkpoint_is_refused(store, payload):
    store.directory.mkdir()
    torch.save(payload, store.path)
    with pytest.raises(CheckpointError, match="not a gumbeld checkpoint"):
        store.load()


class Planted:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_arbitrary_objects_are_refused_without_running_code(store, tmp_path):
    marker = tmp_path / "code-ran"
    store.directory.mkdir()
    torch.save({"format": CHECKPOINT_FORMAT, "saved_at": 0.0, "state": {"x": Planted(marker)}}, store.path)
    with pytest.raises(CheckpointError, match="refused") as failure:
        store.load()
    assert str(store.path) in str(failure.value)
    assert not marker.exists()


def test_custom_class_instance_is_refused(store):
    store.directory.mkdir()
    torch.save({"format": CHECKPOINT_FORMAT, "saved_at": 0.0, "state": {"x": Path("/")}}, store.path)
    with pytest.raises(CheckpointError, match="refused"):
        store.load()


@pytest.mark.parametrize("bad", [np.float64(1.0), np.zeros(2), namedtuple("Pair", "a b")(1, 2), Path("/"),
                                 {("tuple", "key"): 1}])
def test_save_refuses_what_could_not_be_loaded(store, bad):
    store.save({"t": 1})
    with pytest.raises(TypeError, match=r"state\['bad'\]"):
        store.save({"t": 2, "bad": bad})
    assert store.load() == {"t": 1}


def test_saves_from_several_threads(store):
    errors = []

    def save(i: int) -> None:
        try:
            for j in range(5):
                store.save({"writer": i, "n": j, "w": torch.full((100,), float(i))})
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    state = store.load()
    assert state["n"] == 4 and torch.equal(state["w"], torch.full((100,), float(state["writer"])))
    assert temp_files(store.directory) == []


def test_checkpoint_that_cannot_be_opened_raises(store):
    store.path.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(CheckpointError, match="cannot be opened"):
        store.load()
