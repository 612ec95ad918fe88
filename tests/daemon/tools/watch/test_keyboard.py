"""daemon.tools.watch.keyboard: bytes to key names, and keys read from a real pseudo-terminal in cbreak mode."""
import asyncio
import os
import termios

import pytest

from daemon.tools.watch.keyboard import Keyboard, KeyParser


@pytest.mark.parametrize("typed, keys", [
    (b"q", ["q"]),
    (b"\x1b[A\x1b[B\x1b[C\x1b[D", ["up", "down", "right", "left"]),
    (b"\x1bOA\x1bOB", ["up", "down"]),                      # application cursor mode
    (b"\x1b[5~\x1b[6~", ["pageup", "pagedown"]),
    (b"\x1b[H\x1b[F\x1b[1~\x1b[4~", ["home", "end", "home", "end"]),
    (b"\x1b[1;5A\x1b[5;2~", ["up", "pageup"]),              # with Ctrl or Shift held
    (b"/web\r", ["/", "w", "e", "b", "enter"]),
    (b"ab\x7f\x08", ["a", "b", "backspace", "backspace"]),
    (b"\x1b", ["esc"]),
    (b"\x1bq", ["esc", "q"]),
    (b"\x1b[99~x", ["x"]),                                   # an unknown sequence is dropped whole
    (b"\x01\x00z", ["z"]),                                   # other control characters too
    ("é/ü".encode(), ["é", "/", "ü"]),
])
def test_bytes_typed_become_key_names(typed, keys):
    assert KeyParser().feed(typed) == keys


def test_a_sequence_or_a_character_cut_between_two_reads_is_one_key():
    parser = KeyParser()
    assert parser.feed(b"a\x1b[") == ["a"]
    assert parser.feed(b"6") == []
    assert parser.feed(b"~b\xc3") == ["pagedown", "b"]
    assert parser.feed(b"\xa9") == ["é"]


async def test_keys_typed_on_a_terminal_arrive_in_cbreak_mode_and_the_mode_is_restored():
    controller, terminal = os.openpty()
    try:
        before = termios.tcgetattr(terminal)
        assert before[3] & termios.ICANON and before[3] & termios.ECHO
        keys: list[str] = []
        arrived = asyncio.Event()

        def on_key(key):
            keys.append(key)
            if key == "q":
                arrived.set()

        with Keyboard(on_key, path=os.ttyname(terminal)):
            mode = termios.tcgetattr(terminal)
            assert not mode[3] & termios.ICANON and not mode[3] & termios.ECHO  # no line editing, no echo
            os.write(controller, b"/w\x1b[6~q")  # no Enter: cbreak passes each key at once
            await asyncio.wait_for(arrived.wait(), 5)
        assert keys == ["/", "w", "pagedown", "q"]
        assert termios.tcgetattr(terminal) == before
    finally:
        os.close(controller)
        os.close(terminal)


async def test_a_terminal_that_cannot_be_opened_is_an_os_error():
    with pytest.raises(OSError):
        with Keyboard(lambda key: None, path="/nonexistent/tty"):
            pass
