"""Settings of the read API (``api.*``): who may ask, and how much one request may ask for."""
from __future__ import annotations

from pydantic import Field, SecretStr

from ..setting_sections import Section


class ApiSettings(Section):
    enabled: bool = Field(True, description="serve /v1 (a key's snapshot, samples, scores, a stream of updates) on the HTTP server")
    token: SecretStr | None = Field(None, description="when set, /v1 requires \"Authorization: Bearer <token>\"; /livez, /readyz and /metrics stay open")
    max_reads_per_second: float = Field(500.0, ge=0, description="gumbeld run: /v1 requests answered per second at most, so readers cannot take the CPU of ingest and training; a request beyond it waits its turn, and one whose turn is over 1 s away gets 429 with Retry-After; 0 = no limit. gumbeld serve is not limited (run more of them)")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="request bodies larger than this are refused (413)")
    max_key_length: int = Field(1024, ge=1, description="longest key a request may name, in characters")
    max_batch_keys: int = Field(1000, ge=1, description="keys in one POST /v1/keys:batchGet at most")
    max_page: int = Field(1000, ge=1, description="keys in one page of GET /v1/keys at most")
    max_samples: int = Field(10_000, ge=1, description="n of GET /v1/keys/{key}/samples at most")
    max_score_events: int = Field(100_000, ge=1, description="events in one POST /v1/keys/{key}/score at most")
    max_streams: int = Field(64, ge=0, description="open GET /v1/stream connections at most; past it, 503")
    stream_queue: int = Field(10_000, ge=1, description="updates a stream client may fall behind by before it is dropped")
