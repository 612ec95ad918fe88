"""The OpenAPI document: checked in for the default settings, valid, and true to the answers."""
import json
from pathlib import Path

import jsonschema
import orjson

from daemon.api.openapi import openapi
from daemon.api.published import Published
from daemon.api.settings import ApiSettings
from tests.daemon.api.serving import api_client, publication

CHECKED_IN = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def test_the_checked_in_document_is_the_one_served_with_the_defaults():
    assert json.loads(CHECKED_IN.read_text()) == openapi(ApiSettings()), \
        "regenerate: python -m daemon.api.openapi > docs/openapi.json"


def test_the_document_states_the_limits_and_the_token_of_its_settings():
    document = openapi(ApiSettings(max_samples=7, token="t"))
    n = next(p for p in document["paths"]["/v1/keys/{key}/samples"]["get"]["parameters"] if p["name"] == "n")
    assert n["schema"]["maximum"] == 7 and document["security"] == [{"bearer": []}]


async def test_each_answer_fits_its_schema_in_the_served_document():
    published = Published()
    release = publication({"k": [0.1, 0.2, 0.3, 0.4]})
    published.take(release.keys, release.values)
    async with api_client(published) as client:
        document = await (await client.get("/v1/openapi.json")).json()

        def check(body, status: str, path: str, method: str) -> None:
            content = document["paths"][path][method]["responses"][status]["content"]
            schema = next(iter(content.values()))["schema"]
            jsonschema.validate(body, {**schema, "components": document["components"]})

        check(await (await client.get("/v1/keys/k")).json(), "200", "/v1/keys/{key}", "get")
        check(await (await client.get("/v1/keys/nobody")).json(content_type=None), "404", "/v1/keys/{key}", "get")
        check(await (await client.post("/v1/keys:batchGet", json={"keys": ["k", "x"]})).json(), "200",
              "/v1/keys:batchGet", "post")
        check(await (await client.get("/v1/keys")).json(), "200", "/v1/keys", "get")
        check(await (await client.get("/v1/keys/k/samples?n=3")).json(), "200", "/v1/keys/{key}/samples", "get")
        for events in (["a", "d"], {"b": 2}):
            check(orjson.loads(await (await client.post("/v1/keys/k/score", json={"events": events})).read()),
                  "200", "/v1/keys/{key}/score", "post")
