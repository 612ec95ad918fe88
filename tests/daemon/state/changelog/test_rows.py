"""State rows: exact round trips, and a clear refusal of anything else."""
import numpy as np
import pytest
import torch

from daemon.learning.key_rows import KeyRows
from daemon.state.changelog.rows import RowCodec, RowLayout, labels_fingerprint, row_dtype
from gumbel_models import GANConfig, GumbelGAN
from gumbel_models.histogram import NO_TIME
from gumbel_models.rows import ROW_FIELDS, read_rows, write_rows

LABELS = ["a", "b", "c", "d"]


def trained(dtype: str = "float32", n_keys: int = 3) -> GumbelGAN:
    model = GumbelGAN(GANConfig(n_categories=4, dtype=dtype, change_p_value=1e-3, change_window=500), n_keys)
    model.observe(torch.arange(n_keys * 4, dtype=torch.float64).reshape(n_keys, 4) + 1,
                  newest=1_700_000_000_000 + torch.arange(n_keys))
    model.step(20)
    return model


def _rows(state: dict) -> KeyRows:
    """Rows of keys over all of ``LABELS``, as the learner hands them over."""
    n = state["logits"].shape[0]
    return KeyRows(np.full(n, len(LABELS)), [LABELS] * n, {len(LABELS): state})


@pytest.mark.parametrize("dtype, value_bytes", [("float32", 4), ("float64", 8), ("bfloat16", 4)])
def test_rows_round_trip_bit_for_bit(dtype, value_bytes):
    model = trained(dtype)
    codec = RowCodec(LABELS, value_bytes=value_bytes)
    state = read_rows(model, torch.tensor([2, 0]))
    decoded = codec.decode(codec.encode(_rows(state), versions=[5, 9]))
    assert decoded.bad == [] and decoded.good == [0, 1] and decoded.versions.tolist() == [5, 9]
    restored = GumbelGAN(GANConfig(n_categories=4, dtype=dtype, change_p_value=1e-3, change_window=500), 2)
    write_rows(restored, torch.tensor([0, 1]), decoded.state.states[4])
    for field in ROW_FIELDS:
        assert torch.equal(read_rows(restored, torch.tensor([0, 1]))[field], state[field]), field


def test_a_row_is_its_layout_size_and_the_layout_is_fixed():
    codec = RowCodec(LABELS)
    value = codec.encode(_rows(read_rows(trained(), torch.tensor([1]))), versions=[1])[0]
    k, v = 4, 4  # header 40 B, histogram and window 2·8·K, mask K, model values V·(7K + 5)
    assert len(value) == row_dtype(k, v).itemsize == 40 + 16 * k + k + v * (7 * k + 5)
    assert value[:4] == b"GBRW" and int.from_bytes(value[4:6], "little") == 3
    assert int.from_bytes(value[32:40], "little") == 1_700_000_000_001  # the key's newest event time
    assert int.from_bytes(value[12:16], "little") == labels_fingerprint(LABELS)


def test_bad_rows_are_refused_each_with_why_and_the_good_ones_kept():
    codec = RowCodec(LABELS)
    good = codec.encode(_rows(read_rows(trained(), torch.arange(2))), versions=[1, 2])
    other_labels = RowCodec(["a", "b", "c", "x"]).encode(_rows(read_rows(trained(), torch.tensor([0]))), versions=[3])[0]
    wide = RowCodec(LABELS, value_bytes=8).encode(_rows(read_rows(trained("float64"), torch.tensor([0]))), versions=[4])[0]
    future = bytearray(good[0]); future[4:6] = (4).to_bytes(2, "little")
    values = [good[0], b"junk", other_labels, good[1][:-1], bytes(future), wide, b"XXXX" + good[1][4:], good[1]]
    decoded = codec.decode(values)
    assert decoded.good == [0, 7] and decoded.versions.tolist() == [1, 2]
    reasons = dict(decoded.bad)
    assert "too short" in reasons[1]
    assert "other categories" in reasons[2]
    assert "bytes, a row of format 3 over 4 categories has" in reasons[3]
    assert "row format 4" in reasons[4]
    assert "8-byte values" in reasons[5]
    assert "bad magic" in reasons[6]
    assert decoded.state.states[4]["counts"].shape == (2, 4)


def test_nothing_to_decode_gives_empty_rows():
    decoded = RowCodec(LABELS).decode([])
    assert decoded.good == [] and decoded.state.states[4]["logits"].shape == (0, 4) and decoded.versions.dtype == np.int64


def test_rows_written_before_keys_kept_their_event_time_are_read_without_one():
    state = read_rows(trained(), torch.arange(3))
    codec = RowCodec(LABELS)
    old = RowLayout(4, labels_fingerprint(LABELS), 4, row_format=1).encode(state, versions=[1, 2, 3])
    new = codec.encode(_rows(state), versions=[4, 5, 6])
    assert len(old[0]) == len(new[0]) - 8
    decoded = codec.decode([new[0], old[1], new[2], old[0]])   # formats mixed, in their order
    assert decoded.bad == [] and decoded.versions.tolist() == [4, 2, 6, 1]
    rows = decoded.state.states[4]
    assert rows["newest"].tolist() == [1_700_000_000_000, NO_TIME, 1_700_000_000_002, NO_TIME]
    assert torch.equal(rows["counts"], state["counts"][[0, 1, 2, 0]])
    assert torch.equal(rows["logits"], state["logits"][[0, 1, 2, 0]])
