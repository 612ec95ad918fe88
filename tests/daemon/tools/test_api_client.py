"""The typed HTTP client of /v1, against a served /v1 over a hand-filled store."""
import asyncio

import pytest

from daemon.api.published import Published
from daemon.snapshots import Eviction, Publication, SnapshotBatch
from daemon.tools.api_client import ApiClient, ApiError, Unavailable
from tests.daemon.api.serving import api_client, publication


def filled() -> Published:
    published = Published()
    release = publication({f"page/{i}": [0.1, 0.2, 0.3, 0.4] for i in range(5)}, version=2)
    published.take(release.keys, release.values)
    return published


async def test_the_client_reads_keys_pages_samples_and_scores():
    async with api_client(filled(), token="t") as server:
        async with ApiClient(str(server.make_url("")), token="t") as api:
            snapshot = await api.get("page/1")
            assert (snapshot.key, snapshot.version) == ("page/1", 2)
            assert await api.get("nobody") is None
            assert sorted(await api.batch_get(["page/2", "x"])) == ["page/2"]
            assert [entry["key"] async for entry in api.keys("page/", page=2)] == [f"page/{i}" for i in range(5)]
            assert await api.samples("page/1", 5, seed=3) == await api.samples("page/1", 5, seed=3)
            assert (await api.score("page/1", {"a": 3}))["events"] == 3
            with pytest.raises(ApiError) as refused:
                await api.score("page/1", ["zebra"])
            assert refused.value.status == 422 and "zebra" in refused.value.detail
        async with ApiClient(str(server.make_url("")), token="wrong") as api:
            with pytest.raises(ApiError) as unauthorized:
                await api.get("page/1")
            assert unauthorized.value.status == 401


async def test_the_client_says_when_a_key_is_not_here_yet():
    class Restoring:
        restoring = True
    async with api_client(Published(), arrivals=Restoring()) as server:
        async with ApiClient(str(server.make_url(""))) as api:
            with pytest.raises(Unavailable) as unavailable:
                await api.get("page/1")
            assert unavailable.value.retry_after == 1.0


async def test_the_client_follows_the_stream():
    published = Published()
    async with api_client(published) as server:
        async with ApiClient(str(server.make_url(""))) as api:
            updates = api.stream(prefix="page/")
            first = asyncio.ensure_future(anext(updates))
            while not len(published.updates):  # the server has subscribed the stream
                await asyncio.sleep(0.01)
            await published.publish(publication({"page/a": [0.25] * 4}, version=9))
            await published.publish(Publication(SnapshotBatch.empty(1.0, "t"), [Eviction("page/a", "ttl", "t")]).encode())
            update = await asyncio.wait_for(first, 5)
            assert (update.key, update.snapshot.version) == ("page/a", 9)
            evicted = await asyncio.wait_for(anext(updates), 5)
            assert (evicted.key, evicted.snapshot) == ("page/a", None)
            await updates.aclose()
