"""``gumbeld bench scale``: its snapshot reader, and a smoke run of the real service at tiny scale."""
import json

import orjson
import pytest

from daemon.tools.bench.scale import REQUIRED, main
from daemon.tools.bench.scale_catchup import CATCH_UP_REQUIRED
from daemon.tools.bench.scale_probe import LAG_BUCKET, finite, lag_worst
from daemon.tools.bench.scale_snapshots import SnapshotReader, parse_rfc3339

RATE = 20_000


def _snapshot(key: str, tv: float, events: int, published_at: str) -> bytes:
    return orjson.dumps({"key": key, "categories": ["0", "1"], "probabilities": [0.5, 0.5], "empirical": [0.5, 0.5],
                         "divergence": {"tv": tv, "kl": 0.0, "js": 0.0}, "temperature": 1.0, "step": 1,
                         "events": events, "published_at": published_at, "model": "m", "version": 1}) + b"\n"


def test_snapshot_reader_follows_the_file_keeping_the_latest_snapshot_per_key(tmp_path):
    path = tmp_path / "snapshots.jsonl"
    reader = SnapshotReader(path)
    reader.poll()  # no file yet
    first = _snapshot("a", 0.5, 50, "2024-01-01T00:00:00.000Z") + _snapshot("b", 0.2, 500, "2024-01-01T00:00:00.000Z")
    second = _snapshot("a", 0.1, 150, "2024-01-01T00:00:01.000Z")
    path.write_bytes(first + second[:20])  # the second publish is half written
    reader.poll()
    assert reader.latest == {"a": (0.5, 50), "b": (0.2, 500)} and reader.lines == 2
    with open(path, "ab") as file:
        file.write(second[20:] + b'{"key": "b", "evicted": true}\n')
        file.write(_snapshot("c", 0.3, 100, "2024-01-01T00:00:02.500Z"))
    reader.poll()
    assert reader.latest == {"a": (0.1, 150), "c": (0.3, 100)}  # b was evicted
    assert reader.tv_percentiles(100) == (pytest.approx(0.2), pytest.approx(0.298), 2)
    start, end = parse_rfc3339("2024-01-01T00:00:00Z"), parse_rfc3339("2024-01-01T00:00:02.5Z")
    assert reader.publish_gaps(start, end) == [pytest.approx(1.0), pytest.approx(1.5)]
    assert reader.publish_gaps(start + 0.5, end) == [pytest.approx(1.5)]


def test_smoke_run_reports_every_field(tmp_path):
    """300 keys, 3 s of events at 20,000/s, settled TV 3 s later; under a minute.

    Needs ``source.synthetic.generated_keys`` / ``events`` wired into the running service.
    """
    out = tmp_path / "scale.json"
    code = main(["--keys", "300", "--baseline-keys", "", "--rate", str(RATE), "--stream-seconds", "3",
                 "--settle-seconds", "3", "--max-settle-wait", "30", "--sample-seconds", "0.5",
                 "--startup-timeout", "60", "--shutdown-timeout", "30", "--keep", str(tmp_path / "runs"),
                 "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1
    (run,) = report["runs"]
    assert "error" not in run, run["error"]
    assert code == 0
    assert [field for field in REQUIRED if field not in run] == []
    assert run["mode"] == "active" and run["keys"] == 300
    assert run["stream_stopped"] is True, run["notes"]
    assert run["exit_code"] == 0 and run["final_checkpoint"] is True
    # a 3 s stream paced by deadline: the 1-2 s between interior samples vary; ±50 %
    assert run["events_total"] == RATE * 3
    assert run["events_per_second"] == pytest.approx(RATE, rel=0.5)
    assert run["keys_published"] > 0
    assert run["loop_lag_max_s"] >= run["loop_lag_p99_s"] and run["livez_max_s"] >= run["livez_p99_s"]
    for field in ("steps_per_second", "tv_p50_settled", "tv_p99_settled", "loop_lag_p99_s", "livez_p99_s", "rss_mib",
                  "state_bytes_per_key", "rss_bytes_per_key", "shutdown_seconds"):
        assert run[field] is not None, field


def test_the_worst_loop_lag_is_the_bound_of_the_highest_bucket_reached():
    first = {f"{LAG_BUCKET}:{b}": n for b, n in (("0.01", 5.0), ("0.05", 5.0), ("0.1", 5.0), ("+Inf", 5.0))}
    last = {f"{LAG_BUCKET}:{b}": n for b, n in (("0.01", 90.0), ("0.05", 99.0), ("0.1", 100.0), ("+Inf", 100.0))}
    assert lag_worst(first, last) == 0.1                     # one probe between 0.05 and 0.1 s late
    assert lag_worst(first, {**last, f"{LAG_BUCKET}:0.1": 99.0, f"{LAG_BUCKET}:+Inf": 99.0}) == 0.05
    assert lag_worst(last, last) is None                     # no probe in between
    notes = []
    assert finite(lag_worst(first, {**last, f"{LAG_BUCKET}:+Inf": 101.0}), notes) is None and notes


def test_catch_up_run_reports_every_field(kafka_broker, tmp_path):
    """300 keys, 20,000 events in the topic before gumbeld starts; a few seconds after the catch-up."""
    out = tmp_path / "catch-up.json"
    code = main(["--catch-up", "--keys", "300", "--backlog", "20000", "--partitions", "2", "--after-seconds", "2",
                 "--bootstrap-servers", kafka_broker.bootstrap, "--startup-timeout", "60", "--shutdown-timeout", "30",
                 "--keep", str(tmp_path / "runs"), "--json", str(out)])
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    assert "error" not in run, run["error"]
    assert code == 0
    assert [field for field in CATCH_UP_REQUIRED if field not in run] == []
    assert (run["mode"], run["keys"], run["backlog"], run["exit_code"]) == ("catch_up", 300, 20_000, 0)
    assert run["catch_up_seconds"] > 0 and run["catch_up_events_per_second"] > 0
    assert 0 <= run["loop_lag_p99_s"] <= run["loop_lag_max_s"] and run["livez_probes"] > 0
    assert 0 <= run["livez_p99_s"] <= run["livez_max_s"]
    assert run["after_loop_lag_max_s"] is not None and run["after_livez_max_s"] is not None
    assert len(report["machine"]["load_average"]) == 3 and len(report["load_average_at_end"]) == 3
