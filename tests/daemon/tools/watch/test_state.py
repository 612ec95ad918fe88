"""daemon.tools.watch.state: the key table (tombstones, malformed), top N by events, --key patterns, the filter, paging."""
import pytest

from daemon.tools.client import Update
from daemon.tools.watch.state import WatchState, filter_pattern
from tests.daemon.tools.watch.snapshots import eviction_line, line, snapshot


def _shown(state: WatchState) -> list[str]:
    return [s.key for s in state.page().snapshots]


def _state(top: int = 3, events: dict[str, int] | None = None, **options) -> WatchState:
    state = WatchState(top=top, **options)
    for key, n in (events or {}).items():
        state.apply(Update(key, snapshot(key, events=n)))
    return state


def test_a_tombstone_removes_its_key_and_a_later_snapshot_brings_it_back():
    state = _state(events={"a": 5, "b": 7})
    state.apply(Update("a", None))
    assert _shown(state) == ["b"] and "a" not in state.snapshots
    state.apply(Update("a", snapshot("a", events=1, version=1)))
    assert _shown(state) == ["b", "a"]


def test_an_eviction_line_removes_its_key_and_a_snapshot_line_replaces_the_keys_snapshot():
    state = WatchState()
    state.apply_line(line("a", version=1, events=10))
    state.apply_line(line("a", version=2, events=20))
    assert state.snapshots["a"].version == 2 and state.snapshots["a"].events == 20
    state.apply_line(eviction_line("a"))
    assert state.snapshots == {} and state.malformed == 0


def test_malformed_lines_are_counted_and_change_nothing_else():
    state = _state(events={"a": 5})
    for bad in (b"{nope", b'{"key": "a"}', line("a", learned=(0.9, 0.3, 0.1)), b"[]"):
        state.apply_line(bad)
    state.apply_line(b"  \n")  # blank: not a snapshot, not malformed either
    assert state.malformed == 4 and state.snapshots["a"].events == 5


def test_the_malformed_count_of_a_topic_read_again_is_the_furthest_readings():
    state = WatchState()
    state.topic_malformed(3)
    state.topic_malformed(1)  # a reconnect reads the topic from its start again
    assert state.malformed == 3
    state.topic_malformed(4)
    assert state.malformed == 4


def test_the_top_n_keys_by_events_most_first_ties_by_key():
    state = _state(top=3, events={"a": 10, "b": 50, "c": 30, "d": 50, "e": 1})
    page = state.page()
    assert _shown(state) == ["b", "d", "c"] and (page.first, page.total) == (0, 5)
    state.apply(Update("e", snapshot("e", events=99)))  # a key that overtakes the others moves up
    assert _shown(state) == ["e", "b", "d"]


def test_key_patterns_choose_the_keys_any_pattern_matches():
    state = _state(top=10, events={"shop-1": 1, "shop-22": 2, "web": 3, "webshop": 4, "api": 5},
                   patterns=("shop-*", "web"))
    assert _shown(state) == ["web", "shop-22", "shop-1"] and state.page().total == 3


def test_the_filter_is_typed_after_a_slash_and_applied_with_enter():
    state = _state(top=10, events={"shop-1": 1, "shop-2": 2, "web": 3})
    for key in ["/", "s", "h", "x", "backspace", "o"]:
        state.press(key)
    assert state.editing == "sho" and state.filter is None and len(_shown(state)) == 3  # not applied yet
    state.press("enter")
    assert state.filter == "sho" and state.editing is None and _shown(state) == ["shop-2", "shop-1"]


def test_while_typing_q_is_a_letter_and_esc_cancels_keeping_the_filter_before():
    state = _state(top=10, events={"sq": 1, "web": 3})
    for key in ["/", "w", "e", "enter", "/", "q"]:
        state.press(key)
    assert not state.quit and state.editing == "q"
    state.press("esc")
    assert state.editing is None and state.filter == "we" and _shown(state) == ["web"]
    state.press("esc")  # not typing: Esc drops the applied filter
    assert state.filter is None and _shown(state) == ["web", "sq"]
    state.press("q")
    assert state.quit


def test_a_filter_with_a_wildcard_is_a_glob_and_one_without_matches_inside_keys():
    assert filter_pattern("shop") == "*shop*" and filter_pattern("shop-?") == "shop-?"
    state = _state(top=10, events={"shop-1": 1, "shop-12": 2, "myshop": 3})
    for key in ["/", *"shop-?", "enter"]:
        state.press(key)
    assert _shown(state) == ["shop-1"]


def test_a_filter_applies_on_top_of_the_key_patterns():
    state = _state(top=10, events={"shop-1": 1, "shop-2": 2, "web-2": 3}, patterns=("shop-*",))
    for key in ["/", "2", "enter"]:
        state.press(key)
    assert _shown(state) == ["shop-2"]


def test_paging_by_key_and_by_page_stays_within_the_keys():
    state = _state(top=3, events={k: 100 - i for i, k in enumerate("abcdefgh")})  # ranked a..h
    state.press("down")
    assert _shown(state) == ["b", "c", "d"]
    state.press("pagedown")
    assert _shown(state) == ["e", "f", "g"]
    state.press("pagedown")  # the last page is a full one
    assert _shown(state) == ["f", "g", "h"] and state.page().first == 5
    state.press("down")
    assert _shown(state) == ["f", "g", "h"]
    state.press("pageup")
    assert _shown(state) == ["c", "d", "e"]
    state.press("up"), state.press("up"), state.press("up"), state.press("up")
    assert _shown(state) == ["a", "b", "c"]
    state.press("end")
    assert _shown(state) == ["f", "g", "h"]
    state.press("home")
    assert _shown(state) == ["a", "b", "c"]


def test_a_page_past_the_keys_left_moves_back_and_a_new_filter_starts_on_the_first_page():
    state = _state(top=2, events={k: 100 - i for i, k in enumerate("abcde")})
    state.press("end")
    assert _shown(state) == ["d", "e"]
    for key in "cde":
        state.apply(Update(key, None))
    assert _shown(state) == ["a", "b"] and state.page().first == 0
    state.press("down")
    assert _shown(state) == ["a", "b"]
    state.apply(Update("f", snapshot("f", events=1)))
    state.press("down")
    assert _shown(state) == ["b", "f"]
    for key in ["/", "a", "enter"]:
        state.press(key)
    assert state.offset == 0 and _shown(state) == ["a"]


def test_fewer_than_one_key_per_page_is_refused():
    with pytest.raises(ValueError, match="top"):
        WatchState(top=0)
