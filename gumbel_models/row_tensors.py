"""What holds its state as ``[B, …]`` tensors, one row per key, and moves those rows together.

A holder names its row tensors in ``ROW_STATE``; :class:`RowTensors` gives it the operations
that treat every one of them alike: keep some rows, take a copy of some rows to step on its own
and put them back, save and restore the tensors. Everything else a holder has (settings such
as learning rates) is shared by the copy, not sliced.
"""
from __future__ import annotations

import copy
from typing import Self

import torch


class RowTensors:
    ROW_STATE: tuple[str, ...] = ()

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (indices, or a boolean mask), in that order."""
        for name in self.ROW_STATE:
            setattr(self, name, getattr(self, name)[rows])

    def take(self, index: torch.Tensor) -> Self:
        """A copy holding only rows ``index`` ``[A]``, to step on its own and :meth:`put` back."""
        part = copy.copy(self)
        for name in self.ROW_STATE:
            setattr(part, name, getattr(self, name).index_select(0, index))
        return part

    def put(self, index: torch.Tensor, part: Self) -> None:
        """Write back the rows taken by :meth:`take`."""
        for name in self.ROW_STATE:
            getattr(self, name).index_copy_(0, index, getattr(part, name))

    def state_dict(self) -> dict:
        return {name: getattr(self, name).clone() for name in self.ROW_STATE}

    def load_state_dict(self, state: dict) -> None:
        for name in self.ROW_STATE:
            setattr(self, name, state[name].to(getattr(self, name)).clone())
