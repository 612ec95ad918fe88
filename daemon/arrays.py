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
    out = np.full((rows, *array.shape[1:]), fill, dtype=array.dtype)
    out[: array.shape[0]] = array
    return out
