"""Pieces shared by every surface: the base request model and usage figures."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..jsonsafe import check_depth

# A numeric id (user, team, tenant, key) in a body: PostgreSQL's integer columns hold 32
# bits, and a larger value is an overflow in the driver (a 500), not "no such user".
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]

# `metadata` is free-form tags for the caller's own bookkeeping (and a classification
# claim): small and shallow. OpenAI allows 16 string pairs; this is looser, and bounded.
METADATA_MAX_DEPTH = 8
METADATA_MAX_BYTES = 16 * 1024


class APIModel(BaseModel):
    # OpenAI and Mistral both add fields over time: accept them, act on the ones we know.
    model_config = ConfigDict(extra="allow")


def _bounded_metadata(value: dict[str, Any]) -> dict[str, Any]:
    check_depth(value, METADATA_MAX_DEPTH, param="metadata")
    try:
        size = len(orjson.dumps(value))
    except TypeError:  # not JSON (only from code that built the request itself)
        raise ValueError("metadata must be JSON") from None
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"metadata is larger than {METADATA_MAX_BYTES} bytes as JSON")
    return value


# The `metadata` field of every request schema.
Metadata = Annotated[dict[str, Any], AfterValidator(_bounded_metadata)]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


def drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}
