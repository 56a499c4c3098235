"""Pieces shared by every surface: the base request model and usage figures."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..jsonsafe import check_depth

# A numeric id (user, team, tenant, key) in a body: PostgreSQL's integer columns hold 32
# bits, and a larger value is an overflow in the driver (a 500), not "no such user".
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]

# `metadata` is free-form tags for the caller's own bookkeeping (and a classification
# claim): small and shallow. OpenAI allows 16 string pairs; this is looser, and bounded.
METADATA_MAX_DEPTH = 8
METADATA_MAX_BYTES = 16 * 1024


# Bounds for the counts and seeds of a request: what an engine, a JSON encoder (64-bit
# integers) and a database column can hold. 1e308 is an integer to JSON Schema; without a
# bound it became a 309-digit int that no encoder could send upstream (a 500).
MAX_COUNT = 2**31 - 1
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1
TokenCount = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Seed = Annotated[int, Field(ge=SEED_MIN, le=SEED_MAX)]


def _integral(value: Any) -> Any:
    """5.0 read as 5, in a value or a list of them: JSON Schema's `integer` is any number
    without a fraction (and some JSON writers, Python's among them, write 5.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list) and any(isinstance(item, float | list) for item in value):
        return [_integral(item) for item in value]
    return value


class StrictModel(BaseModel):
    """A request body read strictly, as the document types it: no `"5"` for 5, no `0`
    for false, no `"1.5"` for a number. JSON integers fill `number` fields (`temperature:
    1`), and numbers without a fraction fill `integer` ones (5.0), as JSON Schema says."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _integral_numbers(cls, data: Any) -> Any:
        # Fields only, not inside free-form objects (metadata, schemas): nested models
        # see to their own fields. A float field reads 5 as 5.0 again.
        if isinstance(data, dict):
            return {key: _integral(value) for key, value in data.items()}
        return data


class APIModel(StrictModel):
    """Every request body of the model and library APIs.

    OpenAI and Mistral both add fields over time: unknown fields are accepted, and the
    ones we know are acted on, read strictly (StrictModel) as `/openapi.json`, generated
    from these models, types them.
    """

    model_config = ConfigDict(extra="allow")


# The document's schema of a shape the models read only to refuse it by name (a 400 that
# says why): no request matching it is accepted, so the document allows none.
REFUSED: dict[str, Any] = {"not": {}, "description": "Not accepted here (a 400 says why)."}


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
