"""``gumbeld bench restore`` at a size the suite can afford, on the session's broker."""
import json

from daemon.tools.bench.restore import main


def test_bench_restore_restores_every_key_once_and_reports_its_rate(kafka_broker, tmp_path, capsys):
    assert main(["--bootstrap-servers", kafka_broker.bootstrap, "--keys", "400", "--categories", "5",
                 "--rounds", "2", "--json", str(tmp_path / "restore.json")]) == 0
    report = json.loads((tmp_path / "restore.json").read_text())
    assert report["records_on_partition"] == 800  # each key written twice: the older rows are passed over
    assert [r["rows"] for r in report["rounds"]] == [400, 400]
    assert all(r["refused"] == 0 for r in report["rounds"])
    assert report["row_bytes"] == 40 + 16 * 5 + 5 + 4 * (7 * 5 + 5)
    assert report["rows_per_second"] > 0 and "rows/s" in capsys.readouterr().out
