"""Restoring from record lists that look compacted: gaps, tombstones, rows ahead of the commit."""
from daemon.changelog.restore import Record, ReplayFilter, latest, use_local_checkpoint


def test_compacted_log_with_gaps_last_row_of_each_key_wins():
    # offsets 1, 2, 5–7 were compacted away
    records = [Record(0, "a", b"a0", 10), Record(3, "b", b"b3", 12), Record(4, "a", b"a4", 12),
               Record(8, "c", b"c8", 15), Record(9, "b", b"b9", 15)]
    rows = latest(records)
    assert {k: r.value for k, r in rows.items()} == {"a": b"a4", "b": b"b9", "c": b"c8"}


def test_tombstones_delete_and_a_later_row_brings_the_key_back():
    records = [Record(0, "a", b"a0", 1), Record(1, "b", b"b1", 1), Record(2, "a", None, None),
               Record(5, "b", None, None), Record(7, "b", b"b7", 9), Record(8, "gone", None, None)]
    rows = latest(records)
    assert {k: r.value for k, r in rows.items()} == {"b": b"b7"}


def test_records_are_applied_in_offset_order_whatever_order_they_come_in():
    records = [Record(6, "a", None, None), Record(2, "a", b"a2", 3)]
    assert latest(records) == {}
    assert latest(reversed(records)) == {}


def test_only_rows_ahead_of_the_committed_offset_filter_replayed_events():
    rows = latest([Record(0, "old", b"x", 90), Record(1, "equal", b"y", 100), Record(2, "ahead", b"z", 130),
                   Record(3, "bare", b"w", None)])
    replay = ReplayFilter()
    replay.add(("src", 0), rows, committed=100)
    assert replay  # something to filter
    # "ahead" counted its events before 130: those replayed from 100 are skipped, later ones kept
    assert [replay.keep(("src", 0), "ahead", o) for o in (100, 129, 130, 131)] == [False, False, True, True]
    for key in ("old", "equal", "bare", "new-key"):
        assert replay.keep(("src", 0), key, 100)
    assert replay.keep(("src", 1), "ahead", 100)  # another partition: not restored here


def test_the_filter_lets_go_once_the_consumer_passes_every_restored_row():
    replay = ReplayFilter()
    replay.add("p", {"a": Record(0, "a", b"", 120), "b": Record(1, "b", b"", 140)}, committed=100)
    replay.passed("p", 130)
    assert not replay.keep("p", "b", 135) and replay.keep("p", "a", 125)
    replay.passed("p", 140)
    assert not replay and replay.keep("p", "b", 100)
    replay.add("q", {"a": Record(0, "a", b"", 120)}, committed=100)
    replay.forget("q")
    assert not replay


def test_the_local_checkpoint_holds_when_it_got_as_far_as_the_commit():
    assert use_local_checkpoint(500, 500) and use_local_checkpoint(510, 500)
    assert not use_local_checkpoint(499, 500)    # stopped after commit, before its own save
    assert not use_local_checkpoint(None, 500)   # a new instance: read the changelog
    assert use_local_checkpoint(None, None)      # nothing was ever committed
