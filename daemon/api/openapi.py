"""``/v1/openapi.json``: the OpenAPI 3.1 document of ``/v1``, made from :mod:`daemon.api.schemas`.

The document states the limits of the settings it is made with; ``docs/openapi.json`` holds it
for the defaults (``python -m daemon.api.openapi`` prints it; a test keeps the two in step).
"""
from __future__ import annotations

import orjson
from pydantic.json_schema import models_json_schema

from .schemas import MODELS
from .settings import ApiSettings

REF = "#/components/schemas/{model}"


def openapi(settings: ApiSettings) -> dict:
    """The OpenAPI document of ``/v1`` under ``settings``' limits."""
    _, defs = models_json_schema([(model, "validation") for model in MODELS], ref_template=REF)
    schemas = defs["$defs"]
    keys = schemas["BatchGetRequest"]["properties"]["keys"]
    keys["maxItems"], keys["items"]["maxLength"] = settings.max_batch_keys, settings.max_key_length
    document = {
        "openapi": "3.1.0",
        "info": {"title": "gumbeld", "version": "1",  # of /v1, not of the package
                 "description": "What gumbeld learned, per key: the latest snapshot, samples drawn from "
                                "it, the surprise of new events, and a stream of updates."},
        "paths": _paths(settings),
        "components": {"schemas": schemas},
    }
    if settings.token is not None:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def _paths(s: ApiSettings) -> dict:
    key = {"name": "key", "in": "path", "required": True, "description": "the key, percent-encoded",
           "schema": {"type": "string", "minLength": 1, "maxLength": s.max_key_length}}
    return {
        "/v1/keys/{key}": {"get": _operation(
            "getKey", "The key's latest snapshot; its version is the ETag.", [key, {
                "name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}}],
            _json("Snapshot", etag=True), {"304": {"description": "the snapshot is the one named"}},
            problems=(400, 404, 503))},
        "/v1/keys:batchGet": {"post": _operation(
            "batchGetKeys", "The latest snapshot of each of up to api.max_batch_keys keys.", [],
            _json("BatchGet"), body="BatchGetRequest", problems=(400, 413))},
        "/v1/keys": {"get": _operation(
            "listKeys", "Keys with their events, version and age, in key order, a page at a time.", [
                _query("prefix", {"type": "string"}), _query("limit", _integer(1, s.max_page)),
                _query("cursor", {"type": "string", "description": "next_cursor of the previous page"})], _json("KeyPage"), problems=(400,))},
        "/v1/keys/{key}/samples": {"get": _operation(
            "sampleKey", "Category labels drawn from the learned distribution.", [
                key, _query("n", _integer(1, s.max_samples)), _query("seed", _integer(0, 2**63 - 1))],
            _json("Samples"), problems=(400, 404, 503))},
        "/v1/keys/{key}/score": {"post": _operation(
            "scoreEvents", "How well a batch of events fits the learned distribution.", [key],
            _json("Score"), body="ScoreRequest", problems=(400, 404, 413, 422, 503))},
        "/v1/stream": {"get": _operation(
            "streamUpdates", "Snapshot updates of the keys with a prefix, as Server-Sent Events.",
            [_query("prefix", {"type": "string"})],
            {"description": "events snapshot, evicted and dropped", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            problems=(503,))},
        "/v1/openapi.json": {"get": _operation(
            "openapi", "This document.", [], {"description": "OpenAPI 3.1",
                                              "content": {"application/json": {"schema": {"type": "object"}}}})},
    }


def _operation(operation_id: str, summary: str, parameters: list, ok: dict, more: dict | None = None, *,
               body: str | None = None, problems: tuple[int, ...] = ()) -> dict:
    responses = {"200": ok, **(more or {}), "401": _problem("no or a wrong bearer token (api.token)"),
                 "429": _problem("gumbeld run only: more requests a second than api.max_reads_per_second; see Retry-After")}
    for status in problems:
        responses[str(status)] = _problem({400: "the request is malformed", 404: "no snapshot of the key here",
                                           413: "the body is larger than api.max_body_bytes",
                                           422: "a category the model does not know, or nothing to score",
                                           503: "not here yet (partitions are restored, or the key is not published yet), or too many streams"}[status])
    operation = {"operationId": operation_id, "summary": summary, "parameters": parameters, "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"$ref": REF.format(model=body)}}}}
    return operation


def _json(model: str, etag: bool = False) -> dict:
    response = {"description": "OK", "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}}}
    if etag:
        response["headers"] = {"ETag": {"description": "the snapshot's version, quoted", "schema": {"type": "string"}}}
    return response


def _problem(description: str) -> dict:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}}


def _query(name: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _integer(low: int, high: int) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high}


if __name__ == "__main__":
    print(orjson.dumps(openapi(ApiSettings()), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
