"""``/v1`` over a store filled by hand: every endpoint, its refusals, samples and scores."""
import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from daemon.api.metrics import ApiMetrics
from daemon.api.published import Published
from tests.daemon.api.serving import CATEGORIES, api_client, publication

TRUTH = [0.1, 0.2, 0.3, 0.4]


@pytest.fixture
def published() -> Published:
    published = Published()
    release = publication({"page/home": TRUTH, "page/about": [0.25] * 4, "user/7": [0.7, 0.1, 0.1, 0.1],
                           "certain": [1.0, 0.0, 0.0, 0.0]}, version=3)
    published.take(release.keys, release.values)
    return published


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json(content_type=None)
    assert body["status"] == status and body["detail"]
    return body


async def test_a_key_is_its_published_snapshot_with_its_version_as_etag(published):
    async with api_client(published) as client:
        response = await client.get("/v1/keys/page%2Fhome")
        assert response.status == 200 and response.headers["ETag"] == '"3"'
        assert await response.read() == published.get("page/home")
        again = await client.get("/v1/keys/page%2Fhome", headers={"If-None-Match": 'W/"2", "3"'})
        assert again.status == 304 and await again.read() == b""
        changed = await client.get("/v1/keys/page%2Fhome", headers={"If-None-Match": '"2"'})
        assert changed.status == 200


async def test_an_unknown_key_is_404_and_503_while_keys_may_be_on_their_way(published):
    class Restoring:
        restoring = True
    async with api_client(published) as client:
        body = await problem(await client.get("/v1/keys/nobody"), 404)
        assert body["key"] == "nobody"
    async with api_client(published, arrivals=Restoring()) as client:
        response = await client.get("/v1/keys/nobody")
        await problem(response, 503)
        assert response.headers["Retry-After"] == "1"
        assert (await client.get("/v1/keys/user%2F7")).status == 200  # keys that are here are answered


async def test_a_key_that_left_the_instance_is_no_longer_answered_nor_listed(published):
    async with api_client(published, owned={"user/7"}) as client:
        await problem(await client.get("/v1/keys/page%2Fhome"), 404)
        assert (await client.get("/v1/keys/user%2F7")).status == 200
        listed = await (await client.get("/v1/keys")).json()
        assert [entry["key"] for entry in listed["keys"]] == ["user/7"]


async def test_a_key_the_instance_holds_but_has_not_published_yet_is_503_not_404(published):
    async with api_client(published, owned={"user/7", "fresh"}) as client:
        response = await client.get("/v1/keys/fresh")
        assert "not published yet" in (await problem(response, 503))["detail"]
        assert response.headers["Retry-After"] == "1"
        await problem(await client.get("/v1/keys/stranger"), 404)
        body = await (await client.post("/v1/keys:batchGet", json={"keys": ["fresh", "stranger"]})).json()
        assert (body["unavailable"], body["not_found"]) == (["fresh"], ["stranger"])


async def test_batch_get_answers_each_key_found_or_not(published):
    async with api_client(published) as client:
        response = await client.post("/v1/keys:batchGet", json={"keys": ["user/7", "nobody", "page/home"]})
        body = await response.json()
        assert sorted(body["snapshots"]) == ["page/home", "user/7"]
        assert body["snapshots"]["user/7"] == orjson.loads(published.get("user/7"))
        assert (body["not_found"], body["unavailable"]) == (["nobody"], [])


async def test_batch_get_refuses_what_it_cannot_read(published):
    async with api_client(published, max_batch_keys=2, max_key_length=8, max_body_bytes=1024) as client:
        too_many = await problem(await client.post("/v1/keys:batchGet", json={"keys": ["a", "b", "c"]}), 400)
        assert "api.max_batch_keys" in too_many["detail"]
        assert "not JSON" in (await problem(await client.post("/v1/keys:batchGet", data=b"{"), 400))["detail"]
        await problem(await client.post("/v1/keys:batchGet", json=["a"]), 400)
        await problem(await client.post("/v1/keys:batchGet", json={"keys": [1]}), 400)
        long = await problem(await client.post("/v1/keys:batchGet", json={"keys": ["x" * 9]}), 400)
        assert "api.max_key_length" in long["detail"]
        await problem(await client.post("/v1/keys:batchGet", data=b" " * 2048), 413)


async def test_keys_are_listed_by_prefix_in_pages_with_events_version_and_age(published):
    async with api_client(published) as client:
        first = await (await client.get("/v1/keys", params={"prefix": "page/", "limit": "1"})).json()
        assert [entry["key"] for entry in first["keys"]] == ["page/about"]
        entry = first["keys"][0]
        assert (entry["events"], entry["version"], entry["published_at"]) == (100, 3, "2027-01-15T08:00:00.000Z")
        assert entry["age_seconds"] == 12.5
        second = await (await client.get("/v1/keys", params={"prefix": "page/", "limit": "1",
                                                             "cursor": first["next_cursor"]})).json()
        assert [entry["key"] for entry in second["keys"]] == ["page/home"] and second["next_cursor"] is None
        await problem(await client.get("/v1/keys", params={"limit": "0"}), 400)
        await problem(await client.get("/v1/keys", params={"limit": "many"}), 400)


async def test_samples_follow_the_learned_distribution_and_repeat_for_a_seed(published):
    async with api_client(published) as client:
        response = await client.get("/v1/keys/page%2Fhome/samples", params={"n": "10000", "seed": "42"})
        body = await response.json()
        assert (body["version"], body["seed"], len(body["samples"])) == (3, 42, 10_000)
        frequencies = np.array([body["samples"].count(c) for c in CATEGORIES]) / 10_000
        assert np.abs(frequencies - TRUTH).max() < 0.02  # 4 standard errors of the largest category
        again = await (await client.get("/v1/keys/page%2Fhome/samples", params={"n": "10000", "seed": "42"})).json()
        assert again["samples"] == body["samples"]
        unseeded = await (await client.get("/v1/keys/page%2Fhome/samples")).json()
        assert len(unseeded["samples"]) == 1 and isinstance(unseeded["seed"], int)
        await problem(await client.get("/v1/keys/page%2Fhome/samples", params={"n": "10001"}), 400)
        await problem(await client.get("/v1/keys/page%2Fhome/samples", params={"seed": "-1"}), 400)
        await problem(await client.get("/v1/keys/nobody/samples"), 404)


async def test_a_score_passes_a_batch_of_the_distribution_and_flags_a_shifted_one(published):
    rng = np.random.default_rng(7)
    same = [CATEGORIES[i] for i in rng.choice(4, size=2000, p=TRUTH)]
    shifted = [CATEGORIES[i] for i in rng.choice(4, size=2000, p=[0.25] * 4)]
    async with api_client(published) as client:
        fits = await (await client.post("/v1/keys/page%2Fhome/score", json={"events": same})).json()
        assert fits["p_value"] > 0.001 and fits["degrees_of_freedom"] == 3 and fits["events"] == 2000
        expected_bits = -sum(p * np.log2(p) for p in TRUTH)  # the entropy: a fitting batch's mean surprise
        assert fits["mean_surprise_bits"] == pytest.approx(expected_bits, abs=0.05)
        assert fits["event_log_likelihood"][:2] == pytest.approx([np.log(TRUTH[CATEGORIES.index(e)]) for e in same[:2]], rel=1e-6)
        flagged = await (await client.post("/v1/keys/page%2Fhome/score", json={"events": shifted})).json()
        assert flagged["p_value"] < 1e-6
        zero = await (await client.post("/v1/keys/certain/score", json={"events": ["a", "b"]})).json()
        assert zero["event_log_likelihood"][1] == pytest.approx(np.log(1e-12), rel=1e-3)   # floored, as the batch's
        assert zero["log_likelihood"] == pytest.approx(sum(zero["event_log_likelihood"]), rel=1e-9)
        counts = await (await client.post("/v1/keys/page%2Fhome/score", json={"events": {"a": 5, "d": 1}})).json()
        assert counts["events"] == 6 and counts["log_likelihood"] == pytest.approx(5 * np.log(0.1) + np.log(0.4), rel=1e-6)


async def test_a_score_names_what_it_cannot_score(published):
    async with api_client(published, max_score_events=10) as client:
        unknown = await problem(await client.post("/v1/keys/user%2F7/score", json={"events": ["a", "zebra"]}), 422)
        assert unknown["unknown"] == ["zebra"] and "zebra" in unknown["detail"]
        await problem(await client.post("/v1/keys/user%2F7/score", json={"events": []}), 422)
        await problem(await client.post("/v1/keys/user%2F7/score", json={"events": ["a"] * 11}), 400)
        await problem(await client.post("/v1/keys/user%2F7/score", json={"events": {"a": -1}}), 400)
        await problem(await client.post("/v1/keys/user%2F7/score", json={"events": [None]}), 400)
        await problem(await client.post("/v1/keys/user%2F7/score", json={"events": "a"}), 400)
        await problem(await client.post("/v1/keys/user%2F7/score", json={"categories": ["a"]}), 400)


async def test_a_token_guards_v1_and_every_refusal_is_a_problem(published):
    async with api_client(published, token="s3cret") as client:
        refused = await client.get("/v1/keys/user%2F7")
        await problem(refused, 401)
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        await problem(await client.get("/v1/keys/user%2F7", headers={"Authorization": "Bearer wrong"}), 401)
        allowed = await client.get("/v1/keys/user%2F7", headers={"Authorization": "Bearer s3cret"})
        assert allowed.status == 200
        headers = {"Authorization": "Bearer s3cret"}
        await problem(await client.get("/v1/nowhere", headers=headers), 404)
        await problem(await client.delete("/v1/keys/user%2F7", headers=headers), 405)


async def test_every_answer_is_counted_by_route_template_and_status(published):
    registry = CollectorRegistry()
    async with api_client(published, metrics=ApiMetrics(registry)) as client:
        await client.get("/v1/keys/user%2F7")
        await client.get("/v1/keys/user%2F7")
        await client.get("/v1/keys/nobody")
        await client.get("/v1/nothing-here")
    def count(endpoint: str, status: str) -> float:
        return registry.get_sample_value("gumbeld_api_requests_total", {"endpoint": endpoint, "status": status})
    assert count("/v1/keys/{key}", "200") == 2 and count("/v1/keys/{key}", "404") == 1  # no key in a label
    assert count("unmatched", "404") == 1
