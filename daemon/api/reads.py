"""The endpoints of ``/v1``: a key's snapshot, many keys, a page of keys, samples, scores, a stream of updates.

Every answer comes from :class:`~daemon.api.published.Published`, what this instance last
published; nothing here waits for the training thread. A key the instance does not hold is 404,
or 503 with ``Retry-After`` while keys may be on their way to it (before its first partitions,
while partitions move or restore): then it cannot tell "not here" from "not here yet". A key it
holds but has not published yet (new, or just restored) is 503 too, until the next publication.
"""
from __future__ import annotations

import asyncio
import hmac
from collections.abc import Container
from datetime import datetime
from typing import Callable, Protocol

import numpy as np
import orjson
import torch
from aiohttp import hdrs, web

from gumbel_models.goodness_of_fit import floored, goodness_of_fit

from .metrics import ApiMetrics
from .openapi import openapi
from .pacing import Pacer
from .problems import Problem, of_http_error
from .published import Published, Snapshot
from .requests import events_as_counts, integer, json_object, key_of
from .settings import ApiSettings
from .stream import StreamEndpoint

JSON = "application/json"
RETRY_AFTER = "1"  # seconds: a restore is usually done within a few
DEFAULT_PAGE, DEFAULT_SAMPLES = 100, 1
SEED_BOUND = 2**63


class Arrivals(Protocol):
    """Whether keys may be on their way to this instance (e.g. the source: a partition restores)."""

    @property
    def restoring(self) -> bool: ...


class ReadApi:
    """``/v1`` over ``published``: the keys in ``owned`` (None: all of them) are this instance's;
    ``seeds`` draws the seed of a sampling request that gives none; ``pacer`` (None: none) paces
    the requests; ``metrics`` (None: none) counts the answers."""

    def __init__(self, settings: ApiSettings, published: Published, *, arrivals: Arrivals,
                 owned: Container[str] | None, seeds: np.random.Generator, clock: Callable[[], float],
                 pacer: Pacer | None = None, metrics: ApiMetrics | None = None) -> None:
        self.settings, self.published, self.arrivals, self.owned = settings, published, arrivals, owned
        self._seeds, self._clock, self.pacer, self.metrics = seeds, clock, pacer, metrics
        self._openapi = orjson.dumps(openapi(settings))

    def add_to(self, app: web.Application) -> None:
        app.middlewares.append(self._guard)
        app.router.add_get("/v1/keys/{key}", self.get)
        app.router.add_post("/v1/keys:batchGet", self.batch_get)
        app.router.add_get("/v1/keys", self.list_keys)
        app.router.add_get("/v1/keys/{key}/samples", self.samples)
        app.router.add_post("/v1/keys/{key}/score", self.score)
        app.router.add_get("/v1/stream", StreamEndpoint(self.settings, self.published.updates).serve)
        app.router.add_get("/v1/openapi.json", self.openapi)

    # -- endpoints ----------------------------------------------------------------------------
    async def get(self, request: web.Request) -> web.Response:
        snapshot = self._snapshot(request)
        if _matches(request.headers.get(hdrs.IF_NONE_MATCH, ""), snapshot.etag):
            return web.Response(status=304, headers={hdrs.ETAG: snapshot.etag})
        return web.Response(body=snapshot.value, content_type=JSON, headers={hdrs.ETAG: snapshot.etag})

    async def batch_get(self, request: web.Request) -> web.Response:
        keys = await json_object(request, "keys")
        if not isinstance(keys, list) or len(keys) > self.settings.max_batch_keys:
            raise Problem(400, f'"keys" is a list of at most {self.settings.max_batch_keys} keys (api.max_batch_keys)')
        found, not_found, unavailable = {}, [], []
        restoring = self.arrivals.restoring
        for name in keys:
            key = key_of(name, self.settings.max_key_length)
            value = self._value(key)
            if value is not None:
                found[key] = orjson.Fragment(value)
            else:
                (unavailable if restoring or self._unpublished(key) else not_found).append(key)
        body = {"snapshots": found, "not_found": not_found, "unavailable": unavailable}
        return web.Response(body=orjson.dumps(body), content_type=JSON)

    async def list_keys(self, request: web.Request) -> web.Response:
        prefix = request.query.get("prefix", "")
        limit = integer(request, "limit", default=DEFAULT_PAGE, low=1, high=self.settings.max_page)
        keys = self.published.page(prefix, request.query.get("cursor") or None, limit)
        entries = await asyncio.to_thread(self._entries, keys)  # parsing a page may take a few ms
        more = len(keys) == limit and self.published.page(prefix, keys[-1], 1)
        body = {"keys": entries, "next_cursor": keys[-1] if more else None}  # the key the next page starts after
        return web.Response(body=orjson.dumps(body), content_type=JSON)

    async def samples(self, request: web.Request) -> web.Response:
        snapshot = self._snapshot(request)
        n = integer(request, "n", default=DEFAULT_SAMPLES, low=1, high=self.settings.max_samples)
        seed = integer(request, "seed", default=None, low=0, high=SEED_BOUND - 1)
        seed = int(self._seeds.integers(SEED_BOUND)) if seed is None else seed
        categories = snapshot.record["categories"]
        p = np.asarray(snapshot.record["probabilities"], dtype=np.float64)
        drawn = np.random.default_rng(seed).choice(len(categories), size=n, p=p / p.sum())
        body = {"key": snapshot.record["key"], "version": snapshot.version, "seed": seed,
                "samples": [categories[i] for i in drawn.tolist()]}
        return web.Response(body=orjson.dumps(body), content_type=JSON, headers={hdrs.ETAG: snapshot.etag})

    async def score(self, request: web.Request) -> web.Response:
        snapshot = self._snapshot(request)
        events = await json_object(request, "events")
        record = snapshot.record
        counts = events_as_counts(events, record["categories"], self.settings.max_score_events)
        p = torch.tensor(record["probabilities"], dtype=torch.float64)
        fit = goodness_of_fit(torch.tensor(counts, dtype=torch.float64), p)
        per_category = dict(zip(record["categories"], floored(p).log().tolist()))
        body = {"key": record["key"], "version": snapshot.version, "events": sum(counts),
                "log_likelihood": fit.log_likelihood, "mean_surprise_bits": fit.surprise_bits,
                "g_statistic": fit.g, "degrees_of_freedom": fit.degrees_of_freedom, "p_value": fit.p_value,
                "event_log_likelihood": ([per_category[str(e)] for e in events] if isinstance(events, list)
                                         else {name: per_category[name] for name in events})}
        return web.Response(body=orjson.dumps(body), content_type=JSON, headers={hdrs.ETAG: snapshot.etag})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type=JSON)

    # -- helpers ------------------------------------------------------------------------------
    def _value(self, key: str) -> bytes | None:
        value = self.published.get(key)
        return value if value is not None and (self.owned is None or key in self.owned) else None

    def _snapshot(self, request: web.Request) -> Snapshot:
        key = key_of(request.match_info["key"], self.settings.max_key_length)
        value = self._value(key)
        if value is not None:
            return Snapshot.of(value)
        if self.arrivals.restoring:
            raise Problem(503, f"key {key!r} is not here yet: keys are on their way (partitions restoring, "
                          "or the topic still being read)", key=key,
                          headers={hdrs.RETRY_AFTER: RETRY_AFTER})
        if self._unpublished(key):
            raise Problem(503, f"key {key!r} is here but not published yet: its first snapshot comes with the "
                          "next publication", key=key, headers={hdrs.RETRY_AFTER: RETRY_AFTER})
        raise Problem(404, f"no snapshot of key {key!r} here", key=key)

    def _unpublished(self, key: str) -> bool:
        """Whether the instance holds ``key`` (new, or just restored) but has not published it yet."""
        return self.owned is not None and key in self.owned and self.published.get(key) is None

    def _entries(self, keys: list[str]) -> list[dict]:
        now, entries = self._clock(), []
        for key in keys:
            value = self._value(key)
            if value is None:  # removed since the page was read, or no longer this instance's
                continue
            record = orjson.loads(value)
            published = datetime.fromisoformat(record["published_at"]).timestamp()
            entries.append({"key": key, "events": record["events"], "version": record["version"],
                            "published_at": record["published_at"], "age_seconds": round(max(0.0, now - published), 3)})
        return entries

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        """``/v1`` only: the bearer token when one is set, the pacer's turn, and every refusal as a problem."""
        if not request.path.startswith("/v1"):
            return await handler(request)
        try:
            token = self.settings.token
            if token is not None and not hmac.compare_digest(
                    request.headers.get(hdrs.AUTHORIZATION, "").encode(), f"Bearer {token.get_secret_value()}".encode()):
                raise Problem(401, "a bearer token is required (Authorization: Bearer <api.token>)",
                              headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="gumbeld"'})
            if self.pacer is not None:
                await self._take_turn()
            response = await handler(request)
        except Problem as problem:
            response = problem.response()
        except web.HTTPException as error:
            if error.status < 400:
                raise
            response = of_http_error(error).response()
        if not response.prepared:  # a stream has sent its headers already
            response.headers.setdefault(hdrs.CACHE_CONTROL, "no-cache")  # may be kept, if checked again (ETag)
        if self.metrics is not None:
            resource = request.match_info.route.resource
            self.metrics.answered(resource.canonical if resource is not None else "unmatched", response.status)
        return response

    async def _take_turn(self) -> None:
        wait = self.pacer.wait()
        if wait is None:
            raise Problem(429, f"more than {self.pacer.rate:g} requests a second (api.max_reads_per_second); "
                          "gumbeld serve answers more", headers={hdrs.RETRY_AFTER: "1"})
        if wait > 0:
            await asyncio.sleep(wait)


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weakly, as RFC 9110 asks for GET) or is ``*``."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags
