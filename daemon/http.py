"""``/metrics``, ``/livez``, ``/readyz`` and ``/v1`` of gumbeld, served by aiohttp.

aiohttp speaks the protocol (parsing, keep-alive, lingering close, errors); this module adds the
three probe and metric routes, the read API's (:mod:`daemon.api`) when given, a cap on open
connections that never fails a probe, and the shutdown gumbeld needs. ``/livez`` answers from
the event loop itself, so an answer proves the loop is not stuck. ``/readyz`` reports the named
conditions of a :class:`Health`. ``/metrics`` answers as prometheus-client's own handlers do
(OpenMetrics when the ``Accept`` header asks for it, gzip when ``Accept-Encoding`` allows it, only
the series named by ``name[]`` when given), but renders in a worker thread, so a large exposition
never delays the loop. Signals stay with gumbeld: nothing here installs a handler.
"""
from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from .api.reads import ReadApi
from .health import Health

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 10.0  # seconds a connection may wait for its (next) request head to arrive in full
SHUTDOWN_TIMEOUT = 2.0  # seconds stop() lets requests in progress finish
PROBE_WAIT = 2.0  # seconds a connection past the cap may take to send its request line
MAX_BODY_BYTES = 1 << 20  # without the read API, which sets its own
MAX_LINE = 8190  # aiohttp's default longest request line
ROUTES = ("/metrics", "/livez", "/readyz")


class _NoBadRequests(logging.Filter):
    """Drops aiohttp's report of a malformed request: the client has its 400, the log no noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], HttpProcessingError))


protocol_log = logging.getLogger(f"{__name__}.protocol")  # aiohttp's own reports
protocol_log.addFilter(_NoBadRequests())


def render_metrics(registry: CollectorRegistry, accept: str, accept_encoding: str,
                   names: Sequence[str]) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` of a ``/metrics`` answer, negotiated as prometheus-client does.

    The format follows ``accept`` (OpenMetrics or Prometheus text), only the series in ``names``
    are rendered when it is not empty, and the body is gzipped when ``accept_encoding`` allows.
    Blocking: it is called in a worker thread (prometheus_client's aiohttp handler would render on
    the event loop, so it is not used).

    >>> from prometheus_client import Counter
    >>> registry = CollectorRegistry()
    >>> Counter("a", "A.", registry=registry).inc()
    >>> Counter("b", "B.", registry=registry).inc()
    >>> body, headers = render_metrics(registry, "application/openmetrics-text", "", ["b_total"])
    >>> headers["Content-Type"].split(";")[0], body.decode().splitlines()[-2:]
    ('application/openmetrics-text', ['b_total 1.0', '# EOF'])
    """
    encoder, content_type = choose_encoder(accept)
    body = encoder(registry.restricted_registry(names) if names else registry)
    headers = {hdrs.CONTENT_TYPE: content_type}
    if gzip_accepted(accept_encoding):
        body = gzip.compress(body)
        headers[hdrs.CONTENT_ENCODING] = "gzip"
    return body, headers


class HttpServer:
    """Serves ``/metrics`` from ``registry``, ``/livez``, ``/readyz`` from ``health``, and ``api``'s routes.

    At most ``max_connections`` connections are served at once (a burst of simultaneous connects may
    pass it by a few). A connection past it is answered from its request line alone, then closed:
    ``/livez`` and ``/readyz`` as always (a server full of idle or half-sent requests must not fail
    its probes), anything else 503. A connection is closed once it has waited ``idle_timeout``
    seconds for a complete request head.
    """

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Health, *,
                 max_connections: int, idle_timeout: float = IDLE_TIMEOUT, api: ReadApi | None = None) -> None:
        self.host = host
        self.requested_port = port
        self.registry = registry
        self.health = health
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.api = api
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (the one chosen by the system when 0 was asked for)."""
        if self._listener is None or not self._listener.sockets:
            raise RuntimeError("the HTTP server is not started")
        return self._listener.sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Listen on ``host:port`` (OSError when that cannot be bound) and serve until :meth:`stop`."""
        if self._runner is not None:
            raise RuntimeError("the HTTP server is already started")
        app = web.Application(middlewares=[_plain_errors], client_max_size=(
            self.api.settings.max_body_bytes if self.api is not None else MAX_BODY_BYTES))
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        if self.api is not None:
            self.api.add_to(app)
        app.on_response_prepare.append(_no_store)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, logger=protocol_log,
                               keepalive_timeout=self.idle_timeout, shutdown_timeout=SHUTDOWN_TIMEOUT,
                               max_line_size=self._max_line())
        await runner.setup()
        try:
            # The runner's low-level server is the protocol factory; listening here rather than in a
            # web.TCPSite lets each new connection be counted before it is served.
            self._listener = await asyncio.get_running_loop().create_server(
                lambda: self._accept(runner.server), self.host, self.requested_port)
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("serving /metrics, /livez, /readyz%s on http://%s:%d", " and /v1" if self.api else "",
                 self.host, self.port)

    def _max_line(self) -> int:
        """The longest request line: a key of ``api.max_key_length`` characters percent-encoded (up to 4
        bytes a character, 3 characters a byte) fits, with room for the rest of the path and the query,
        so that /v1 answers it (a problem if it is too long) rather than the parser (plain text)."""
        return 12 * self.api.settings.max_key_length + MAX_LINE if self.api is not None else MAX_LINE

    async def stop(self) -> None:
        """Stop listening, let requests in progress finish briefly, close every connection."""
        if self._runner is None:
            return
        runner, listener, self._runner, self._listener = self._runner, self._listener, None, None
        listener.close()
        await runner.cleanup()
        await listener.wait_closed()

    def _accept(self, server: web.Server) -> asyncio.BaseProtocol:
        if len(server.connections) >= self.max_connections:
            return _PastTheCap(self.health)
        return server()

    # -- routes -------------------------------------------------------------------------------
    async def _livez(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        status, text = readiness(self.health)
        return web.Response(status=status, text=text)

    async def _metrics(self, request: web.Request) -> web.Response:
        accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
        accept_encoding = ",".join(request.headers.getall(hdrs.ACCEPT_ENCODING, []))
        names = request.query.getall("name[]", [])
        try:
            body, headers = await asyncio.to_thread(render_metrics, self.registry, accept,
                                                    accept_encoding, names)
        except Exception:
            log.exception("cannot render /metrics")
            return web.Response(status=500, text="internal error\n")
        return web.Response(body=body, headers=headers)


def readiness(health: Health) -> tuple[int, str]:
    """The status and text of a ``/readyz`` answer."""
    ready, reasons = health.ready()
    return (200, "ready\n") if ready else (503, "".join(f"{reason}\n" for reason in reasons))


@web.middleware
async def _plain_errors(request: web.Request, handler: Callable) -> web.StreamResponse:
    """404 names the routes there are; 405 names the method refused (and ``Allow`` the others)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        raise web.HTTPNotFound(text=f"not found; try {', '.join(ROUTES[:-1])} or {ROUTES[-1]}\n") from None
    except web.HTTPMethodNotAllowed as error:
        raise web.HTTPMethodNotAllowed(error.method, error.allowed_methods,
                                       text=f"method {error.method} not allowed\n") from None


async def _no_store(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer describes the moment it is made: no cache may keep it."""
    response.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")


class _PastTheCap(asyncio.Protocol):
    """A connection past the cap: a probe is answered, anything else 503; then it is closed.

    Only the request line is read (within ``PROBE_WAIT`` seconds): no aiohttp protocol is made, so
    such connections cost next to nothing however many arrive.
    """

    MAX_LINE = 8192

    def __init__(self, health: Health) -> None:
        self.health = health
        self.received = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(PROBE_WAIT, self._answer)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if b"\n" in self.received or len(self.received) > self.MAX_LINE:
            self._answer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _answer(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        method, _, rest = self.received.partition(b"\n")[0].partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if method in (b"GET", b"HEAD") and path == b"/livez":
            status, text = 200, "ok\n"
        elif method in (b"GET", b"HEAD") and path == b"/readyz":
            status, text = readiness(self.health)
        else:
            status, text = 503, "too many connections\n"
        body = b"" if method == b"HEAD" else text.encode()
        self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                             b"Cache-Control: no-store\r\nConnection: close\r\n\r\n%s"
                             % (status, HTTPStatus(status).phrase.encode(), len(text.encode()), body))
        self.transport.close()
