"""What ``gumbeld watch`` shows, apart from any terminal: a pure state, driven by updates and keys.

The latest snapshot of each live key (a tombstone or eviction record removes the key); which keys
are chosen (``--key`` glob patterns, then the ``/`` filter), ranked by events (most first, then by
key); the page of ``top`` keys shown from ``offset``; the count of malformed snapshots; and the
connection status.

>>> state = WatchState(top=2)
>>> for key in ("a", "b", "c"):
...     state.apply(Update(key, _example(key, events=ord(key))))
>>> [s.key for s in state.page().snapshots], state.page().total
(['c', 'b'], 3)
>>> state.press("pagedown"); [s.key for s in state.page().snapshots]
['b', 'a']
>>> state.apply(Update("b", None)); [s.key for s in state.page().snapshots]
['c', 'a']
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from daemon.tools.client import Snapshot, Update, parse_line

GLOB_CHARACTERS = frozenset("*?[")


def filter_pattern(text: str) -> str:
    """The glob a typed filter stands for: itself if it has a wildcard, else any key containing it."""
    return text if GLOB_CHARACTERS & set(text) else f"*{text}*"


@dataclass(frozen=True)
class Page:
    """The snapshots on screen, in rank order; ``first`` is the rank (from 0) of the first of them
    among the ``total`` chosen keys."""

    snapshots: list[Snapshot]
    first: int
    total: int


@dataclass
class WatchState:
    """Everything ``gumbeld watch`` draws. ``status`` is one word (``connecting``, ``connected``,
    ``loading``, ``disconnected``, ``reading``, ``following``, ``ended``) and ``detail`` says more."""

    top: int = 10                                   # keys per page
    patterns: tuple[str, ...] = ()                  # --key globs; none: every key
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    malformed: int = 0
    filter: str | None = None                       # the applied filter, as typed
    editing: str | None = None                      # the filter being typed after '/'
    offset: int = 0                                 # rank of the first key shown
    status: str = "connecting"
    detail: str = ""
    quit: bool = False

    def __post_init__(self) -> None:
        if self.top < 1:
            raise ValueError(f"top must be at least 1, not {self.top}")

    # -- data ----------------------------------------------------------------------------------

    def apply(self, update: Update) -> None:
        """A snapshot replaces its key's; an eviction (no snapshot) removes the key."""
        if update.snapshot is None:
            self.snapshots.pop(update.key, None)
        else:
            self.snapshots[update.key] = update.snapshot

    def replace_all(self, snapshots: dict[str, Snapshot]) -> None:
        """Every live key read afresh: keys not among ``snapshots`` are gone."""
        self.snapshots = dict(snapshots)

    def apply_line(self, line: bytes | str) -> None:
        """One line of gumbeld's JSON-lines output; blank lines are skipped, malformed ones counted."""
        if not line.strip():
            return
        try:
            update = parse_line(line)
        except ValueError:
            self.malformed += 1
            return
        self.apply(update)

    def topic_malformed(self, count: int) -> None:
        """The malformed count of a reading of the topic from its start. A reconnect reads it again
        and counts the same messages anew, so the count kept is that of the furthest reading."""
        self.malformed = max(self.malformed, count)

    def set_status(self, status: str, detail: str = "") -> None:
        self.status, self.detail = status, detail

    # -- what is shown -------------------------------------------------------------------------

    def chosen(self) -> list[str]:
        """Keys matching ``patterns`` (any of them) and the filter, in no particular order."""
        keys = list(self.snapshots)
        if self.patterns:
            keys = [k for k in keys if any(fnmatchcase(k, p) for p in self.patterns)]
        if self.filter:
            pattern = filter_pattern(self.filter)
            keys = [k for k in keys if fnmatchcase(k, pattern)]
        return keys

    def page(self) -> Page:
        """The ``top`` chosen keys from ``offset`` on, by events (most first), then key."""
        keys = self.chosen()
        first = self._clamp(self.offset, len(keys))
        ranked = heapq.nsmallest(first + self.top, keys, key=lambda k: (-self.snapshots[k].events, k))
        return Page([self.snapshots[k] for k in ranked[first:]], first, len(keys))

    def scroll(self, keys: int) -> None:
        """Move the page by ``keys`` ranks (negative: up), within the chosen keys."""
        total = len(self.chosen())
        self.offset = self._clamp(self._clamp(self.offset, total) + keys, total)

    def _clamp(self, offset: int, total: int) -> int:
        # the last page is a full one, as in a pager
        return max(0, min(offset, total - self.top))

    # -- keys ----------------------------------------------------------------------------------

    def press(self, key: str) -> None:
        """A key from the keyboard (a character, or ``up``, ``down``, ``pageup``, ``pagedown``,
        ``home``, ``end``, ``enter``, ``esc``, ``backspace``)."""
        if self.editing is not None:
            self._edit(key)
        elif key in ("q", "Q"):
            self.quit = True
        elif key in ("down", "up", "pagedown", "pageup"):
            step = 1 if key in ("down", "up") else self.top
            self.scroll(step if key in ("down", "pagedown") else -step)
        elif key == "home":
            self.offset = 0
        elif key == "end":
            self.scroll(len(self.snapshots))
        elif key == "/":
            self.editing = ""
        elif key == "esc":  # outside typing, Esc drops the applied filter
            self.filter, self.offset = None, 0

    def _edit(self, key: str) -> None:
        if key == "enter":
            self.filter, self.editing, self.offset = self.editing or None, None, 0
        elif key == "esc":
            self.editing = None
        elif key == "backspace":
            self.editing = self.editing[:-1]
        elif len(key) == 1 and key.isprintable():
            self.editing += key


def _example(key: str, events: int) -> Snapshot:
    """A small valid snapshot (for the examples above)."""
    return Snapshot(key=key, categories=["x", "y"], probabilities=[0.5, 0.5], empirical=[0.5, 0.5],
                    divergence={"tv": 0.0, "kl": 0.0, "js": 0.0}, temperature=1.0, step=1, events=events,
                    published_at="2026-01-01T00:00:00Z", version=1)
