"""A ``/v1`` served over a hand-filled store, for the tests of daemon/api."""
from __future__ import annotations

import contextlib

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from daemon.api.published import Published
from daemon.api.reads import ReadApi
from daemon.api.settings import ApiSettings
from daemon.snapshots import Publication, SnapshotBatch
from tests.daemon.snapshot_intervals import interval_fields

CATEGORIES = ["a", "b", "c", "d"]
NOW = 1_800_000_012.5  # 12.5 s after PUBLISHED_AT
PUBLISHED_AT = "2027-01-15T08:00:00.000Z"


class Arrivals:
    restoring = False


def publication(keys: dict[str, list[float]], *, version: int = 1, events: int = 100,
                published_at: str = PUBLISHED_AT) -> Publication:
    """Snapshots of ``keys`` (key → learned probabilities over CATEGORIES), encoded as published."""
    learned = np.array(list(keys.values()), dtype=np.float64)
    n = len(keys)
    batch = SnapshotBatch(list(keys), [CATEGORIES] * n, learned, learned, np.zeros(n), np.zeros(n), np.zeros(n),
                          0.5, np.full(n, 10), np.full(n, events), np.full(n, version), published_at,
                          **interval_fields(learned, np.full(n, events)))
    return Publication(batch).encode()


@contextlib.asynccontextmanager
async def api_client(published: Published, *, arrivals=None, owned=None, pacer=None, metrics=None, **settings):
    """An aiohttp test client of ``/v1`` over ``published``."""
    api = ReadApi(ApiSettings(**settings), published, arrivals=arrivals or Arrivals(), owned=owned,
                  seeds=np.random.default_rng(0), clock=lambda: NOW, pacer=pacer, metrics=metrics)
    app = web.Application(client_max_size=api.settings.max_body_bytes)
    api.add_to(app)
    async with TestClient(TestServer(app)) as client:
        yield client
