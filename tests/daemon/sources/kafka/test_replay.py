"""Replayed events that restored rows already count are skipped, and only those."""
from daemon.sources.kafka.replay import ReplayFilter


def test_only_rows_ahead_of_the_committed_offset_filter_replayed_events():
    replay = ReplayFilter()
    replay.add(("src", 0), {"old": 90, "equal": 100, "ahead": 130, "bare": None}, committed=100)
    assert replay  # something to filter
    # "ahead" counted its events before 130: those replayed from 100 are skipped, later ones kept
    assert [replay.keep(("src", 0), "ahead", o) for o in (100, 129, 130, 131)] == [False, False, True, True]
    for key in ("old", "equal", "bare", "new-key"):
        assert replay.keep(("src", 0), key, 100)
    assert replay.keep(("src", 1), "ahead", 100)  # another partition: not restored here


def test_the_filter_lets_go_once_the_consumer_passes_every_restored_row():
    replay = ReplayFilter()
    replay.add("p", {"a": 120, "b": 140}, committed=100)
    replay.passed("p", 130)
    assert not replay.keep("p", "b", 135) and replay.keep("p", "a", 125)
    replay.passed("p", 140)
    assert not replay and replay.keep("p", "b", 100)
    replay.add("q", {"a": 120}, committed=100)
    replay.forget("q")
    assert not replay
