"""daemon.api.pacing on /v1: requests over the rate wait their turn; one whose turn is too far off is 429."""
import asyncio
import time

import pytest

from daemon.api.pacing import Pacer
from daemon.api.published import Published
from tests.daemon.api.serving import api_client, publication


def test_a_pacer_needs_a_positive_rate():
    with pytest.raises(ValueError, match="rate > 0"):
        Pacer(0.0)


async def test_requests_over_the_rate_wait_and_those_too_far_off_are_refused():
    published = Published()
    release = publication({"k": [0.25] * 4})
    published.take(release.keys, release.values)
    async with api_client(published, pacer=Pacer(rate=20.0, max_wait=0.5)) as client:
        started = time.monotonic()
        answers = await asyncio.gather(*(client.get("/v1/keys/k") for _ in range(15)))
        elapsed = time.monotonic() - started
        statuses = sorted(answer.status for answer in answers)
        # Turns 50 ms apart: 11 fit within 0.5 s (at 0, 0.05, ..., 0.5 s), the other 4 are refused.
        assert statuses == [200] * 11 + [429] * 4, statuses
        refused = next(answer for answer in answers if answer.status == 429)
        assert refused.headers["Retry-After"] == "1"
        assert "api.max_reads_per_second" in (await refused.json())["detail"]
        assert elapsed >= 0.45  # the last of them waited for its turn
