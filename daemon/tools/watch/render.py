"""Rich renderables of a :class:`~daemon.tools.watch.state.WatchState`: a header, one panel per key shown, a footer.

A key's panel has its title (the key), a summary (events, version, the snapshot's TV and KL between
learned and the key's target, the snapshot's age) and, per category, a bar of the learned
probability (``█``) and one of the empirical probability (``▒``), each ``BAR_WIDTH`` cells for a
probability of 1, with the percentages. The learned bar carries the category's interval as a
whisker: ``▓`` from its lower bound up to the probability, ``╌`` on to its upper bound. Panels are
laid out in as many columns as the terminal's width holds.

>>> bar(0.25, "█", width=8)
'██      '
>>> whisker_bar(0.5, 0.25, 0.875, width=8)
'██▓▓╌╌╌ '
>>> age_text(42.4), age_text(185), age_text(7300), age_text(-3)
('42s', '3m05s', '2h01m', '0s')
"""
from __future__ import annotations

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from daemon.tools.client import Snapshot

from .state import Page, WatchState

BAR_WIDTH = 20
LEARNED, EMPIRICAL = "█", "▒"
LEARNED_STYLE, EMPIRICAL_STYLE = "cyan", "magenta"
LABEL_WIDTH = 14          # longer category labels end in …
MAX_CATEGORIES = 24       # more are summed up in one line: a page stays readable
STATUS_STYLES = {"connected": "bold green", "following": "bold green", "reading": "green", "loading": "green",
                 "connecting": "yellow", "disconnected": "bold red", "ended": "bold"}


def bar(probability: float, glyph: str, width: int = BAR_WIDTH) -> str:
    """``probability`` as a bar of ``glyph``, padded with spaces to ``width`` cells."""
    cells = min(width, max(0, round(probability * width)))
    return glyph * cells + " " * (width - cells)


def whisker_bar(probability: float, lower: float, upper: float, width: int = BAR_WIDTH) -> str:
    """A learned bar of ``probability`` with its interval ``[lower, upper]`` drawn in, ``width`` cells."""
    def cells(p: float) -> int:
        return min(width, max(0, round(p * width)))
    low, mid = min(cells(lower), cells(probability)), cells(probability)
    high = max(cells(upper), mid)
    return LEARNED * low + "▓" * (mid - low) + "╌" * (high - mid) + " " * (width - high)


def age_text(seconds: float) -> str:
    """A duration in its two largest units (a snapshot from a clock ahead of this one: 0s)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def key_panel(snapshot: Snapshot, now: float) -> Panel:
    """One key: its summary line (with the event time it is as of) and learned vs empirical bars per
    category. ``now``: Unix time."""
    d = snapshot.divergence
    summary = Text.assemble(
        "events ", (f"{snapshot.events:,}", "bold"), "  v", str(snapshot.version),
        "  TV ", (f"{d.tv:.4f}", "bold"), "  KL ", f"{d.kl:.4f}",
        "  age ", age_text(now - snapshot.published_at.timestamp()),
        *(() if snapshot.as_of is None else ("  as of ", f"{snapshot.as_of:%H:%M:%S}")))
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="dim")
    table.add_column("category", no_wrap=True, overflow="ellipsis", max_width=LABEL_WIDTH)
    table.add_column("learned", no_wrap=True)
    table.add_column("empirical", no_wrap=True)
    rows = list(zip(snapshot.categories, snapshot.probabilities, snapshot.empirical))
    intervals = snapshot.intervals
    for i, (label, learned, empirical) in enumerate(rows[:MAX_CATEGORIES]):
        cell = _cell(learned, LEARNED, LEARNED_STYLE) if intervals is None else \
            _interval_cell(learned, intervals.lower[i], intervals.upper[i])
        table.add_row(Text(label), cell, _cell(empirical, EMPIRICAL, EMPIRICAL_STYLE))
    if len(rows) > MAX_CATEGORIES:
        rest = rows[MAX_CATEGORIES:]
        table.add_row(Text(f"+{len(rest)} more", style="dim"), _cell(sum(r[1] for r in rest), LEARNED, LEARNED_STYLE),
                      _cell(sum(r[2] for r in rest), EMPIRICAL, EMPIRICAL_STYLE))
    return Panel(Group(summary, table), title=Text(snapshot.key, style="bold"), title_align="left", expand=False)


def _cell(probability: float, glyph: str, style: str) -> Text:
    return Text.assemble((bar(probability, glyph), style), f" {probability:6.1%}")


def _interval_cell(probability: float, lower: float, upper: float) -> Text:
    return Text.assemble((whisker_bar(probability, lower, upper), LEARNED_STYLE), f" {probability:6.1%}",
                         (f" {lower:.1%}–{upper:.1%}", "dim"))


def header(state: WatchState, page: Page, source: str) -> Text:
    """Source and status; which keys are shown; malformed count; the applied filter."""
    text = Text.assemble(("gumbeld watch", "bold"), "  ", source, "  ", (state.status, STATUS_STYLES.get(state.status, "")))
    if state.detail:
        text.append(f" ({state.detail})")
    shown = f"keys {page.first + 1}–{page.first + len(page.snapshots)} of {page.total}" if page.snapshots else "keys 0 of 0"
    text.append(f"  {shown}  malformed: {state.malformed}")
    if state.filter:
        text.append(f"  filter: {state.filter}")
    if state.patterns:
        text.append(f"  --key {' '.join(state.patterns)}")
    return text


def footer(state: WatchState) -> Text:
    """The keys: while a filter is typed, what Enter and Esc do."""
    if state.editing is not None:
        return Text.assemble(("/", "bold"), state.editing, ("▏", "blink"), "   Enter applies · Esc cancels")
    return Text.assemble("q quit · ↑↓ scroll · PgUp/PgDn page · / filter   ",
                         (LEARNED, LEARNED_STYLE), " learned ", ("▓╌", LEARNED_STYLE), " its interval  ",
                         (EMPIRICAL, EMPIRICAL_STYLE), " empirical", style="dim")


def render(state: WatchState, *, now: float, source: str) -> RenderableType:
    """The whole screen for ``state``; ``now`` (Unix time) gives the snapshots' ages."""
    page = state.page()
    if page.snapshots:
        body: RenderableType = Columns([key_panel(s, now) for s in page.snapshots], equal=True)
    elif state.snapshots:
        body = Text("no key matches", style="dim")
    else:
        body = Text("no snapshots yet", style="dim")
    return Group(header(state, page, source), body, footer(state))
