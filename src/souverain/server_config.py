"""`server:` in the configuration: where to listen, and the limits on what clients send.

Its own module so that the HTTP-level limits sit together; `config.Settings` includes it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Slow and idle clients (souverain/http_server.py). A request's headers must be
    # complete this long after the connection opens or the previous response ends...
    header_timeout_s: float = Field(default=10.0, gt=0, le=600)
    # ...and be no larger than this.
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # ...and its body within this many seconds of the headers (408 otherwise).
    body_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # An idle keep-alive connection is closed after this many seconds.
    keep_alive_timeout_s: int = Field(default=5, ge=1, le=600)
    # Open connections; past it a new one evicts the one that has waited longest for
    # its headers, or, when every connection has a request in progress, gets a 503.
    max_connections: int = Field(default=1000, ge=1)
    # Entries of a request's `messages` array. OpenAI answers more than 2,048 with a 400
    # "array too long"; 100,000 tiny ones took seconds to validate and scan before the
    # engine refused them for its context: refused here, right after the JSON is read.
    max_messages: int = Field(default=2048, ge=1)
