"""``GET /v1/stream``: updates of a prefix as Server-Sent Events; a client that falls behind is dropped."""
import asyncio

import orjson

from daemon.api.published import Published
from daemon.api.updates import Updates
from daemon.snapshots import Eviction, Publication, SnapshotBatch
from tests.daemon.api.serving import api_client, publication


async def next_event(response) -> tuple[str, bytes]:
    """The next ``event:``/``data:`` pair of a stream, comments skipped."""
    name = None
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 5)).rstrip(b"\n")
        if line.startswith(b"event: "):
            name = line[7:].decode()
        elif line.startswith(b"data: ") and name is not None:
            return name, line[6:]


async def test_a_stream_carries_the_updates_of_its_prefix_in_order():
    published = Published()
    async with api_client(published) as client:
        response = await client.get("/v1/stream", params={"prefix": "page/"})
        assert response.headers["Content-Type"] == "text/event-stream"
        await asyncio.wait_for(response.content.readline(), 5)  # retry:, connected: the subscription is in place
        await published.publish(publication({"user/1": [0.25] * 4, "page/a": [0.1, 0.2, 0.3, 0.4]}, version=4))
        await published.publish(publication({"page/a": [0.4, 0.3, 0.2, 0.1]}, version=5))
        await published.publish(Publication(SnapshotBatch.empty(1.0, "t"), [Eviction("page/a", "ttl", "t")]).encode())
        first, second, third = [await next_event(response) for _ in range(3)]
        assert first[0] == "snapshot" and orjson.loads(first[1])["version"] == 4
        assert second[0] == "snapshot" and orjson.loads(second[1])["version"] == 5
        assert third == ("evicted", b'{"key":"page/a"}')


async def test_past_max_streams_a_new_stream_is_refused():
    async with api_client(Published(), max_streams=1) as client:
        first = await client.get("/v1/stream")
        await asyncio.wait_for(first.content.readline(), 5)
        refused = await client.get("/v1/stream")
        assert refused.status == 503 and refused.headers["Retry-After"]
        first.close()


async def test_a_client_that_falls_behind_is_told_and_dropped():
    published = Published()
    async with api_client(published, stream_queue=2) as client:
        response = await client.get("/v1/stream")
        await asyncio.wait_for(response.content.readline(), 5)
        await published.publish(publication({"a": [0.25] * 4, "b": [0.25] * 4, "c": [0.25] * 4}))
        assert (await next_event(response))[0] == "dropped"
        assert await asyncio.wait_for(response.content.read(), 5) == b"\n"  # then the server ends the stream
        assert len(published.updates) == 0


async def test_a_subscription_ends_when_the_updates_close():
    updates = Updates()
    subscription = updates.subscribe("", limit=10)
    updates.offer([b"k"], [b"{}"])
    updates.close()
    assert [item async for item in subscription] == [("k", b"{}")] and not subscription.dropped
