"""State rows of open categories: the row over the key's width and its labels, exact round trips,
refusals each with why, and labels mapped into the reader's own table."""
import numpy as np
import torch

from daemon.categories import CategoryTable
from daemon.learning.key_rows import KeyRows
from daemon.state.changelog.open_rows import OpenRowCodec
from daemon.state.changelog.rows import RowCodec
from gumbel_models import GANConfig, GumbelGAN
from gumbel_models.rows import ROW_FIELDS, read_rows


def _rows(supports: list[list[str]], width: int = 8) -> KeyRows:
    model = GumbelGAN(GANConfig(n_categories=width), len(supports))
    sizes = torch.tensor([len(s) for s in supports])
    model.set_mask(torch.arange(len(supports)), torch.arange(width) < sizes[:, None])
    counts = torch.zeros(len(supports), width, dtype=torch.float64)
    for i, s in enumerate(supports):
        counts[i, : len(s)] = torch.arange(1, len(s) + 1, dtype=torch.float64) * 10
    model.observe(counts)
    model.step(15)
    return KeyRows(np.full(len(supports), width), supports, {width: read_rows(model, torch.arange(len(supports)))})


def test_rows_of_several_widths_round_trip_bit_for_bit_in_their_order():
    narrow, wide = _rows([["a", "b"], ["ü", "c", "d"]]), _rows([[f"x{i}" for i in range(11)]], width=16)
    rows = KeyRows(np.array([8, 16, 8]), [narrow.supports[0], wide.supports[0], narrow.supports[1]],
                    {8: narrow.states[8], 16: wide.states[16]})
    codec = OpenRowCodec(CategoryTable(max_categories=100))
    values = codec.encode(rows, versions=[4, 5, 6])
    decoded = codec.decode(values)
    assert decoded.bad == [] and decoded.good == [0, 1, 2] and decoded.versions.tolist() == [4, 5, 6]
    assert decoded.state.widths.tolist() == [8, 16, 8] and decoded.state.supports == rows.supports
    for width in (8, 16):
        for field in ROW_FIELDS:
            assert torch.equal(decoded.state.states[width][field], rows.states[width][field]), (width, field)
    picked = decoded.state.select(np.array([2, 1]))
    assert picked.supports == [["ü", "c", "d"], rows.supports[1]]
    assert torch.equal(picked.states[8]["counts"], rows.states[8]["counts"][1:])


def test_bad_rows_are_refused_each_with_why_and_the_good_ones_kept():
    codec = OpenRowCodec(CategoryTable(max_categories=100))
    [good] = codec.encode(_rows([["a", "b"]]), versions=[1])
    state = read_rows(GumbelGAN(GANConfig(n_categories=2), 1), torch.tensor([0]))
    fixed = RowCodec(["a", "b"]).encode(KeyRows(np.array([2]), [["a", "b"]], {2: state}), [1])[0]
    odd = bytearray(good); odd[8:12] = (12).to_bytes(4, "little")
    fixed_size = len(good) - 4 * 3 - 2          # where the support begins
    oversized = bytearray(good); oversized[fixed_size:fixed_size + 4] = (9).to_bytes(4, "little")
    twice = codec.encode(KeyRows(np.array([8]), [["a", "a"]], _rows([["a", "b"]]).states), versions=[1])[0]
    not_utf8 = good[:-1] + b"\xff"
    values = [good, fixed, bytes(odd), good[:-1], bytes(oversized), twice, not_utf8, b"GB"]
    decoded = codec.decode(values)
    assert decoded.good == [0] and decoded.state.supports == [["a", "b"]]
    reasons = dict(decoded.bad)
    assert "row format 3 (fixed categories)" in reasons[1]
    assert "not a size class" in reasons[2]
    assert "bytes of labels" in reasons[3]
    assert "a support of 9 categories" in reasons[4]
    assert "twice" in reasons[5]
    assert "not UTF-8" in reasons[6]
    assert "too short" in reasons[7]
    # and a fixed-category reader refuses an open row, saying so
    assert "row format 4 (open categories)" in dict(RowCodec(["a", "b"]).decode([good]).bad)[0]


def test_labels_map_into_the_readers_table_and_rows_past_its_limit_are_refused():
    table = CategoryTable(max_categories=4)
    table.indices(["z", "b"])
    codec = OpenRowCodec(table)
    decoded = codec.decode(codec.encode(_rows([["a", "b"], ["c", "d", "e"], ["b", "z"]]), versions=[1, 2, 3]))
    local, refused = codec.localise(decoded.state)
    assert [p for p, _ in refused] == [1] and "do not fit" in refused[0][1]
    assert local.supports == [["a", "b"], ["b", "z"]] and table.labels[:3] == ["z", "b", "a"]
    assert local.categories[8][:, :2].tolist() == [[2, 1], [1, 0]] and (local.categories[8][:, 2:] == -1).all()


def test_with_the_other_policy_one_label_folds_into_other_and_a_key_with_two_is_refused():
    table = CategoryTable(max_categories=3, overflow="other")
    table.indices(["a", "b", "late"])   # the table is full: "late" went to __other__
    codec = OpenRowCodec(table)
    decoded = codec.decode(codec.encode(_rows([["a", "x"], ["x", "y", "b"], ["b", "a"]]), versions=[1, 2, 3]))
    local, refused = codec.localise(decoded.state)
    assert [p for p, _ in refused] == [1], "x and y would both be __other__: one column twice"
    assert table.labels == ["a", "b", "__other__"]
    assert local.supports == [["a", "x"], ["b", "a"]]
    assert local.categories[8][:, :2].tolist() == [[0, 2], [1, 0]]
