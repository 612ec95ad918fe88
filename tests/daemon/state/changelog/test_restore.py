"""Restoring from record lists that look compacted: gaps, tombstones, rows ahead of the commit."""
from daemon.state.changelog.restore import Record, latest, use_local_checkpoint


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


def test_the_local_checkpoint_holds_when_it_got_as_far_as_the_commit():
    assert use_local_checkpoint(500, 500) and use_local_checkpoint(510, 500)
    assert not use_local_checkpoint(499, 500)    # stopped after commit, before its own save
    assert not use_local_checkpoint(None, 500)   # a new instance: read the changelog
    assert use_local_checkpoint(None, None)      # nothing was ever committed
