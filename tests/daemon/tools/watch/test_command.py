"""gumbeld watch's command line: its help, and bad arguments said in one line each (exit 2, no traceback)."""
import subprocess
import sys

import pytest

from daemon.cli import main as gumbeld


def test_gumbeld_lists_watch_and_watch_lists_its_options_and_keys(capsys):
    assert gumbeld(["--help"]) == 0
    assert "watch" in capsys.readouterr().out
    assert gumbeld(["watch", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("--bootstrap-servers", "--topic", "--url URL", "GUMBELD_API_TOKEN", "--top N", "--key PATTERN", "PgUp PgDn", "Esc cancels",
                 "gumbeld run | gumbeld watch -"):
        assert text in out, text


@pytest.mark.parametrize("args, message", [
    ([], "give one of a FILE (or - for standard input), --topic with --bootstrap-servers, or --url"),
    (["run.jsonl", "--topic", "t", "--bootstrap-servers", "b:9092"], "give one of a FILE"),
    (["--url", "http://h:9464", "--topic", "t"], "give one of a FILE"),
    (["--url", "h:9464"], "--url must start with http:// or https://, not 'h:9464'"),
    (["--url", "http://h:9464"], "the standard output is not a terminal"),
    (["--topic", "t"], "--topic needs --bootstrap-servers"),
    (["run.jsonl", "--bootstrap-servers", "b:9092"], "--bootstrap-servers goes with --topic"),
    (["--top", "0", "x"], "argument --top: must be a whole number of at least 1, not '0'"),
    (["--top", "many", "x"], "argument --top: must be a whole number of at least 1, not 'many'"),
    (["no-such-file.jsonl"], "cannot read no-such-file.jsonl: No such file or directory"),
    (["--topic", "t", "--bootstrap-servers", "b:9092"], "the standard output is not a terminal"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_arguments_are_usage_errors(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert gumbeld(["watch", *args]) == 2
    err = capsys.readouterr().err
    assert f"gumbeld watch: error: {message}" in err and "Traceback" not in err


def test_standard_input_from_a_terminal_is_refused_as_a_source(monkeypatch, capsys):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert gumbeld(["watch", "-"]) == 2
    assert "the standard input is a terminal: pipe snapshots in" in capsys.readouterr().err


def test_the_installed_command_says_the_error_without_a_traceback():
    done = subprocess.run([sys.executable, "-m", "daemon", "watch", "--topic", "t"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--topic needs --bootstrap-servers" in done.stderr
    assert "Traceback" not in done.stderr
