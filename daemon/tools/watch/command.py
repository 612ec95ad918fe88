"""``gumbeld watch``: the command line, and the loop that redraws the screen while a source and the
keyboard change the state.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

from rich.console import Console
from rich.live import Live

from .keyboard import Keyboard
from .render import render
from .sources import follow_file, follow_server, follow_topic, read_pipe
from .state import WatchState

DESCRIPTION = """\
A live view of the learned distributions, redrawn in place: for each key shown, learned (█) vs
empirical (▒) probability per category, TV and KL between learned and the key's target (the
empirical, or with a pooled prior the empirical joined by it), events, version and the age of
the snapshot. The source is the learned-distribution topic (--bootstrap-servers, --topic), read
from its beginning; or the HTTP API of gumbeld run or gumbeld serve (--url), every key and then
its stream of updates; or a JSON-lines file of snapshots (sinks.jsonl_path, or stdout saved),
followed as tail -f does; - reads standard input: gumbeld run | gumbeld watch -

Shown: the --top N keys with the most events, or of those matching a --key pattern. Evicted keys
disappear; snapshots that break the contract are skipped and counted (malformed: N). When no
broker (or server) answers the status is 'disconnected' and the source is read again after a
backoff.
"""

KEYS_HELP = """\
keys:
  q                  quit (exit status 0; so do Ctrl-C and SIGTERM)
  ↑ ↓                scroll by one key
  PgUp PgDn          scroll by a page (--top keys); Home, End: first, last page
  /                  type a filter (a glob, or text the key must contain); Enter applies it,
                     Esc cancels; Esc then clears the applied filter

examples:
  gumbeld watch --bootstrap-servers broker:9092 --topic learned-distributions
  GUMBELD_API_TOKEN=... gumbeld watch --url http://gumbeld-serve:8080
  gumbeld watch run.jsonl --key 'shop-*' --key web
  gumbeld run | gumbeld watch -
"""

REDRAW = 0.5           # seconds between two redraws without keys pressed (ages move, data arrives)
STOP_TIMEOUT = 3.0     # seconds a source has to stop after q


def main(argv: list[str] | None = None) -> int:
    """``gumbeld watch``; returns the exit code (2: a usage error, 1: a failure, each said on stderr)."""
    try:
        return _watch(argv)
    except SystemExit as exit_:  # argparse's way out: --help, usage errors
        return exit_.code if isinstance(exit_.code, int) else 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gumbeld watch", description=DESCRIPTION, epilog=KEYS_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("file", nargs="?", metavar="FILE", help="JSON-lines file of snapshots; - for standard input")
    parser.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]", help="the Kafka brokers")
    parser.add_argument("--topic", help="the learned-distribution topic (sinks.kafka.topic)")
    parser.add_argument("--url", metavar="URL", help="a gumbeld's HTTP server (api.* settings), e.g. http://host:9464")
    parser.add_argument("--token", default=os.environ.get("GUMBELD_API_TOKEN"),
                        help="the bearer token of the API (api.token); default: $GUMBELD_API_TOKEN")
    parser.add_argument("--top", type=_positive, default=10, metavar="N", help="keys on one page (default 10)")
    parser.add_argument("--key", action="append", default=[], dest="keys", metavar="PATTERN",
                        help="show only keys matching this glob (fnmatch: * ? [...]); may be repeated")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _watch(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if sum(source is not None for source in (args.file, args.topic, args.url)) != 1:
        parser.error("give one of a FILE (or - for standard input), --topic with --bootstrap-servers, or --url")
    if args.url is not None and not args.url.startswith(("http://", "https://")):
        parser.error(f"--url must start with http:// or https://, not {args.url!r}")
    if args.topic is not None and not args.bootstrap_servers:
        parser.error("--topic needs --bootstrap-servers")
    if args.file is not None and args.bootstrap_servers:
        parser.error("--bootstrap-servers goes with --topic, not with a FILE")
    source, label = _source(parser, args)
    if not sys.stdout.isatty():
        parser.error("the standard output is not a terminal: gumbeld watch draws on one")
    state = WatchState(top=args.top, patterns=tuple(args.keys))
    try:
        return asyncio.run(watch(state, source, label=label))
    except KeyboardInterrupt:  # before the loop's own handler was in place
        return 0


def _source(parser: argparse.ArgumentParser, args) -> tuple[Callable[[WatchState], Awaitable[None]], str]:
    """The coroutine that feeds the state, and how the header names it; usage errors for bad files."""
    if args.url is not None:
        return (lambda state: follow_server(state, args.url, token=args.token)), f"server {args.url}"
    if args.topic is not None:
        return (lambda state: follow_topic(state, args.topic, args.bootstrap_servers),
                f"topic {args.topic} @ {args.bootstrap_servers}")
    if args.file == "-":
        if sys.stdin.isatty():
            parser.error("the standard input is a terminal: pipe snapshots in, e.g. gumbeld run | gumbeld watch -")
        fd = os.dup(sys.stdin.fileno())
        if stat.S_ISREG(os.fstat(fd).st_mode):  # `gumbeld watch - < run.jsonl`: followed as a file
            file = os.fdopen(fd, "rb")
            return (lambda state: follow_file(state, file)), "stdin"
        pipe = os.fdopen(fd, "rb", buffering=0)
        return (lambda state: read_pipe(state, pipe)), "stdin"
    try:
        file = open(args.file, "rb")
    except OSError as error:
        parser.error(f"cannot read {args.file}: {error.strerror or error}")
    return (lambda state: follow_file(state, file, path=args.file)), f"file {args.file}"


async def watch(state: WatchState, source: Callable[[WatchState], Awaitable[None]], *, label: str,
                console: Console | None = None, clock: Callable[[], float] = time.time,
                keyboard_path: str = "/dev/tty", redraw: float = REDRAW) -> int:
    """Draw ``state`` on ``console`` (full screen, in place) while ``source(state)`` feeds it and keys
    change it, until ``q`` (or SIGINT, SIGTERM, the terminal gone). ``clock``: Unix time, for ages.
    Returns the exit code; a source that fails ends the view with its error on stderr (1)."""
    console = console or Console()
    changed = asyncio.Event()

    def on_key(key: str) -> None:
        if key == "eof":
            state.quit = True
        else:
            state.press(key)
        changed.set()

    def quit_() -> None:
        state.quit = True
        changed.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, quit_)
    loop.add_signal_handler(signal.SIGWINCH, changed.set)  # the next draw takes the new size
    try:
        with contextlib.ExitStack() as stack:  # left in reverse: the screen first, the terminal's modes last
            try:
                stack.enter_context(Keyboard(on_key, path=keyboard_path))
            except OSError as error:
                print(f"gumbeld watch: cannot read keys from {keyboard_path}: {error.strerror or error}",
                      file=sys.stderr)
                return 2
            stack.enter_context(_quiet_logging())
            live = stack.enter_context(Live(console=console, screen=True, auto_refresh=False,
                                            redirect_stdout=False, redirect_stderr=False))
            feeding = asyncio.create_task(source(state))
            try:
                while not state.quit and not _failed(feeding):  # a source that ended (a pipe) stays on screen
                    live.update(render(state, now=clock(), source=label), refresh=True)
                    changed.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(changed.wait(), redraw)
            finally:
                feeding.cancel()
                await asyncio.wait({feeding}, timeout=STOP_TIMEOUT)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGWINCH):
            loop.remove_signal_handler(signum)
    if _failed(feeding):
        error = feeding.exception()
        print(f"gumbeld watch: {label}: {error.strerror if isinstance(error, OSError) and error.strerror else error}",
              file=sys.stderr)
        return 1
    return 0


def _failed(task: asyncio.Task) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """No log record reaches the terminal while it is drawn on: without a handler of their own,
    warnings of the Kafka client (a broker that went away) would be written over the screen."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
