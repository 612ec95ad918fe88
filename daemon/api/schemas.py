"""The shapes of ``/v1``'s requests and answers, as pydantic models: the OpenAPI document is made
from them (:mod:`daemon.api.openapi`), and the tests check answers against them."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..contract import Snapshot


class Problem(BaseModel):
    """A refused request (RFC 9457); some carry more members, e.g. ``key`` or ``unknown``."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="about:blank: the status says it all")
    title: str = Field(description="the status' phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what is wrong with this request")


class BatchGetRequest(BaseModel):
    keys: list[Annotated[str, Field(min_length=1)]] = Field(description="up to api.max_batch_keys keys")


class BatchGet(BaseModel):
    snapshots: dict[str, Snapshot] = Field(description="key → its latest snapshot, for the keys found")
    not_found: list[str] = Field(description="keys this instance does not hold")
    unavailable: list[str] = Field(description="keys not here while partitions are restored: ask again")


class KeyEntry(BaseModel):
    key: str
    events: int = Field(ge=0)
    version: int = Field(ge=1)
    published_at: str = Field(description="RFC 3339, UTC")
    age_seconds: float = Field(ge=0, description="seconds since it was published")


class KeyPage(BaseModel):
    keys: list[KeyEntry] = Field(description="in key order")
    next_cursor: str | None = Field(description="the cursor of the next page (the key it starts after); null on the last")


class Samples(BaseModel):
    key: str
    version: int = Field(ge=1, description="the snapshot drawn from")
    seed: int = Field(ge=0, description="the same seed and version draw the same samples")
    samples: list[str] = Field(description="category labels drawn from the learned distribution")


class ScoreRequest(BaseModel):
    events: list[str | int] | dict[str, int] = Field(description="categories, or counts per category")


class Score(BaseModel):
    key: str
    version: int = Field(ge=1, description="the snapshot scored against")
    events: int = Field(ge=1)
    log_likelihood: float = Field(le=0, description="of the whole batch, natural log")
    mean_surprise_bits: float = Field(ge=0, description="mean −log2 p of the batch's events")
    g_statistic: float = Field(ge=0)
    degrees_of_freedom: int = Field(ge=0)
    p_value: float = Field(ge=0, le=1, description="of a G-test of the batch against the learned distribution")
    event_log_likelihood: list[float] | dict[str, float] = Field(
        description="log p of each event (a list given) or of one event of each category (counts given)")


MODELS = (Problem, BatchGetRequest, BatchGet, KeyPage, Samples, ScoreRequest, Score)
