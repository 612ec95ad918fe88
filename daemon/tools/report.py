"""``gumbeld report SNAPSHOTS.jsonl --out DIR``: the pictures of a recorded run.

From the JSON lines gumbeld wrote (``sinks.jsonl_path``, or stdout saved to a file), for the keys
given with ``--keys`` (default: the ``--top`` 10 with the most events):

- ``<key>-bars.png``: learned vs empirical probability per category, in the key's last snapshot
  (the title says the event time it is as of);
- ``<key>-heatmap.png``: learned − empirical per category (rows) over the key's snapshots (one
  column per publish time), the picture of where the error sits and how it closes;
- ``tv.png``: TV(learned, empirical) of each key over time; ``temperature.png``: τ over time;
- ``report.html``: one self-contained page with all of them (images inline).

Eviction records are skipped; lines that are not snapshots of the contract are counted and said.
Figures are drawn with matplotlib's Agg canvas (no display needed).
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from .client import Snapshot

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError:  # the `report` extra
    Figure = None


def read_snapshots(lines: Iterable[bytes | str]) -> tuple[dict[str, list[Snapshot]], int]:
    """Each key's snapshots in file order, and the number of lines that were neither snapshots nor evictions."""
    history: dict[str, list[Snapshot]] = {}
    bad = 0
    for line in lines:
        if not line.strip() or b'"evicted"' in (line if isinstance(line, bytes) else line.encode()):
            continue
        try:
            snapshot = Snapshot.model_validate_json(line)
        except ValidationError:
            bad += 1
            continue
        history.setdefault(snapshot.key, []).append(snapshot)
    return history, bad


def bars_figure(snapshot: Snapshot) -> "Figure":
    figure = Figure(figsize=(max(4.0, 0.5 * len(snapshot.categories) + 2), 3.2))
    axes = figure.subplots()
    x, width = np.arange(len(snapshot.categories)), 0.4
    intervals = snapshot.intervals
    # error bars: each category's posterior interval, around the learned probability
    error = None if intervals is None else np.clip(
        [np.subtract(snapshot.probabilities, intervals.lower), np.subtract(intervals.upper, snapshot.probabilities)], 0, None)
    axes.bar(x - width / 2, snapshot.probabilities, width, yerr=error, capsize=2,
             label="learned" if intervals is None else f"learned, {intervals.level:.0%} interval")
    axes.bar(x + width / 2, snapshot.empirical, width, label="empirical")
    axes.set_xticks(x, snapshot.categories, rotation=45 if len(snapshot.categories) > 12 else 0)
    axes.set_ylabel("probability")
    as_of = "" if snapshot.as_of is None else f", as of {snapshot.as_of:%Y-%m-%d %H:%M:%S} UTC"
    axes.set_title(f"{snapshot.key}: {snapshot.events:,} events, TV {snapshot.divergence.tv:.4f}{as_of}")
    axes.legend()
    figure.tight_layout()
    return figure


def heatmap_figure(snapshots: list[Snapshot]) -> "Figure":
    """learned − empirical, ``[categories, publishes]``, symmetric colour scale around 0."""
    error = np.array([np.subtract(s.probabilities, s.empirical) for s in snapshots]).T
    limit = float(np.abs(error).max()) or 1e-9
    categories = snapshots[-1].categories
    figure = Figure(figsize=(7.0, max(2.5, 0.25 * len(categories) + 1.5)))
    axes = figure.subplots()
    image = axes.imshow(error, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    axes.set_yticks(np.arange(len(categories)), categories)
    times = [s.published_at for s in snapshots]
    ticks = np.unique(np.linspace(0, len(times) - 1, min(6, len(times))).round().astype(int))
    axes.set_xticks(ticks, [times[i].strftime("%H:%M:%S") for i in ticks])
    axes.set_xlabel("published at (UTC)")
    axes.set_title(f"{snapshots[-1].key}: learned − empirical")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    return figure


def series_figure(history: dict[str, list[Snapshot]], value, label: str, *, log: bool = False) -> "Figure":
    figure = Figure(figsize=(7.0, 3.2))
    axes = figure.subplots()
    for key, snapshots in history.items():
        axes.plot([s.published_at for s in snapshots], [value(s) for s in snapshots], label=key)
    if log:
        axes.set_yscale("log")
    axes.set_ylabel(label)
    axes.set_xlabel("published at (UTC)")
    if len(history) <= 10:
        axes.legend(fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def _png(figure: "Figure") -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _file_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)[:100] or "_"


def write_report(history: dict[str, list[Snapshot]], out: Path, keys: list[str]) -> list[Path]:
    """Write the PNG files and ``report.html`` for ``keys``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = {key: history[key] for key in keys}
    images = {"tv.png": series_figure(chosen, lambda s: max(s.divergence.tv, 1e-6), "TV(learned, empirical)", log=True),
              "temperature.png": series_figure({"τ": max(history.values(), key=len)}, lambda s: s.temperature, "temperature τ")}
    for key, snapshots in chosen.items():
        images[f"{_file_name(key)}-bars.png"] = bars_figure(snapshots[-1])
        images[f"{_file_name(key)}-heatmap.png"] = heatmap_figure(snapshots)
    written, sections = [], []
    for name, figure in images.items():
        data = _png(figure)
        (out / name).write_bytes(data)
        written.append(out / name)
        sections.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
                        f'{base64.b64encode(data).decode()}"><figcaption>{html.escape(name)}</figcaption></figure>')
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{s[-1].events:,}</td><td>{s[-1].version}</td>"
                   f"<td>{s[-1].divergence.tv:.4f}</td><td>{len(s)}</td></tr>" for k, s in chosen.items())
    page = (f"<!doctype html><meta charset=utf-8><title>gumbeld report</title><h1>gumbeld report</h1>"
            f"<table><tr><th>key</th><th>events</th><th>version</th><th>TV</th><th>snapshots</th></tr>{rows}</table>"
            + "".join(sections))
    (out / "report.html").write_text(page, encoding="utf-8")
    return written + [out / "report.html"]


def main(argv: list[str] | None = None) -> int:
    """``gumbeld report``; returns the exit code (2: a usage error, said on stderr)."""
    try:
        return _report(argv)
    except SystemExit as exit_:  # argparse's way out: --help, usage errors
        return exit_.code if isinstance(exit_.code, int) else 2


def _report(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="gumbeld report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshots", type=Path, help="JSON-lines file of snapshots")
    parser.add_argument("--out", type=Path, required=True, help="directory for the PNG files and report.html")
    parser.add_argument("--keys", type=lambda text: [k for k in text.split(",") if k],
                        help="comma-separated keys (default: the --top keys by events)")
    parser.add_argument("--top", type=int, default=10, help="keys when --keys is not given (default 10)")
    args = parser.parse_args(argv)
    if Figure is None:
        parser.error("gumbeld report needs matplotlib: pip install 'gumbeld[report]'")
    try:
        with open(args.snapshots, "rb") as file:
            history, bad = read_snapshots(file)
    except OSError as error:
        parser.error(f"cannot read {args.snapshots}: {error.strerror or error}")
    if not history:
        parser.error(f"no snapshots in {args.snapshots}")
    unknown = [k for k in args.keys or [] if k not in history]
    if unknown:
        parser.error(f"no snapshots of {', '.join(unknown)} in {args.snapshots}")
    keys = args.keys or sorted(history, key=lambda k: -history[k][-1].events)[: max(1, args.top)]
    written = write_report(history, args.out, keys)
    print(f"{len(written)} files in {args.out} for {len(keys)} keys"
          + (f"; {bad} lines were not snapshots and were skipped" if bad else ""))
    return 0
