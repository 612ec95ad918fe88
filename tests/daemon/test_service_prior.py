"""``model.prior = "pooled"`` in the running service: a key with three events is published near the
population's distribution, its divergence measured against its target, and the prior's metrics are set.
Fixed seeds; tolerances stated per assertion."""
import asyncio

import aiohttp
import numpy as np

from daemon.service import Service
from tests.daemon.in_process import SHUTDOWN_TIMEOUT, RecordingSink, ScriptedSource, service_settings
from tests.daemon.serving import until

LABELS = ["a", "b", "c", "d", "e"]  # as many as the default synthetic key has
MEAN = np.array([0.35, 0.25, 0.2, 0.1, 0.1])


async def test_a_key_with_three_events_is_published_near_the_population_and_close_to_its_target(tmp_path):
    source, sink = ScriptedSource(), RecordingSink()
    settings = service_settings(tmp_path, model={"categories": LABELS, "prior": "pooled"})
    service = Service(settings, source=source, sinks=[sink])
    task = asyncio.create_task(service.serve())
    try:
        await until(task, lambda: service.http is not None and service._started, 30, "the service started")
        rng = np.random.default_rng(3)
        for i, p in enumerate(rng.dirichlet(30.0 * MEAN, size=200)):
            source.push(f"k{i}", rng.choice(5, size=100, p=p))
        source.push("tiny", [3, 3, 3])

        def tiny():
            records = [r for r in sink.records if r["key"] == "tiny"]
            # pulled toward the population (its histogram says d: 1.0), and within 0.05 of its target
            return records and records[-1]["probabilities"][3] < 0.5 and records[-1]["divergence"]["tv"] < 0.05

        await until(task, tiny, 60, "tiny published near the population")
        latest = [r for r in sink.records if r["key"] == "tiny"][-1]
        assert latest["empirical"] == [0.0, 0.0, 0.0, 1.0, 0.0]  # the snapshot's empirical stays the histogram
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{service.http.port}/metrics") as response:
                text = await response.text()
        concentration = next(float(line.split()[1]) for line in text.splitlines()
                             if line.startswith("gumbeld_prior_concentration "))
        assert 10 < concentration < 90, concentration  # drawn with 30
    finally:
        service.stopping.set()
        assert await asyncio.wait_for(task, SHUTDOWN_TIMEOUT + 5) == 0
