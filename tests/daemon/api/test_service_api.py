"""``/v1`` on a running service: it answers from what the service published, and only for its keys."""
import asyncio

import aiohttp
import numpy as np
import orjson

from daemon.service import Service
from tests.daemon.in_process import SHUTDOWN_TIMEOUT, RecordingSink, ScriptedSource, service_settings
from tests.daemon.serving import until

CATEGORIES = ["a", "b", "c", "d", "e"]  # as many as the default synthetic key has


async def serving(tmp_path, **overrides):
    source, sink = ScriptedSource(), RecordingSink()
    service = Service(service_settings(tmp_path, model={"categories": CATEGORIES}, **overrides),
                      source=source, sinks=[sink])
    task = asyncio.create_task(service.serve())
    await until(task, lambda: service.http is not None and service._started, 30, "the service started")
    return service, task, source, sink


async def stop(service: Service, task: asyncio.Task) -> None:
    service.stopping.set()
    assert await asyncio.wait_for(task, SHUTDOWN_TIMEOUT + 5) == 0


async def test_a_key_is_answered_with_the_snapshot_the_sinks_got_and_forgotten_once_evicted(tmp_path):
    service, task, source, sink = await serving(tmp_path)
    url = f"http://127.0.0.1:{service.http.port}/v1"
    try:
        source.push("page/home", np.random.default_rng(0).choice(5, size=2000, p=[0.1, 0.2, 0.3, 0.2, 0.2]))
        await until(task, lambda: any(r.get("key") == "page/home" for r in sink.records), 30, "a snapshot published")
        async with aiohttp.ClientSession() as http:
            async def latest() -> tuple[dict, dict]:
                async with http.get(f"{url}/keys/page%2Fhome") as response:
                    assert response.status == 200
                    served = orjson.loads(await response.read())
                published = [r for r in sink.records if r.get("key") == "page/home"][-1]
                return served, published
            served, published = await latest()
            if served["version"] != published["version"]:  # a publish came between the two reads
                served, published = await latest()
            assert served == published
            async with http.get(f"{url}/keys/nobody") as response:
                assert response.status == 404
            async with http.get(f"{url}/openapi.json") as response:
                assert (await response.json())["openapi"] == "3.1.0"
            async with http.get(f"{url}/keys/page%2Fhome/samples", params={"n": "5", "seed": "1"}) as response:
                assert set((await response.json())["samples"]) <= set(CATEGORIES)
            service.training.keys.remove(["page/home"], "ttl")  # the key leaves, as an eviction would take it
            async with http.get(f"{url}/keys/page%2Fhome") as response:
                assert response.status == 404
    finally:
        await stop(service, task)


async def test_without_the_api_v1_is_not_served(tmp_path):
    service, task, _, _ = await serving(tmp_path, api={"enabled": False})
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{service.http.port}/v1/keys/a") as response:
                assert response.status == 404 and "not found" in await response.text()
        assert service.published is None
    finally:
        await stop(service, task)
