"""The ``gumbeld`` command: ``run`` the daemon, ``serve`` what it published, show the effective ``config``, ``bench``, and the
commands that own all their options (``produce``, ``report``, ``watch``)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from daemon.config import ConfigError, add_setting_flags, load_settings
from daemon.version import package_version as _version

DESCRIPTION = """\
gumbeld reads a stream of categorical events (one category per event, grouped by key), learns
each key's distribution over the categories with a Gumbel-softmax GAN, and publishes the learned
distributions as snapshots (stdout, a JSON-lines file) and Prometheus metrics.
"""

SETTINGS_HELP = """\
settings:
  Every setting has one dotted name, e.g. metrics.port. Set it in a TOML file ([metrics] port = 9000),
  in the environment (GUMBELD_METRICS__PORT=9000) or on the command line (--metrics.port 9000).
  The command line wins over the environment, which wins over the file, which wins over the
  defaults. The file is --config PATH or $GUMBELD_CONFIG. List and dict settings take JSON (flags:
  lists also a,b,c); booleans take true or false. 'gumbeld run --help' lists every setting.
"""

EXAMPLES = """\
examples:
  gumbeld run                                  learn the built-in synthetic stream, metrics on :9464
  gumbeld run --config gumbeld.toml --metrics.port 9000
  GUMBELD_LOG__FORMAT=json gumbeld run --model.n_categories 5
  gumbeld run --source.synthetic.keys '{"web": {"probabilities": [0.7, 0.2, 0.1]}}' --model.n_categories 3
  gumbeld serve --sinks.kafka.topic learned-distributions --source.kafka.bootstrap_servers broker:9092
  gumbeld config --config gumbeld.toml         print the settings a run would use, as JSON
  gumbeld bench convergence --help             options of the convergence benchmark
  gumbeld produce --bootstrap-servers localhost:9092 --topic events --rate 10000
  gumbeld report snapshots.jsonl --out report/  pictures of a run recorded with --sinks.jsonl_path
  gumbeld watch --bootstrap-servers localhost:9092 --topic learned-distributions
  gumbeld run | gumbeld watch -                live view of the learned distributions in the terminal
"""

EXIT_INVALID_CONFIG = 2
PASSED_ON = {  # commands whose arguments all go to a module's main(), as bench's do
             "produce": ("daemon.tools.produce", "write synthetic events to a Kafka topic (load generator)"),
             "report": ("daemon.tools.report", "draw the pictures of a recorded run (PNG files and one HTML page)"),
             "watch": ("daemon.tools.watch.command", "a live terminal view of the learned distributions (topic or JSON lines)")}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gumbeld`` and ``python -m daemon``; returns the process exit code."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if args.command in ("run", "serve", "config"):
            flags = {k: v for k, v in vars(args).items() if k not in ("command", "config")} | _unknown_flags(extras, parser)
        elif extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 2

    if args.command in ("bench", *PASSED_ON):
        from importlib import import_module
        module = f"daemon.tools.bench.{args.benchmark}" if args.command == "bench" else PASSED_ON[args.command][0]
        return import_module(module).main(list(args.args))

    try:
        settings = load_settings(flags, config_file=args.config)
    except ConfigError as error:
        print("gumbeld: invalid configuration:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID_CONFIG

    if args.command == "config":
        try:
            print(json.dumps(settings.model_dump(mode="json"), indent=2), flush=True)
        except BrokenPipeError:  # e.g. `gumbeld config | head`; the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

    from daemon.logs import configure_logging
    from daemon.runner import run, serve

    configure_logging(settings.log)
    return run(settings) if args.command == "run" else serve(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gumbeld", description=DESCRIPTION, epilog=SETTINGS_HELP + "\n" + EXAMPLES,
        formatter_class=_HelpFormatter, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the daemon until SIGINT or SIGTERM", usage="gumbeld run [--config PATH] [--SETTING VALUE ...]",
        description="Run the daemon until SIGINT or SIGTERM, or until the reader of its stdout quits. "
        "Each option below overrides one setting; see 'gumbeld --help' for the other ways to set them.",
        epilog=EXAMPLES, formatter_class=_HelpFormatter, allow_abbrev=False)
    serve = commands.add_parser(
        "serve", help="serve /v1 for every key of the learned-distribution topic (stateless; run many)",
        usage="gumbeld serve [--config PATH] [--SETTING VALUE ...]",
        description="Read sinks.kafka.topic from its start (through source.kafka's connection), keep the latest "
        "snapshot of each key, and serve /v1, /livez, /readyz and /metrics on metrics.host:metrics.port until "
        "SIGINT or SIGTERM. Ready once the topic is read to its end. Takes every option of 'gumbeld run'; "
        "it uses the api.*, metrics.*, log.*, source.kafka.* and sinks.kafka.topic settings.",
        formatter_class=_HelpFormatter, allow_abbrev=False)
    config = commands.add_parser(
        "config", help="print the effective settings as JSON and exit",
        usage="gumbeld config [--config PATH] [--SETTING VALUE ...]",
        description="Print the settings 'gumbeld run' would use with the same options and environment, as JSON. "
        "Takes every option of 'gumbeld run'.", formatter_class=_HelpFormatter, allow_abbrev=False)
    for command in (run, serve, config):
        command.add_argument("--config", type=Path, metavar="PATH", help="TOML settings file (default: $GUMBELD_CONFIG)")
        add_setting_flags(command)

    bench = commands.add_parser(
        "bench", help="run a benchmark", description="Run a benchmark. Everything after its name goes to "
        "the benchmark itself: 'gumbeld bench convergence --help' lists its options.")
    bench.add_argument("benchmark", choices=["convergence", "ablations", "ingest", "scale", "restore", "compression", "api"],
                       help="convergence: how fast and how closely the learned distributions converge; "
                       "ablations: what each learning default is worth, one change at a time; "
                       "ingest: Kafka consume, decode and count rates; "
                       "scale: the running service with 10,000s of keys (throughput, accuracy, settling, cost); "
                       "restore: rows restored per second from a state topic")
    bench.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="options of the benchmark")
    for name in PASSED_ON:  # every option after the name is theirs: none is this parser's
        text = PASSED_ON[name][1]
        command = commands.add_parser(name, help=text, add_help=False, prefix_chars="\0",
                                      description=f"{text.capitalize()}. 'gumbeld {name} --help' lists the options.")
        command.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help=f"options of gumbeld {name}")
    return parser


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps help text between words only: a long flag or variable name stays whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_long_words=False, break_on_hyphens=False)


def _unknown_flags(extras: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    """``--name VALUE`` and ``--name=VALUE`` not declared: kept, so the error names the setting."""
    unknown: dict[str, str] = {}
    waiting = None  # an unknown flag whose value is the next token
    for token in extras:
        if token.startswith("--") and token != "--":
            name, has_value, value = token[2:].partition("=")
            unknown[name], waiting = value, (None if has_value else name)
        elif waiting is not None:
            unknown[waiting], waiting = token, None
        else:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return unknown
