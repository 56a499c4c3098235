"""What an admin sends to register a connector: checked here, before anything is stored.

A connector is either a streamable HTTP URL or (platform owner only) a command run on the
gateway host over stdio. Headers and environment variables are secrets: accepted here,
sealed by the store, and from then on shown by name only. Credentials belong in headers:
a URL with user information, a query or a fragment is refused, so that the one field an
admin sees in full never carries a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import InvalidRequest

NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")  # an RFC 9110 token
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
# Headers the HTTP client sets itself, or that would let a connector pose as another host.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "mcp-session-id"}
)
MAX_SECRETS = 32
MIN_TIMEOUT_S, MAX_TIMEOUT_S, DEFAULT_TIMEOUT_S = 0.1, 300.0, 30.0

Secret = str


class ConnectorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    transport: Literal["http", "stdio"] = "http"
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    command: str | None = Field(default=None, min_length=1, max_length=1000)
    args: list[str] = Field(default_factory=list, max_length=64)
    headers: dict[str, Secret] = Field(default_factory=dict, max_length=MAX_SECRETS)
    env: dict[str, Secret] = Field(default_factory=dict, max_length=MAX_SECRETS)
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, ge=MIN_TIMEOUT_S, le=MAX_TIMEOUT_S)
    description: str | None = Field(default=None, max_length=2000)
    tenant: str | None = Field(default=None, max_length=100)  # the platform owner only

    @model_validator(mode="after")
    def _one_transport(self) -> ConnectorCreate:
        # Rules between fields: InvalidRequest names the field (pydantic would name none).
        if self.transport == "http":
            if self.url is None:
                raise InvalidRequest("an http connector needs its url", param="url")
            if self.command is not None or self.args or self.env:
                raise InvalidRequest(
                    "command, args and env are for stdio connectors", param="command"
                )
            _named(check_url, self.url, "url")
        else:
            if self.command is None:
                raise InvalidRequest("a stdio connector needs its command", param="command")
            if self.url is not None or self.headers:
                raise InvalidRequest("url and headers are for http connectors", param="url")
        for arg in (self.command or "", *self.args):
            if len(arg) > 1000 or "\x00" in arg:
                raise InvalidRequest(
                    "each argument is at most 1000 characters, without NUL", param="args"
                )
        for name, value in self.headers.items():
            if not HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
                raise InvalidRequest(
                    f"{name[:100]!r} is not a header a connector may set", param="headers"
                )
            _named(_check_value, value, "headers")
        for name, value in self.env.items():
            if not ENV_NAME.match(name):
                raise InvalidRequest(
                    f"{name[:100]!r} is not an environment variable name", param="env"
                )
            _named(_check_value, value, "env")
        return self


def _named(check: Callable[[str], None], value: str, param: str) -> None:
    try:
        check(value)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param=param) from None


def _check_value(value: str) -> None:
    if len(value) > 8192 or any(c in value for c in "\r\n\x00"):
        raise ValueError("a secret value is at most 8192 characters, on one line")


def check_url(url: str) -> None:
    """http(s), a host, no credentials, query or fragment (put credentials in headers)."""
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("the url may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"the url is not valid: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the url must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the url may not carry credentials: put them in headers")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("the url may not carry a query or a fragment: put secrets in headers")
    del port
