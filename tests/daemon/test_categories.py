import re

import pytest

from daemon.categories import OTHER, CategoryTable, label_of
from daemon.config import ConfigError, load_settings


def test_labels_keep_their_order_of_appearance_and_their_indices():
    table = CategoryTable(max_categories=10)
    first = table.indices(["c", "a", "c", "b"]).tolist()
    second = table.indices(["b", "d", "a"]).tolist()
    assert first == [0, 1, 0, 2] and second == [2, 3, 1]
    assert table.labels == ["c", "a", "b", "d"]


def test_integer_categories_are_their_decimal_labels():
    table = CategoryTable(max_categories=10)
    assert table.indices([3, "3", 12, 0]).tolist() == [0, 0, 1, 2]
    assert table.labels == ["3", "12", "0"]


@pytest.mark.parametrize("bad", [True, 1.5, None, ["a"]])
def test_a_category_is_a_string_or_an_integer(bad):
    with pytest.raises(TypeError, match="string or an integer"):
        label_of(bad)


def test_dead_letter_refuses_new_labels_past_the_limit_and_counts_them():
    table = CategoryTable(max_categories=2, overflow="dead_letter")
    assert table.indices(["x", "y", "z", "x", "w"]).tolist() == [0, 1, -1, 0, -1]
    assert table.labels == ["x", "y"] and table.refused == 2 and table.folded == 0


def test_other_folds_new_labels_into_the_last_place():
    table = CategoryTable(max_categories=3, overflow="other")
    assert table.indices(["x", "y", "z", "w", "y"]).tolist() == [0, 1, 2, 2, 1]
    assert table.labels == ["x", "y", OTHER] and len(table) == 3 and table.folded == 2


def test_other_named_by_the_stream_takes_the_kept_place():
    table = CategoryTable(max_categories=3, overflow="other")
    assert table.indices([OTHER, "x", "y", "z"]).tolist() == [0, 1, 2, 0]
    assert table.labels == [OTHER, "x", "y"] and table.folded == 1


def test_other_is_an_ordinary_label_when_refusing():
    table = CategoryTable(max_categories=2, overflow="dead_letter")
    assert table.indices([OTHER, "x", "y"]).tolist() == [0, 1, -1]


def test_state_round_trip_keeps_indices_and_counters():
    table = CategoryTable(max_categories=3, overflow="other")
    table.indices(["a", "b", "c", "d"])
    restored = CategoryTable(max_categories=3, overflow="other")
    restored.load_state_dict(table.state_dict())
    assert restored.labels == table.labels and restored.folded == table.folded
    assert restored.indices(["b", "e", "a"]).tolist() == [1, 2, 0]


def test_a_saved_table_larger_than_the_limit_is_refused():
    table = CategoryTable(max_categories=5)
    table.indices(["a", "b", "c"])
    with pytest.raises(ValueError, match="does not fit max_categories = 2"):
        CategoryTable(max_categories=2).load_state_dict(table.state_dict())


@pytest.mark.parametrize("name, value, message", [
    ("model.max_categories", "1", "model.max_categories: Input should be greater than or equal to 2"),
    ("model.category_overflow", "drop", "model.category_overflow: Input should be 'dead_letter' or 'other'"),
])
def test_the_settings_the_table_trusts_are_checked_as_they_load(name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"model.categories": "open", name: value}, env={})
