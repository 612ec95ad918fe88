"""``gumbeld bench api`` at a size the suite can afford, on the session's broker, with wrk."""
import json

from daemon.tools.bench.api import TARGETS, main, verdicts
from daemon.tools.bench.api_load import script


def test_a_paced_script_hands_out_send_times_and_a_flat_out_one_has_no_delay():
    assert "delay = function" not in script(0.0, threads=2)
    assert "local interval, next_at = 4.0, nil" in script(500.0, threads=2)  # 2 threads at 250/s each


def test_verdicts_say_met_missed_or_unknown_for_each_target_of_each_phase():
    met = verdicts([{"phase": "serve alone, reads flat out", "requests_per_second": 4999.0},
                    {"phase": "serve alone, paced reads", "latency_p99_ms": 3.0, "non_2xx": None}])
    assert met == {"serve alone, reads flat out: requests_per_second >= 5000": False,
                   "serve alone, paced reads: latency_p99_ms <= 10": True,
                   "serve alone, paced reads: non_2xx <= 0": None}
    assert set(TARGETS["run, reads flat out"]) == {"loop_lag_p99_s", "tv_p99", "publish_interval_p99_s"}


def test_bench_api_reads_run_and_serve_and_run_paces_readers_flat_out(kafka_broker, tmp_path, capsys):
    code = main(["--bootstrap-servers", kafka_broker.bootstrap, "--keys", "300", "--rate", "3000",
                 "--categories", "4", "--warmup-seconds", "4", "--seconds", "3", "--connections", "8",
                 "--run-read-rate", "100", "--serve-read-rate", "300", "--json", str(tmp_path / "api.json")])
    report = json.loads((tmp_path / "api.json").read_text())
    assert code == 0, report.get("error")
    phases = {row["phase"]: row for row in report["phases"]}
    assert list(phases) == ["run, quiet", "run, paced reads", "run, reads flat out", "serve beside run, paced reads",
                            "serve beside run, reads flat out", "serve alone, paced reads", "serve alone, reads flat out"]
    assert report["keys_read"] > 0
    for name, row in phases.items():
        if name != "run, quiet":
            assert row["requests"] > 0 and row["non_2xx"] == 0 and row["errors"] == 0, row
    assert 80 <= phases["run, paced reads"]["requests_per_second"] <= 110      # wrk's pacing, ±20 %
    assert phases["run, reads flat out"]["requests_per_second"] <= 500 * 1.1    # run's own pacing (default 500/s)
    assert phases["run, quiet"]["events_per_second"] > 0 and "events_per_second" not in phases["serve alone, paced reads"]
    assert "serve alone, reads flat out" in capsys.readouterr().out
