"""The ``gumbeld`` command line: help, ``config``, ``run`` and ``bench`` dispatch, error reporting."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types

import pytest

from daemon.cli import main
from daemon.settings import GumbeldSettings
from tests.settings_tree import env_var, leaf_fields


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """The command reads the real environment; keep the developer's GUMBELD_* variables out."""
    for name in list(os.environ):
        if name.upper().startswith("GUMBELD_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake_service(monkeypatch):
    """Stands in for daemon.runner (run and serve); records the settings it was started with."""
    calls: list[GumbeldSettings] = []

    def run(settings: GumbeldSettings) -> int:
        calls.append(settings)
        logging.getLogger("daemon.service").info("started", extra={"key": "web"})
        return 7

    monkeypatch.setitem(sys.modules, "daemon.runner", types.SimpleNamespace(run=run, serve=run))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield calls
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def effective_settings(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_top_level_help_explains_the_command_and_how_settings_are_named(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Gumbel-softmax GAN" in out
    for text in ("run", "config", "bench", "--metrics.port", "GUMBELD_METRICS__PORT", "examples:"):
        assert text in out


def test_run_help_lists_every_setting_with_its_description_and_environment_variable(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    words = " ".join(out.split())  # help text is wrapped between words
    for name, field in leaf_fields().items():
        start = words.index(f" --{name} ")
        entry = words[start:words.index("]", words.index("[env: ", start)) + 1]  # the flag to its "[env: ...]"
        assert entry.count(" --") == 1, name
        heading = words.find(f" {name} options: ")  # an optional section: described atop its own options
        described = entry if heading < 0 else words[heading:start] + entry
        assert field.description and " ".join(field.description.split()) in described, name
        assert entry.endswith(f"[env: {env_var(name)}]"), name
    assert "--metrics.port int" in out and "--config PATH" in out


def test_config_prints_the_defaults_as_json(capsys):
    assert effective_settings(capsys, ["config"]) == GumbeldSettings().model_dump(mode="json")


def test_config_applies_flags_environment_and_file_in_order(capsys, monkeypatch, tmp_path):
    path = tmp_path / "gumbeld.toml"
    path.write_text('[metrics]\nport = 1001\nhost = "0.0.0.0"\n\n[log]\nlevel = "DEBUG"\n')
    monkeypatch.setenv("GUMBELD_METRICS__PORT", "1002")
    monkeypatch.setenv("GUMBELD_LOG__FORMAT", "json")
    shown = effective_settings(capsys, ["config", "--config", str(path), "--metrics.port", "1003",
                                        "--model.n_categories", "2",
                                        "--source.synthetic.keys", '{"web": {"probabilities": [0.5, 0.5]}}'])
    assert shown["metrics"] == {**shown["metrics"], "port": 1003, "host": "0.0.0.0"}
    assert shown["log"] == {"format": "json", "level": "DEBUG"}
    assert shown["source"]["synthetic"]["keys"] == {"web": {"probabilities": [0.5, 0.5], "drift": None}}


def test_config_file_may_come_from_the_environment(capsys, monkeypatch, tmp_path):
    path = tmp_path / "gumbeld.toml"
    path.write_text("publish_interval = 4.0\n")
    monkeypatch.setenv("GUMBELD_CONFIG", str(path))
    assert effective_settings(capsys, ["config"])["publish_interval"] == 4.0


def test_flags_accept_the_equals_form_and_booleans_as_true_or_false(capsys):
    shown = effective_settings(capsys, ["config", "--sinks.stdout=false", "--checkpoint.fresh_start", "true"])
    assert shown["sinks"]["stdout"] is False
    assert shown["checkpoint"]["fresh_start"] is True


@pytest.mark.parametrize("argv, expected", [
    (["run", "--metrics.port", "70000"], "metrics.port: Input should be less than or equal to 65535 (got 70000"),
    (["config", "--metrics.prot", "1"], "metrics.prot: unknown setting"),
    (["config", "--metrics.port=abc"], "metrics.port: Input should be a valid integer"),
    (["run", "--model.n_categories", "3"], "source.synthetic.keys.default: probabilities need 3 entries"),
    (["config", "--model.categories", '["a", "b"'], "model.categories: not valid JSON"),
    (["run", "--source.kafka.category_field", "/a~2b"], "source.kafka.category_field: '/a~2b' is not a JSON Pointer"),
])
def test_invalid_settings_exit_2_with_one_line_per_problem(capsys, fake_service, argv, expected):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == "gumbeld: invalid configuration:"
    assert lines[1].strip().startswith(expected)
    assert len(lines) == 2
    assert "Traceback" not in captured.err and captured.out == ""
    assert fake_service == []  # the daemon never started


def test_an_invalid_environment_variable_is_reported_by_the_command(capsys, monkeypatch):
    monkeypatch.setenv("GUMBELD_TRAINING__MAX_STEP_CELLS", "0")
    assert main(["config"]) == 2
    assert "training.max_step_cells: Input should be greater than or equal to 1" in capsys.readouterr().err


def test_a_missing_config_file_exits_2(capsys, tmp_path):
    assert main(["run", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml: no such file" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["frobnicate"], [], ["run", "stray"], ["run", "--metrics.port"], ["--bogus"]])
def test_usage_errors_exit_2_as_argparse_does(capsys, argv):
    assert main(argv) == 2
    assert "usage: gumbeld" in capsys.readouterr().err


def test_abbreviated_flags_are_not_guessed(capsys):
    assert main(["config", "--metrics.por", "1"]) == 2
    assert "metrics.por: unknown setting; did you mean metrics.port?" in capsys.readouterr().err


def test_run_starts_the_service_with_the_loaded_settings_and_returns_its_code(fake_service):
    assert main(["run", "--metrics.port", "9005", "--training.device", "cpu"]) == 7
    [settings] = fake_service
    assert isinstance(settings, GumbeldSettings)
    assert (settings.metrics.port, settings.training.device) == (9005, "cpu")


def test_run_logs_json_lines_to_stderr_when_asked(capsys, fake_service):
    assert main(["run", "--log.format", "json"]) == 7
    captured = capsys.readouterr()
    record = json.loads(captured.err.strip().splitlines()[-1])
    assert {k: record[k] for k in ("level", "logger", "message", "key")} == {
        "level": "INFO", "logger": "daemon.service", "message": "started", "key": "web"}
    assert record["time"].endswith("Z") and "T" in record["time"]
    assert captured.out == ""  # stdout belongs to the snapshot sink


def test_run_logs_text_lines_by_default(capsys, fake_service):
    assert main(["run", "--log.level", "WARNING"]) == 7
    assert "started" not in capsys.readouterr().err  # below the configured level
    assert main(["run"]) == 7
    assert capsys.readouterr().err.rstrip().endswith("INFO daemon.service: started key=web")


def test_bench_passes_its_arguments_through_untouched(monkeypatch):
    received: list[list[str]] = []
    fake = types.SimpleNamespace(main=lambda args: received.append(args) or 3)
    monkeypatch.setitem(sys.modules, "daemon.tools.bench.convergence", fake)
    argv = ["--json", "out.json", "--scenarios", "stationary,drift", "--help"]
    assert main(["bench", "convergence", *argv]) == 3
    assert received == [argv]


def test_python_dash_m_daemon_reports_invalid_settings_without_a_traceback():
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GUMBELD_")}
    result = subprocess.run([sys.executable, "-m", "daemon", "run", "--metrics.port", "70000"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("gumbeld: invalid configuration:\n")
    assert "metrics.port: Input should be less than or equal to 65535" in result.stderr
    assert "Traceback" not in result.stderr
