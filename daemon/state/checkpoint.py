"""Durable, versioned checkpoints of the learned state, one file per state directory.

A save writes ``{"format": CHECKPOINT_FORMAT, "saved_at": …, "state": …}`` with ``torch.save`` to a
temporary file next to ``checkpoint.pt``, syncs it to disk, renames it over ``checkpoint.pt`` and
syncs the directory: whatever happens mid-way (crash, full disk, power loss), ``checkpoint.pt`` is
either the previous checkpoint or the new one, never a mix. Temporary files left by a crash are
removed by the next save or load.

Loading first verifies the CRC-32 of every member of the archive (``torch.load`` does not), so a
damaged file is reported instead of loading as wrong numbers. It then uses
``torch.load(weights_only=True)``, which only rebuilds tensors and plain values (numbers, strings,
``None``, lists, tuples, dicts) and refuses anything else, so a tampered file cannot run code. The
state must therefore consist of those alone; :meth:`CheckpointStore.save` checks that before
writing, so a bad state fails at save time rather than at the next start.

>>> import tempfile, torch
>>> directory = tempfile.TemporaryDirectory()
>>> store = CheckpointStore(Path(directory.name), clock=lambda: 12.5)
>>> store.load() is None
True
>>> path = store.save({"t": 3, "weights": torch.ones(2)})
>>> path.name, store.load(), store.saved_at
('checkpoint.pt', {'t': 3, 'weights': tensor([1., 1.])}, 12.5)
>>> directory.cleanup()
"""
from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"
_TEMP_PREFIX = f".{CHECKPOINT_NAME}."
_TEMP_SUFFIX = ".tmp"
# Exact types: subclasses (numpy scalars, namedtuples, tensor subclasses) pickle as their own class,
# which weights-only loading refuses.
_PLAIN_TYPES = (bool, int, float, str, type(None), torch.Tensor, torch.nn.Parameter)
_MAPPING_TYPES = (dict, OrderedDict)
_SCALAR_TYPES = frozenset((bool, int, float, str, type(None)))


class CheckpointError(Exception):
    """A checkpoint cannot be read or written; the message names the file and what to do."""


def _check_plain(value: object, where: str = "state") -> None:
    """Raise ``TypeError`` naming the first value that weights-only loading would refuse."""
    if type(value) in _MAPPING_TYPES:
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where} has a key of type {type(key).__name__}; use str or int")
            _check_plain(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        scalars = _SCALAR_TYPES
        for i, item in enumerate(value):  # long lists of names: no path built unless needed
            if type(item) not in scalars:
                _check_plain(item, f"{where}[{i}]")
    elif type(value) not in _PLAIN_TYPES:
        raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}; a checkpoint "
                        "holds only tensors, numbers, strings, None, lists, tuples and dicts")


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable: the new directory entry reaches the disk too."""
    if os.name != "posix":  # directories cannot be opened for fsync elsewhere
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _refusal_detail(error: pickle.UnpicklingError) -> str:
    # torch's message suggests loading unsafely; keep only the line that says what was refused.
    lines = [line.strip() for line in str(error).splitlines()]
    return next((line for line in lines if "Unsupported" in line or "not an allowed global" in line),
                lines[0] if lines else type(error).__name__)


class CheckpointStore:
    """``directory/checkpoint.pt``, saved atomically and loaded safely.

    ``save`` is meant to run in a worker thread (it blocks on disk I/O and uses no asyncio);
    saves from several threads are serialised. ``saved_at`` is the clock time at which the
    checkpoint last saved or loaded was written, ``None`` before either.
    """

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CHECKPOINT_NAME
        self.clock = clock
        self.saved_at: float | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.directory)!r})"

    def save(self, state: dict) -> Path:
        """Write ``state`` durably as the checkpoint and return its path.

        Raises ``TypeError`` (nothing written) if ``state`` holds values that could not be loaded
        back, and :class:`CheckpointError` if writing fails; the previous checkpoint then stays.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        _check_plain(state)
        with self._lock:
            saved_at = self.clock()
            payload = {"format": CHECKPOINT_FORMAT, "saved_at": saved_at, "state": state}
            temp: str | None = None
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._remove_temp_files()
                fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=self.directory)
                with os.fdopen(fd, "wb") as file:
                    torch.save(payload, file)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temp, self.path)
                temp = None
                _fsync_directory(self.directory)
            except Exception as error:
                raise CheckpointError(f"cannot save checkpoint {self.path}: {error}; "
                                      "the previous checkpoint, if any, is unchanged") from error
            finally:
                if temp is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(temp)
            self.saved_at = saved_at
            return self.path

    def load(self) -> dict | None:
        """The saved state, or ``None`` when there is no checkpoint; :class:`CheckpointError` if unusable."""
        with self._lock:
            if self.directory.is_dir():
                self._remove_temp_files()
            try:
                file = open(self.path, "rb")
            except FileNotFoundError:
                return None
            except OSError as error:
                raise self._unusable(f"cannot be opened ({error})") from error
            with file:
                payload = self._read(file)
            self.saved_at = payload["saved_at"]
            return payload["state"]

    # -- helpers ------------------------------------------------------------------------------
    def _read(self, file) -> dict:
        # torch.save writes a zip archive with a CRC-32 per member, but torch.load does not check
        # them: verify here, so flipped bits fail loudly instead of loading as wrong weights.
        try:
            with zipfile.ZipFile(file) as archive:
                damaged = archive.testzip()
        except Exception as error:  # a cut-off archive has no index
            raise self._unusable("is truncated or not a checkpoint file") from error
        if damaged is not None:
            raise self._unusable(f"is damaged: {damaged} does not match its checksum")
        file.seek(0)
        try:
            payload = torch.load(file, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as error:
            raise self._unusable("holds something other than tensors and plain values, which is refused "
                                 f"for safety ({_refusal_detail(error)})") from error
        except Exception as error:
            raise self._unusable(f"cannot be read ({type(error).__name__}: {error})") from error
        if not isinstance(payload, dict) or not {"format", "saved_at", "state"} <= payload.keys():
            raise self._unusable("is not a gumbeld checkpoint")
        if payload["format"] != CHECKPOINT_FORMAT:
            raise self._unusable(f"has format {payload['format']!r}, but this gumbeld reads format "
                                 f"{CHECKPOINT_FORMAT}")
        if not isinstance(payload["state"], dict) or not isinstance(payload["saved_at"], (int, float)):
            raise self._unusable("is not a gumbeld checkpoint")
        return payload

    def _unusable(self, problem: str) -> CheckpointError:
        return CheckpointError(
            f"checkpoint {self.path} {problem}. To start anew, remove or move the file, or set "
            "checkpoint.fresh_start=true to ignore it (the next checkpoint replaces it).")

    def _remove_temp_files(self) -> None:
        """Delete temporary files of writes that never finished (a crash between write and rename)."""
        for leftover in self.directory.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                leftover.unlink()
