"""``/metrics``, ``/livez`` and ``/readyz`` of gumbeld: a minimal HTTP/1.1 server on asyncio streams.

One request per connection (``Connection: close``), GET and HEAD only. ``/livez`` answers from the
event loop itself, so an answer proves the loop is not stuck. ``/readyz`` reports the named
conditions of a :class:`Health`. ``/metrics`` renders the registry in a worker thread, so a large
exposition never delays the loop.

>>> health = Health()
>>> health.set_not_ready("checkpoint", "restoring")
>>> health.ready()
(False, ['checkpoint: restoring'])
>>> health.set_ready("checkpoint")
>>> health.ready()
(True, [])
>>> health.draining()
>>> health.ready()
(False, ['draining'])
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request head
WRITE_TIMEOUT = 30.0  # seconds a client may take to read the response
MAX_HEAD_BYTES = 16 * 1024
MAX_DISCARDED_BODY = 64 * 1024  # request bodies up to this size are read and dropped
LINGER_SECONDS = 2.0  # after an answer to a request not read in full, input is drained this long
LINGER_BYTES = 4 * 1024 * 1024  # or up to this much
ALLOWED_METHODS = ("GET", "HEAD")


class Health:
    """Named readiness conditions; ready when none is failing and not draining. Thread-safe.

    ``on_change(ready)`` is called at once and then whenever the overall readiness flips, e.g. to
    keep the ``gumbeld_ready`` gauge in step; it runs under the lock, so it must not call back
    into this object.
    """

    def __init__(self, on_change: Callable[[bool], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._not_ready: dict[str, str] = {}
        self._draining = False
        self._on_change = on_change
        self._was_ready = True
        if on_change is not None:
            on_change(True)

    def set_not_ready(self, name: str, reason: str) -> None:
        with self._lock:
            self._not_ready[name] = reason
            self._notify()

    def set_ready(self, name: str) -> None:
        with self._lock:
            self._not_ready.pop(name, None)
            self._notify()

    def draining(self) -> None:
        """The service is shutting down: not ready from now on, whatever the conditions say."""
        with self._lock:
            self._draining = True
            self._notify()

    @property
    def is_draining(self) -> bool:
        return self._draining

    def ready(self) -> tuple[bool, list[str]]:
        """``(ready, reasons)``, reasons as ``"name: reason"`` sorted by name, or ``["draining"]``."""
        with self._lock:
            return self._state()

    def _state(self) -> tuple[bool, list[str]]:
        if self._draining:
            return False, ["draining"]
        reasons = [f"{name}: {reason}" for name, reason in sorted(self._not_ready.items())]
        return not reasons, reasons

    def _notify(self) -> None:
        # Called with the lock held, so concurrent changes reach on_change in the order they happened.
        ready, _ = self._state()
        if ready != self._was_ready:
            self._was_ready = ready
            if self._on_change is not None:
                self._on_change(ready)


class _BadRequest(Exception):
    pass


class HttpServer:
    """Serves ``/metrics`` from ``registry`` and ``/livez``, ``/readyz`` from ``health``."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Health) -> None:
        self.host = host
        self.requested_port = port
        self.registry = registry
        self.health = health
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        """The bound port (the one chosen by the system when 0 was asked for)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the HTTP server is not started")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the HTTP server is already started")
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port,
                                                  limit=MAX_HEAD_BYTES)
        log.info("serving /metrics, /livez and /readyz on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end the connections still open."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    # -- one connection -----------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass  # the client went away or was too slow: nobody to answer
        except asyncio.CancelledError:
            pass  # stop() ends open connections; ending quietly spares asyncio's callback a traceback
        except Exception:
            log.exception("unexpected error while answering an HTTP request")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            method, path, headers = _parse_head(head)
        except (_BadRequest, asyncio.LimitOverrunError) as error:
            problem = "request head too large" if isinstance(error, asyncio.LimitOverrunError) else error
            await self._send(writer, HTTPStatus.BAD_REQUEST, f"bad request: {problem}\n")
            await _linger(reader, writer)
            return
        except asyncio.IncompleteReadError as error:
            if error.partial.strip():  # something arrived, but not a whole request head
                await self._send(writer, HTTPStatus.BAD_REQUEST, "bad request: incomplete request head\n")
            return
        body_read = await _discard_body(reader, headers)
        try:
            status, body, content_type, extra = await self._route(method, path)
        except Exception:
            log.exception("cannot answer %s %s", method, path)
            status, body, content_type, extra = HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n", TEXT, {}
        await self._send(writer, status, body, content_type, extra, include_body=method != "HEAD")
        if not body_read:
            await _linger(reader, writer)

    async def _route(self, method: str, path: str) -> tuple[HTTPStatus, str | bytes, str, dict[str, str]]:
        if path not in ("/metrics", "/livez", "/readyz"):
            return HTTPStatus.NOT_FOUND, "not found; try /metrics, /livez or /readyz\n", TEXT, {}
        if method not in ALLOWED_METHODS:
            return (HTTPStatus.METHOD_NOT_ALLOWED, f"method {method} not allowed\n", TEXT,
                    {"Allow": ", ".join(ALLOWED_METHODS)})
        if path == "/livez":
            return HTTPStatus.OK, "ok\n", TEXT, {}
        if path == "/readyz":
            ready, reasons = self.health.ready()
            if ready:
                return HTTPStatus.OK, "ready\n", TEXT, {}
            return HTTPStatus.SERVICE_UNAVAILABLE, "".join(f"{r}\n" for r in reasons), TEXT, {}
        exposition = await asyncio.to_thread(generate_latest, self.registry)
        return HTTPStatus.OK, exposition, CONTENT_TYPE_LATEST, {}

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: HTTPStatus, body: str | bytes,
                    content_type: str = TEXT, extra: dict[str, str] | None = None,
                    include_body: bool = True) -> None:
        payload = body.encode() if isinstance(body, str) else body
        lines = [f"HTTP/1.1 {status.value} {status.phrase}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(payload)}", "Cache-Control: no-store", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (extra or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if include_body:
            writer.write(payload)
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)


async def _discard_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bool:
    """Read and drop a small request body; False if a body may be left unread."""
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return False
    if length == 0 and "transfer-encoding" not in headers:
        return True
    if "expect" in headers or not 0 < length <= MAX_DISCARDED_BODY:  # "Expect": the client awaits a 100
        return False
    await asyncio.wait_for(reader.readexactly(length), REQUEST_TIMEOUT)
    return True


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close, then drain what the client still sends: closing a socket with unread input
    resets the connection, and the client could lose the answer already sent."""
    async def drain_input() -> None:
        received = 0
        while received < LINGER_BYTES and (chunk := await reader.read(64 * 1024)):
            received += len(chunk)

    with contextlib.suppress(Exception):
        if writer.can_write_eof():
            writer.write_eof()
        await asyncio.wait_for(drain_input(), LINGER_SECONDS)


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """``(method, path, headers)`` of a request head; header names lower-cased."""
    text = head.decode("latin-1")  # decodes any byte; HTTP heads are ASCII
    request_line, *header_lines = text[:-4].split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[0].isupper():
        raise _BadRequest("malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise _BadRequest(f"unsupported protocol {version[:20]!r}")
    if not target.startswith("/") and not target.startswith("http://"):
        raise _BadRequest("malformed request target")
    headers = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest("malformed header line")
        headers[name.lower()] = value.strip()
    return method, urlsplit(target).path, headers
