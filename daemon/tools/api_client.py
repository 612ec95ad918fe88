"""Asking a gumbeld (``gumbeld run`` or ``gumbeld serve``) over HTTP: its ``/v1`` API, typed.

::

    async with ApiClient("http://localhost:9464", token=None) as api:
        snapshot = await api.get("page/home")          # a Snapshot, or None: no such key
        async for update in api.stream(prefix="page/"):  # Update(key, snapshot or None: evicted)
            ...

A refusal raises :class:`ApiError` with the problem's status and detail; 503 (not here yet) is
:class:`Unavailable`, carrying ``retry_after`` seconds.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import orjson

from ..contract import Snapshot
from .client import Update


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


class Unavailable(ApiError):
    """503: the key may be on its way (partitions restoring, a read server catching up)."""

    def __init__(self, status: int, detail: str, retry_after: float) -> None:
        super().__init__(status, detail)
        self.retry_after = retry_after


class ApiClient:
    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "ApiClient":
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._session.close()

    async def get(self, key: str) -> Snapshot | None:
        """The key's latest snapshot, or None when the server does not hold it."""
        body = await self._call("GET", f"/v1/keys/{quote(key, safe='')}", missing_ok=True)
        return None if body is None else Snapshot.model_validate_json(body)

    async def batch_get(self, keys: list[str]) -> dict[str, Snapshot]:
        """The snapshots of those of ``keys`` the server holds."""
        body = orjson.loads(await self._call("POST", "/v1/keys:batchGet", json={"keys": keys}))
        return {key: Snapshot.model_validate(value) for key, value in body["snapshots"].items()}

    async def keys(self, prefix: str = "", page: int = 1000) -> AsyncIterator[dict]:
        """Every key with ``prefix``: ``{"key", "events", "version", "published_at", "age_seconds"}``, page by page."""
        cursor = None
        while True:
            params = {"prefix": prefix, "limit": str(page), **({"cursor": cursor} if cursor is not None else {})}
            body = orjson.loads(await self._call("GET", "/v1/keys", params=params))
            for entry in body["keys"]:
                yield entry
            cursor = body["next_cursor"]
            if cursor is None:
                return

    async def samples(self, key: str, n: int, seed: int | None = None) -> list[str]:
        params = {"n": str(n), **({"seed": str(seed)} if seed is not None else {})}
        return orjson.loads(await self._call("GET", f"/v1/keys/{quote(key, safe='')}/samples", params=params))["samples"]

    async def score(self, key: str, events: list[str] | dict[str, int]) -> dict:
        """log_likelihood, mean_surprise_bits, g_statistic, degrees_of_freedom, p_value, event_log_likelihood."""
        return orjson.loads(await self._call("POST", f"/v1/keys/{quote(key, safe='')}/score", json={"events": events}))

    async def stream(self, prefix: str = "", *, connected: asyncio.Event | None = None) -> AsyncIterator[Update]:
        """Every update of the keys with ``prefix`` from now on, until the server ends the stream.
        ``connected`` is set once the server has accepted the stream: updates from then on are in it."""
        async with self._session.get(f"{self.url}/v1/stream", params={"prefix": prefix},
                                     timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as response:
            await _raise_for(response)
            if connected is not None:
                connected.set()
            event = None
            async for line in response.content:
                line = line.rstrip(b"\r\n")
                if line.startswith(b"event: "):
                    event = line[7:]
                elif line.startswith(b"data: ") and event == b"snapshot":
                    snapshot = Snapshot.model_validate_json(line[6:])
                    yield Update(snapshot.key, snapshot)
                elif line.startswith(b"data: ") and event == b"evicted":
                    yield Update(orjson.loads(line[6:])["key"], None)

    async def _call(self, method: str, path: str, *, missing_ok: bool = False, **options) -> bytes | None:
        async with self._session.request(method, self.url + path, **options) as response:
            if response.status == 404 and missing_ok:
                return None
            await _raise_for(response)
            return await response.read()


async def _raise_for(response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    try:
        detail = orjson.loads(await response.read())["detail"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        detail = response.reason or ""
    if response.status == 503:
        raise Unavailable(503, detail, float(response.headers.get("Retry-After", "1")))
    raise ApiError(response.status, detail)
