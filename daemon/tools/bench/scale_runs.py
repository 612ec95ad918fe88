"""How ``gumbeld bench scale`` runs each measurement: in a work directory of its own, and a run
that fails still gives a row, its fields null, with the error."""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Callable


@contextlib.contextmanager
def workdir_for(keep: Path | None, name: str):
    if keep is None:
        with tempfile.TemporaryDirectory(prefix=f"gumbeld-bench-scale-{name}-") as path:
            yield Path(path)
        return
    path = keep / name
    if path.exists() and any(path.iterdir()):
        raise RuntimeError(f"{path} is not empty (its checkpoint would be resumed): remove it or use another --keep")
    path.mkdir(parents=True, exist_ok=True)
    yield path


def measure_row(keep: Path | None, name: str, measure: Callable[[Path], dict], required: tuple[str, ...],
                **identity) -> tuple[dict, bool]:
    """``(row, failed)``: ``measure(workdir)`` in the work directory ``name``, or, when it raises
    ``RuntimeError``, the ``required`` fields as null with ``identity`` and the error. The failure
    and the row's notes are printed."""
    try:
        with workdir_for(keep, name) as workdir:
            row, failed = measure(workdir), False
    except RuntimeError as error:
        row, failed = {**dict.fromkeys(required), **identity, "error": str(error)}, True
        print(f"   failed: {error}", flush=True)
    for note in row.get("notes", []):
        print(f"   note: {note}", flush=True)
    return row, failed
