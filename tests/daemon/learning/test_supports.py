"""Per-key supports: columns, size classes, moves, releases and their checkpoint state."""
import numpy as np
import pytest

from daemon.learning.supports import Supports


def _place(supports, cells):
    rows, categories = (np.array(c, dtype=np.int64) for c in zip(*cells))
    order = np.lexsort((categories, rows))
    return supports.place(rows[order], categories[order], np.ones(len(rows))[order])


def test_a_new_category_takes_the_next_column_and_known_ones_keep_theirs():
    supports = Supports(smallest=4)
    _place(supports, [(0, 10), (0, 3)])
    placed = _place(supports, [(0, 3), (0, 7), (0, 10)])
    assert supports.support(0).tolist() == [3, 10, 7]           # 3 and 10 in one call: by index; then 7
    cells = placed.cells[4]
    assert cells.columns.tolist() == [0, 2, 1] and cells.rows.tolist() == [0, 0, 0]
    assert placed.grown[4].tolist() == [0] and placed.moves == []


def test_a_key_outgrowing_its_class_moves_with_its_support():
    supports = Supports(smallest=2)
    _place(supports, [(0, 1), (0, 2), (1, 5)])
    placed = _place(supports, [(0, 3), (0, 4), (0, 9)])        # 5 categories: width 8
    [move] = placed.moves
    assert (move.width, move.new_width) == (2, 8) and move.rows.tolist() == [0]
    assert supports.support(0).tolist() == [1, 2, 3, 4, 9]
    assert int(supports.width[0]) == 8 and supports.support(1).tolist() == [5]
    assert supports.classes[2].free == [0], "the old row is free for the next key"
    _place(supports, [(2, 6)])
    assert int(supports.row[2]) == 0 and int(supports.width[2]) == 2, "a new key reuses the freed row"


def test_released_keys_free_their_rows_and_memory_follows_the_supports():
    rng = np.random.default_rng(0)
    supports = Supports(smallest=8)
    sizes = rng.integers(1, 200, size=300)
    cells = [(key, c) for key, s in enumerate(sizes) for c in rng.choice(20_000, size=s, replace=False)]
    _place(supports, cells)
    assert [len(supports.support(k)) for k in range(300)] == sizes.tolist()
    used = sum(c.width * int((c.owner >= 0).sum()) for c in supports.classes.values())
    assert used <= 2 * sizes.sum() + 8 * 300, "padded supports: at most twice the categories seen (or the smallest class)"
    held = sum(c.width * len(c.owner) for c in supports.classes.values())  # what the classes' dense state holds
    assert held <= 2 * used, "rows held by the classes grow by half at most"
    freed = supports.release([0, 1, 2, 999])
    assert sum(len(rows) for rows in freed.values()) == 3
    assert supports.support(0).tolist() == [] and int(supports.width[1]) == 0


def test_state_round_trip():
    supports = Supports(smallest=2)
    _place(supports, [(0, 1), (0, 2), (0, 3), (1, 4)])
    supports.release([1])
    again = Supports()
    again.load_state_dict(supports.state_dict())
    assert again.support(0).tolist() == [1, 2, 3] and again.support(1).tolist() == []
    assert again.classes[2].free == supports.classes[2].free
    _place(again, [(0, 8)])
    assert again.support(0).tolist() == [1, 2, 3, 8]


def test_an_inconsistent_saved_class_is_refused():
    supports = Supports(smallest=2)
    _place(supports, [(0, 1)])
    state = supports.state_dict()
    state["classes"][0]["size"][0] = 5   # more than the class's width
    with pytest.raises(ValueError, match="inconsistent"):
        Supports().load_state_dict(state)
