import numpy as np
import pytest

from daemon.config import ConfigError, load_settings
from daemon.learning.keys import KeyTable


def _check_consistent(table: KeyTable) -> None:
    """Every key has exactly one row, that row names it, and free rows name nobody."""
    rows = [table.row(name) for name in table.names]
    assert len(set(rows)) == len(rows) == len(table)
    for name in table.names:
        assert table.names_by_row[table.row(name)] == name
    assert len(table) <= table.max_keys


def test_least_recently_seen_key_is_evicted_and_seeing_a_key_makes_it_recent():
    table = KeyTable(max_keys=3)
    assert table.rows(["a", "b", "c"], now=1.0).tolist() == [0, 1, 2]
    table.rows(["a"], now=2.0)                     # order now b, c, a
    assert table.rows(["d"], now=3.0).tolist() == [1]  # b evicted, d takes its row
    assert table.take_evicted() == [("b", "max_keys")]
    table.rows(["c", "d"], now=4.0)                # order now a, c, d
    assert table.rows(["e"], now=5.0).tolist() == [0]
    assert table.take_evicted() == [("a", "max_keys")]
    assert table.rows(["f", "g"], now=6.0).tolist() == [2, 1]  # c then d go, in that order
    assert table.take_evicted() == [("c", "max_keys"), ("d", "max_keys")]
    assert table.names_by_row == ["e", "g", "f"]
    assert "b" not in table and "e" in table
    assert sorted(table.take_freed()) == [0, 1, 1, 2]  # every freeing, for the model to reset
    assert table.take_freed() == [] and table.take_evicted() == []
    _check_consistent(table)


def test_dead_letter_policy_refuses_new_keys_and_keeps_known_ones():
    table = KeyTable(max_keys=2, policy="dead_letter")
    assert table.rows(["a", "b", "c"], now=1.0).tolist() == [0, 1, -1]
    assert table.rows(["c", "b", "a", "d"], now=2.0).tolist() == [-1, 1, 0, -1]
    assert table.take_evicted() == [] and table.take_freed() == []
    assert table.names_by_row == ["a", "b"] and "c" not in table
    # room again after a removal: the next new key is admitted into the freed row
    table.remove(["a"], reason="ttl")
    assert table.rows(["d", "e"], now=3.0).tolist() == [0, -1]
    _check_consistent(table)


def test_an_unknown_policy_is_rejected_by_the_settings_the_table_trusts():
    with pytest.raises(ConfigError, match="model.max_keys_policy: Input should be 'evict_least_recent' or 'dead_letter'"):
        load_settings({"model.max_keys_policy": "drop"}, env={})


def test_keys_idle_past_the_ttl_expire_in_recency_order():
    table = KeyTable(max_keys=10)
    table.rows(["a", "b"], now=0.0)
    table.rows(["c"], now=4.0)
    table.rows(["a"], now=6.0)                     # a was seen again: not idle
    assert table.expire(now=9.0, ttl=5.0) == ["b"]  # idle 9 s > 5 s; c idle exactly 5 s stays
    assert table.take_evicted() == [("b", "ttl")]
    assert table.take_freed() == [1]
    assert table.expire(now=9.5, ttl=5.0) == ["c"]
    assert table.expire(now=9.5, ttl=5.0) == []
    assert table.names == ["a"]
    assert table.expire(now=100.0, ttl=5.0) == ["a"] and len(table) == 0
    assert table.take_evicted() == [("c", "ttl"), ("a", "ttl")]


def test_freed_rows_are_reused_before_the_table_grows():
    table = KeyTable(max_keys=100)
    table.rows([f"k{i}" for i in range(5)], now=0.0)
    assert table.remove(["k1", "k3", "unknown"]) == [1, 3]
    assert table.take_left() == [(1, "k1"), (3, "k3")] and table.take_left() == []
    assert table.take_evicted() == []              # a removal without a reason is not an eviction
    assert table.names_by_row == ["k0", None, "k2", None, "k4"] and table.names == ["k0", "k2", "k4"]
    rows = table.rows(["n1", "n2", "n3"], now=1.0).tolist()
    assert sorted(rows[:2]) == [1, 3] and rows[2] == 5
    assert table.n_rows == 6
    _check_consistent(table)


@pytest.mark.parametrize("seed", range(5))
def test_more_new_keys_in_one_batch_than_max_keys_never_share_a_row(seed):
    rng = np.random.default_rng(seed)
    table = KeyTable(max_keys=4)
    names_seen = [f"k{i}" for i in range(30)]
    for now in range(20):
        names = list(rng.choice(names_seen, size=int(rng.integers(1, 12)), replace=bool(now % 2)))
        rows = table.rows(names, now=float(now)).tolist()
        owner: dict[int, str] = {}
        for name, row in zip(names, rows):
            if row < 0:
                continue
            assert owner.setdefault(row, name) == name, f"row {row} given to {owner[row]} and {name}"
            assert table.names_by_row[row] == name  # the row still belongs to the key it was given to
        # a name's last occurrence is refused exactly when the batch's later keys evicted it
        last = dict(zip(names, rows))
        assert {n for n, r in last.items() if r < 0} == {n for n in names if n not in table}
        _check_consistent(table)
    assert table.n_rows == 4


def test_a_key_evicted_by_its_own_batch_is_refused_for_that_batch():
    table = KeyTable(max_keys=2)
    assert table.rows(["a", "b", "c"], now=0.0).tolist() == [-1, 1, 0]
    assert table.take_evicted() == [("a", "max_keys")]
    assert table.names_by_row == ["c", "b"]


def test_state_round_trip_keeps_rows_free_rows_recency_and_last_seen():
    table = KeyTable(max_keys=4)
    table.rows(["a", "b", "c", "d"], now=1.0)
    table.rows(["a"], now=5.0)
    table.remove(["c"], reason="ttl")
    state = table.state()
    assert state["names"] == ["a", "b", None, "d"]
    restored = KeyTable.from_state(state, max_keys=4, policy="evict_least_recent")
    again = restored.state()
    assert again["names"] == state["names"] and again["last_seen"][[0, 1, 3]].tolist() == [5.0, 1.0, 1.0]
    assert _recency(again) == _recency(state) == ["b", "d", "a"]
    assert restored.names_by_row == table.names_by_row and len(restored) == 3
    assert [restored.row(n) for n in "abd"] == [0, 1, 3]
    assert restored.rows(["e"], now=6.0).tolist() == [2]   # the free row is reused
    assert restored.take_evicted() == []
    assert restored.rows(["f"], now=7.0).tolist() == [1]   # full: b, the least recent, goes
    assert restored.take_evicted() == [("b", "max_keys")]
    assert restored.expire(now=8.0, ttl=4.0) == ["d"]      # d last seen at 1.0; a at 5.0 stays
    assert restored.n_rows == 4
    _check_consistent(restored)


def _recency(state: dict) -> list[str]:
    """The names of a :meth:`KeyTable.state`, least recently seen first."""
    order = state["seen_order"].tolist()
    return [name for _, name in sorted((order[row], name) for row, name in enumerate(state["names"]) if name)]


def test_the_state_is_arrays_copied_not_lists_built_per_key():
    # A checkpoint captures the table on the event loop: a list copy and two array copies, whatever the keys.
    table = KeyTable(max_keys=10)
    table.rows(["a", "b", "c"], now=1.0)
    state = table.state()
    assert [type(state[field]).__name__ for field in ("names", "last_seen", "seen_order")] == ["list", "Tensor", "Tensor"]
    table.rows(["a"], now=2.0)  # later sightings do not reach a state already taken
    assert state["last_seen"].tolist() == [1.0, 1.0, 1.0] and _recency(state) == ["a", "b", "c"]
    assert _recency(table.state()) == ["b", "c", "a"]


def test_the_older_state_naming_keys_in_recency_order_still_loads():
    state = {"names": ["a", "b", None, "d"], "last_seen": [5.0, 1.0, 0.0, 1.0], "recent": ["b", "d", "a"]}
    restored = KeyTable.from_state(state, max_keys=4, policy="evict_least_recent")
    assert _recency(restored.state()) == ["b", "d", "a"]
    assert restored.rows(["e"], now=6.0).tolist() == [2] and restored.rows(["f"], now=7.0).tolist() == [1]
    assert restored.take_evicted() == [("b", "max_keys")]
    _check_consistent(restored)


def test_state_round_trip_of_an_empty_table_and_a_dead_letter_table():
    empty = KeyTable.from_state(KeyTable(3).state(), max_keys=3, policy="dead_letter")
    assert empty.n_rows == 0 and empty.rows(["a", "b", "c", "d"], now=0.0).tolist() == [0, 1, 2, -1]


def test_old_state_a_plain_list_of_names():
    restored = KeyTable.from_state(["a", "b", "c"], max_keys=3, policy="evict_least_recent")
    assert restored.names == ["a", "b", "c"] and [restored.row(n) for n in "abc"] == [0, 1, 2]
    assert restored.rows(["b", "d"], now=1.0).tolist() == [1, 0]  # row order was the recency order
    assert restored.take_evicted() == [("a", "max_keys")]
    _check_consistent(restored)


def test_keys_restored_from_the_old_list_form_do_not_all_expire_at_once():
    # The old checkpoint has no last-seen times. Keys restored from it have been idle for an unknown
    # time, not since the epoch: with a TTL of an hour, a restart from an old checkpoint must not
    # evict every key at the first publish (the service's clock is time.time).
    now = 1_800_000_000.0
    restored = KeyTable.from_state(["a", "b"], max_keys=3, policy="evict_least_recent")
    assert restored.expire(now=now, ttl=3600.0) == []
    assert restored.expire(now=now + 3601.0, ttl=3600.0) == ["a", "b"]  # idle a whole TTL since
