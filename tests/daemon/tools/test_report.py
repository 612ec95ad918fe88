"""gumbeld report: the figures hold what they claim (labels, one heatmap column per publish), and the page holds them."""

import numpy as np
from matplotlib.container import BarContainer
import orjson

from daemon.cli import main as gumbeld
from daemon.snapshots import Eviction, Publication, SnapshotBatch
from tests.daemon.snapshot_intervals import interval_fields
from daemon.tools.client import Snapshot
from daemon.tools.report import bars_figure, heatmap_figure, read_snapshots

LABELS = ["red", "green", "blue"]


def _lines(keys=("a", "b"), publishes: int = 5) -> list[bytes]:
    rng, lines = np.random.default_rng(0), []
    for t in range(publishes):
        n = len(keys)
        empirical, events = rng.dirichlet(np.ones(3), n), np.array([100 * (t + 1) * (i + 1) for i in range(n)])
        batch = SnapshotBatch(list(keys), [LABELS] * len(keys), rng.dirichlet(np.ones(3), n), empirical,
                              np.full(n, 0.1), np.full(n, 0.01), np.full(n, 0.005), 1.5 - 0.1 * t, np.full(n, 10 * t),
                              events, np.full(n, t + 1), f"2026-11-28T10:00:{t:02d}.000Z",
                              **interval_fields(empirical, events), as_of=np.full(n, 1_796_637_000_000 + 1000 * t))
        lines += Publication(batch).encode().lines
    return lines


def test_the_bars_carry_the_category_labels_both_distributions_and_the_intervals():
    snapshot = Snapshot.model_validate_json(_lines()[-1])
    axes = bars_figure(snapshot).axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == LABELS
    assert axes.get_title().endswith("as of 2026-12-07 09:50:04 UTC")  # the key's watermark
    learned, empirical = (c for c in axes.containers if isinstance(c, BarContainer))
    assert np.allclose([b.get_height() for b in learned], snapshot.probabilities)
    assert np.allclose([b.get_height() for b in empirical], snapshot.empirical)
    # the learned bars' error bars span each category's interval (clipped to hold the bar's top)
    segments = learned.errorbar.lines[2][0].get_segments()
    lower = np.minimum(snapshot.intervals.lower, snapshot.probabilities)
    upper = np.maximum(snapshot.intervals.upper, snapshot.probabilities)
    assert np.allclose([(s[0][1], s[1][1]) for s in segments], np.column_stack([lower, upper]), atol=1e-6)


def test_the_heatmap_has_a_row_per_category_and_a_column_per_publish():
    history, bad = read_snapshots(_lines(publishes=7))
    assert bad == 0 and len(history["a"]) == 7
    axes = heatmap_figure(history["a"]).axes[0]
    image = axes.get_images()[0].get_array()
    assert image.shape == (3, 7)
    assert [t.get_text() for t in axes.get_yticklabels()] == LABELS
    expected = np.subtract(history["a"][2].probabilities, history["a"][2].empirical)
    assert np.allclose(image[:, 2], expected)


def test_report_writes_every_figure_and_one_page_holding_them(tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    eviction = orjson.dumps(Eviction("gone", "ttl", "2026-11-28T10:00:09.000Z").record())
    path.write_bytes(b"\n".join(_lines() + [eviction, b"not json"]) + b"\n")
    assert gumbeld(["report", str(path), "--out", str(tmp_path / "out"), "--top", "1"]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    # --top 1: the key with the most events is b
    assert files == ["b-bars.png", "b-heatmap.png", "report.html", "temperature.png", "tv.png"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and ">b<" in page
    assert "1 lines were not snapshots" in capsys.readouterr().out


def test_unknown_keys_and_empty_files_are_usage_errors(tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"\n".join(_lines()) + b"\n")
    assert gumbeld(["report", str(path), "--out", str(tmp_path / "o"), "--keys", "a,zz"]) == 2
    assert "no snapshots of zz" in capsys.readouterr().err
    (tmp_path / "empty.jsonl").write_text("")
    assert gumbeld(["report", str(tmp_path / "empty.jsonl"), "--out", str(tmp_path / "o")]) == 2
