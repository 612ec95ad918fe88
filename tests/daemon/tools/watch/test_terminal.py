"""gumbeld watch end to end, in a real terminal (tmux): against the test broker, a pipe, a followed file,
and a broker that is not there. What is drawn is read back from the pane; keys are typed into it."""
import re
import socket
import time

import pytest

from daemon.tools.watch.render import BAR_WIDTH, EMPIRICAL, LEARNED
from tests.daemon.tools.watch.snapshots import eviction_line, line
from tests.daemon.tools.watch.terminal import WIDTH, Pane
from tests.kafka_broker import create_topic, produce


@pytest.fixture
def pane(tmux, tmp_path):
    panes = []

    def start(*args, stdin=None):
        panes.append(Pane(tmux, tmp_path, *args, stdin=stdin))
        return panes[-1]

    yield start
    for each in panes:
        each.close()


def _row(text: str, key: str, label: str) -> str:
    """The row of ``label`` in the panel of ``key`` (the only panel on screen)."""
    assert re.search(rf"╭─ {re.escape(key)} ─", text), f"no panel of {key}:\n{text}"
    rows = [r for r in text.splitlines() if re.match(rf"│ {re.escape(label)} ", r)]
    assert len(rows) == 1, f"one row of {label!r} expected:\n{text}"
    return rows[0]


def _assert_bars(text: str, key: str, label: str, learned: float, empirical: float) -> None:
    row = _row(text, key, label)
    assert row.count(LEARNED) == round(learned * BAR_WIDTH) and row.count(EMPIRICAL) == round(empirical * BAR_WIDTH), row
    assert re.search(rf"{LEARNED}+\s+{learned:.1%}\s+{EMPIRICAL}+\s+{empirical:.1%}", row), row


async def test_the_topic_drawn_live_paged_filtered_and_quit_with_q(kafka_broker, pane):
    topic = f"watch-{time.time_ns()}"
    await create_topic(kafka_broker.bootstrap, topic, 1)
    await produce(kafka_broker.bootstrap, topic, [
        (b"shop-a", line("shop-a", events=5000, version=3, categories=("red", "green", "blue"),
                         learned=(0.6, 0.3, 0.1), empirical=(0.5, 0.3, 0.2), tv=0.1, kl=0.0253)),
        (b"gone", line("gone", events=9999)), (b"bad", b'{"key": "bad"}'), (b"gone", None)])
    watch = pane("--bootstrap-servers", kafka_broker.bootstrap, "--topic", topic, "--top", "1")
    text = watch.wait_for(lambda t: "shop-a" in t and "connected" in t, what="shop-a drawn")
    assert re.search(r"connected\s+keys 1–1 of 1\s+malformed: 1", text), text
    assert "gone" not in text  # its tombstone removed it
    assert re.search(r"events 5,000\s+v3\s+TV 0\.1000\s+KL 0\.0253", text), text
    _assert_bars(text, "shop-a", "red", 0.6, 0.5)
    _assert_bars(text, "shop-a", "green", 0.3, 0.3)
    _assert_bars(text, "shop-a", "blue", 0.1, 0.2)

    # a key with more events arrives: drawn in place, first
    await produce(kafka_broker.bootstrap, topic, [(b"web", line("web", events=8000, categories=("get", "post"),
                                                                 learned=(0.75, 0.25), empirical=(0.8, 0.2)))])
    text = watch.wait_for(lambda t: "╭─ web" in t, what="web drawn")
    assert "keys 1–1 of 2" in text and "shop-a" not in text
    _assert_bars(text, "web", "get", 0.75, 0.8)
    watch.send("NPage")
    text = watch.wait_for(lambda t: "╭─ shop-a" in t, what="the next page")
    assert "keys 2–2 of 2" in text
    watch.send("Up")
    watch.wait_for(lambda t: "╭─ web" in t, what="one key up")
    watch.send("/")
    watch.send("-l", "shop")
    watch.wait_for(lambda t: "/shop" in t and "Enter applies" in t, what="the filter typed")
    watch.send("Enter")
    text = watch.wait_for(lambda t: "filter: shop" in t, what="the filter applied")
    assert "╭─ shop-a" in text and "keys 1–1 of 1" in text
    watch.send("q")
    assert watch.wait_for_exit() == 0, watch.stderr()
    assert "Traceback" not in watch.stderr()


def test_a_pipe_on_standard_input_and_keys_from_the_terminal(pane, tmp_path):
    run = tmp_path / "run.jsonl"
    run.write_bytes(b"\n".join([line("a", events=10), line("b", events=20, learned=(0.2, 0.3, 0.5),
                                                                 empirical=(0.25, 0.25, 0.5)),
                                eviction_line("a"), b"not json"]) + b"\n")
    watch = pane("-", stdin=f"cat {run}")
    text = watch.wait_for(lambda t: "ended" in t and "╭─ b" in t, what="the pipe read")
    assert "malformed: 1" in text and "╭─ a" not in text
    _assert_bars(text, "b", "blue", 0.5, 0.5)
    _assert_bars(text, "b", "red", 0.2, 0.25)
    watch.send("q")  # from /dev/tty: standard input is the pipe
    assert watch.wait_for_exit() == 0, watch.stderr()


def test_a_file_is_followed_as_it_grows(pane, tmp_path):
    run = tmp_path / "run.jsonl"
    run.write_bytes(line("first", events=1) + b"\n")
    watch = pane(str(run), "--key", "f*", "--key", "second")
    watch.wait_for(lambda t: "following" in t and "╭─ first" in t, what="the file read")
    with open(run, "ab") as file:
        file.write(line("second", events=2, learned=(1.0, 0.0, 0.0), empirical=(0.9, 0.05, 0.05)) + b"\n"
                   + line("other", events=3) + b"\n")
    text = watch.wait_for(lambda t: "╭─ second" in t, what="the appended snapshot")
    assert "keys 1–2 of 2" in text and "other" not in text  # --key patterns choose the keys
    left = "\n".join(row[:WIDTH // 2] for row in text.splitlines())  # the first of two panels side by side
    _assert_bars(left, "second", "red", 1.0, 0.9)
    watch.send("q")
    assert watch.wait_for_exit() == 0, watch.stderr()


def test_a_broker_that_is_not_there_is_shown_disconnected_and_q_still_quits(pane):
    with socket.socket() as free:  # bound, never listening: connections are refused
        free.bind(("127.0.0.1", 0))
        watch = pane("--bootstrap-servers", f"127.0.0.1:{free.getsockname()[1]}", "--topic", "learned")
        text = watch.wait_for(lambda t: "disconnected" in t, what="disconnected")
        assert "cannot connect" in text and "no snapshots yet" in text
        # retried, not given up (the first backoffs are short: the pane may show a later attempt)
        watch.wait_for(lambda t: any(int(n) >= 3 for n in re.findall(r"attempt (\d+)", t)), what="attempts again")
        watch.send("q")
        assert watch.wait_for_exit() == 0, watch.stderr()
    assert "Traceback" not in watch.stderr() and "Unable connect" not in watch.text()
