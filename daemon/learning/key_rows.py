"""Keys' whole learning states, each over its own support: what the learner hands the state topics and takes back."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class KeyRows:
    """``A`` keys' rows over their own supports, grouped by width (what the state topics carry).

    ``states[W]`` holds the rows of the keys of width ``W``, in the order of their positions in
    ``widths``. Decoded rows also give their supports as ``codes[W]`` (``[a_W, W]``, −1 padded)
    into ``vocabulary``, the distinct labels; once :meth:`OpenRowCodec.localise` has run,
    ``categories[W]`` (the same shape) holds them as indices of this instance's category table.
    """

    widths: np.ndarray                               # [A] each key's width
    supports: list[list[str]]                        # [A] each key's labels, in column order
    states: dict[int, dict[str, torch.Tensor]]       # width → field → [a_W, …]
    categories: dict[int, np.ndarray] = field(default_factory=dict)
    codes: dict[int, np.ndarray] = field(default_factory=dict)
    vocabulary: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.widths)

    def positions(self, width: int) -> np.ndarray:
        """The positions (in ``0..A-1``) of the keys of ``width``, in the order of ``states[width]``."""
        return np.flatnonzero(self.widths == width)

    def newest(self) -> np.ndarray:
        """``[A]`` int64: each key's newest event time (ms; ``NO_TIME``: none kept), in position order."""
        newest = np.zeros(len(self), dtype=np.int64)
        for w, state in self.states.items():
            newest[self.positions(w)] = state["newest"].cpu().numpy()
        return newest

    def select(self, positions: np.ndarray) -> "KeyRows":
        """The rows at ``positions``, in that order."""
        positions = np.asarray(positions, dtype=np.int64)
        widths = self.widths[positions]
        states, categories, codes = {}, {}, {}
        for w in np.unique(widths).tolist():
            # where each chosen key of width w sits among the rows of width w
            local = np.searchsorted(self.positions(w), positions[widths == w])
            index = torch.from_numpy(local)
            states[w] = {f: v.index_select(0, index.to(v.device)) for f, v in self.states[w].items()}
            for chosen, every in ((categories, self.categories), (codes, self.codes)):
                if w in every:
                    chosen[w] = every[w][local]
        return KeyRows(widths, [self.supports[p] for p in positions.tolist()], states, categories, codes,
                        self.vocabulary)
