"""daemon.tools.watch.render: what a known snapshot looks like on a console (labels, bar lengths, numbers, header)."""
import re
from datetime import datetime, timezone

from rich.console import Console

from daemon.tools.client import Update
from daemon.tools.watch.render import (
    BAR_WIDTH,
    EMPIRICAL,
    LEARNED,
    MAX_CATEGORIES,
    render,
)
from daemon.tools.watch.state import WatchState
from tests.daemon.tools.watch.snapshots import snapshot

NOW = datetime(2026, 11, 28, 10, 2, 5, tzinfo=timezone.utc).timestamp()  # 2m05s after PUBLISHED_AT


def _text(state: WatchState, width: int = 100) -> str:
    console = Console(record=True, width=width, file=open("/dev/null", "w"), color_system=None)
    console.print(render(state, now=NOW, source="file run.jsonl"))
    return console.export_text()


def _row(text: str, label: str) -> str:
    rows = [line for line in text.splitlines() if re.search(rf"│ {re.escape(label)} ", line)]
    assert len(rows) == 1, f"one row of {label!r} expected in:\n{text}"
    return rows[0]


def test_a_snapshot_shows_its_labels_bars_in_proportion_and_its_numbers():
    state = WatchState()
    state.apply(Update("shop-17", snapshot("shop-17", events=412_000, version=12, categories=("red", "green", "blue", "cyan"),
                                           learned=(0.55, 0.25, 0.15, 0.05), empirical=(0.5, 0.3, 0.2, 0.0),
                                           tv=0.0612, kl=0.0437)))
    text = _text(state)
    assert "shop-17" in text
    assert re.search(r"events 412,000\s+v12\s+TV 0\.0612\s+KL 0\.0437\s+age 2m05s", text), text
    assert "as of" not in text  # a snapshot without event time says nothing of it
    for label, learned, empirical in [("red", 0.55, 0.5), ("green", 0.25, 0.3), ("blue", 0.15, 0.2), ("cyan", 0.05, 0.0)]:
        row = _row(text, label)
        assert row.count(LEARNED) == round(learned * BAR_WIDTH), row
        assert row.count(EMPIRICAL) == round(empirical * BAR_WIDTH), row
        assert re.search(rf"{LEARNED}*\s+{learned:.1%}\s+{EMPIRICAL}*\s+{empirical:.1%}", row), row
    assert "red" in text.split("green")[0]  # the categories in the snapshot's order


def test_each_learned_bar_carries_its_interval_as_a_whisker_and_its_bounds():
    state = WatchState()
    state.apply(Update("shop-17", snapshot("shop-17", categories=("red", "green"), learned=(0.6, 0.4), empirical=(0.5, 0.5),
                                           intervals=([0.45, 0.25], [0.75, 0.55]))))
    text = _text(state)
    for label, learned, lower, upper in [("red", 0.6, 0.45, 0.75), ("green", 0.4, 0.25, 0.55)]:
        row = _row(text, label)
        assert row.count(LEARNED) == round(lower * BAR_WIDTH), row
        assert row.count("▓") == round(learned * BAR_WIDTH) - round(lower * BAR_WIDTH), row
        assert row.count("╌") == round(upper * BAR_WIDTH) - round(learned * BAR_WIDTH), row
        assert f"{learned:.1%} {lower:.1%}–{upper:.1%}" in row, row


def test_the_header_says_the_source_status_keys_shown_malformed_and_filter():
    state = WatchState(top=2)
    for i, key in enumerate(["a", "b", "c"]):
        state.apply(Update(key, snapshot(key, events=i)))
    state.malformed = 3
    state.set_status("disconnected", "cannot connect; attempt 2 in 0.8 s")
    header = _text(state, width=160).splitlines()[0]
    assert re.search(r"file run\.jsonl\s+disconnected \(cannot connect; attempt 2 in 0\.8 s\)\s+keys 1–2 of 3\s+malformed: 3",
                     header), header
    for key in ["/", "c", "enter"]:
        state.press(key)
    assert re.search(r"keys 1–1 of 1\s+malformed: 3\s+filter: c", _text(state, width=160).splitlines()[0])


def test_the_panels_shown_are_the_page_in_rank_order():
    state = WatchState(top=2)
    for key, events in [("low", 1), ("high", 9), ("mid", 5)]:
        state.apply(Update(key, snapshot(key, events=events)))
    text = _text(state, width=80)
    assert text.index("high") < text.index("mid") and "low" not in text


def test_typing_a_filter_shows_what_is_typed_and_an_empty_state_says_so():
    state = WatchState()
    assert "no snapshots yet" in _text(state)
    state.apply(Update("a", snapshot("a")))
    for key in ["/", "z", "q"]:
        state.press(key)
    text = _text(state)
    assert "/zq" in text and "Enter applies" in text
    state.press("enter")
    assert "no key matches" in _text(state)


def test_a_long_label_is_cut_and_categories_past_the_limit_are_summed_in_one_row():
    k = MAX_CATEGORIES + 6
    labels = ["a-category-label-far-too-long-to-show"] + [f"c{i}" for i in range(1, k)]
    state = WatchState()
    state.apply(Update("many", snapshot("many", categories=labels, learned=[1 / k] * k, empirical=[1 / k] * k)))
    text = _text(state)
    assert "a-category-label-far-too-long-to-show" not in text and "a-category-la…" in text
    assert f"c{MAX_CATEGORIES - 1} " in text and f"c{MAX_CATEGORIES} " not in text
    assert re.search(rf"\+6 more\s+{LEARNED}+\s+{6 / k:.1%}", text), text


def test_a_snapshot_with_event_time_says_what_time_it_is_as_of():
    state = WatchState()
    state.apply(Update("shop-17", snapshot("shop-17", as_of="2026-11-28T09:58:41.250Z")))
    assert re.search(r"age 2m05s\s+as of 09:58:41", _text(state)), _text(state)
