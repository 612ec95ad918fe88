"""Errors of ``/v1`` as problem details (RFC 9457): ``application/problem+json`` naming what is wrong.

>>> response = Problem(404, "no snapshot of key 'a'", key="a").response()
>>> response.status, response.content_type, orjson.loads(response.body)["detail"]
(404, 'application/problem+json', "no snapshot of key 'a'")
"""
from __future__ import annotations

from http import HTTPStatus

import orjson
from aiohttp import web

CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """A request ``/v1`` cannot answer: raised by a handler, answered by :func:`problems`."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers, self.extra = status, detail, headers or {}, extra

    def response(self) -> web.Response:
        body = {"type": "about:blank", "title": HTTPStatus(self.status).phrase, "status": self.status,
                "detail": self.detail, **self.extra}
        return web.Response(status=self.status, body=orjson.dumps(body), content_type=CONTENT_TYPE,
                            headers=self.headers)


def of_http_error(error: web.HTTPException) -> Problem:
    """aiohttp's own refusals (no such route, method, body too large) as problems."""
    headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
    detail = {404: "no such endpoint; see /v1/openapi.json",
              405: f"method not allowed; allowed: {error.headers.get('Allow', '')}",
              413: "request body too large (api.max_body_bytes)"}.get(error.status, error.reason)
    return Problem(error.status, detail, headers=headers)
