"""Per-row arrays that grow as keys arrive."""
from __future__ import annotations

import numpy as np


def grown(array: np.ndarray, rows: int, fill=0) -> np.ndarray:
    """``array`` with its first axis extended to ``rows`` (new rows hold ``fill``); itself if long enough.

    >>> grown(np.array([1, 2]), 4).tolist()
    [1, 2, 0, 0]
    """
    if array.shape[0] >= rows:
        return array
    # zeros are mapped lazily (calloc): growing copies the rows held and writes nothing else, which
    # keeps a doubling on the event loop short (65,536 × 16 float64 rows: 1.8 ms, 5.1 ms with np.full)
    shape = (rows, *array.shape[1:])
    out = np.zeros(shape, dtype=array.dtype) if fill == 0 else np.full(shape, fill, dtype=array.dtype)
    out[: array.shape[0]] = array
    return out
