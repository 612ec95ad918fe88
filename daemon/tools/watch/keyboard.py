"""Keys from the terminal, for ``gumbeld watch``: :class:`KeyParser` turns bytes into key names,
:class:`Keyboard` reads them from the terminal in cbreak mode without blocking the event loop.

Keys are read from ``/dev/tty``, the controlling terminal, as ``less`` does: standard input may be
the data (``gumbeld run | gumbeld watch -``).

>>> parser = KeyParser()
>>> parser.feed(b"q\\x1b[A\\x1b[6~/we\\x7f\\r\\x1b")
['q', 'up', 'pagedown', '/', 'w', 'e', 'backspace', 'enter', 'esc']
>>> parser.feed(b"\\x1b[5"), parser.feed(b"~")   # a sequence split between two reads
([], ['pageup'])
"""
from __future__ import annotations

import asyncio
import codecs
import os
import termios
import tty
from collections.abc import Callable

# The final bytes of CSI (ESC [) and SS3 (ESC O) sequences; PageUp/PageDown/Home/End also come
# as ESC [ n ~.
SEQUENCES = {b"A": "up", b"B": "down", b"C": "right", b"D": "left", b"H": "home", b"F": "end",
             b"5~": "pageup", b"6~": "pagedown", b"1~": "home", b"7~": "home", b"4~": "end", b"8~": "end"}
CONTROLS = {"\r": "enter", "\n": "enter", "\x7f": "backspace", "\x08": "backspace", "\t": "tab"}


class KeyParser:
    """Bytes typed → key names: a printable character is itself; see ``SEQUENCES`` and ``CONTROLS``
    for the others. An ESC that ends a read, with nothing after it, is the Esc key."""

    def __init__(self) -> None:
        self._pending = b""     # the start of an escape sequence cut by the end of a read
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> list[str]:
        data, self._pending = self._pending + data, b""
        keys: list[str] = []
        i = 0
        while i < len(data):
            if data[i] != 0x1B:
                j = data.find(b"\x1b", i)
                j = len(data) if j < 0 else j
                keys += [CONTROLS.get(c, c) for c in self._decoder.decode(data[i:j]) if c in CONTROLS or c.isprintable()]
                i = j
                continue
            if i + 1 == len(data):
                keys.append("esc")
                break
            if data[i + 1] not in b"[O":  # Alt+key, or Esc typed just before a key: Esc, then the key
                keys.append("esc")
                i += 1
                continue
            end = i + 2
            while end < len(data) and not 0x40 <= data[end] <= 0x7E:  # parameters, up to the final byte
                end += 1
            if end == len(data):
                self._pending = data[i:]
                break
            body = data[i + 2:end + 1]  # e.g. b"A", b"1;5A" (with a modifier), b"5~"
            name = SEQUENCES.get(body.split(b";")[0].rstrip(b"~") + b"~" if body.endswith(b"~") else body[-1:])
            if name:
                keys.append(name)
            i = end + 1
        return keys


class Keyboard:
    """``with Keyboard(on_key):`` the terminal in cbreak mode (keys arrive one by one, unechoed;
    Ctrl-C still interrupts), each key passed to ``on_key`` from the running event loop; the
    terminal's modes are restored on exit. ``on_key("eof")`` if the terminal goes away."""

    def __init__(self, on_key: Callable[[str], None], *, path: str = "/dev/tty") -> None:
        self._on_key, self._path = on_key, path
        self._parser = KeyParser()
        self._fd: int | None = None
        self._saved: list | None = None

    def __enter__(self) -> "Keyboard":
        self._fd = os.open(self._path, os.O_RDONLY | os.O_NOCTTY)
        try:
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd, termios.TCSANOW)
            asyncio.get_running_loop().add_reader(self._fd, self._readable)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is None:
            return
        asyncio.get_running_loop().remove_reader(self._fd)
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
        os.close(self._fd)
        self._fd = self._saved = None

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 1024)
        except OSError:
            data = b""
        if not data:  # the terminal hung up
            asyncio.get_running_loop().remove_reader(self._fd)
            self._on_key("eof")
            return
        for key in self._parser.feed(data):
            self._on_key(key)
