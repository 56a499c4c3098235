"""Pieces shared by every surface: the base request model and usage figures."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..jsonsafe import check_depth


def _integral(value: Any) -> Any:
    """5.0 read as 5: JSON Schema's `integer` is any number without a fraction (and some
    JSON writers, Python's among them, write 5.0). Anything else is left to strict mode,
    which refuses `"5"`, `true` and 5.5."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer field of a request body (strict: no string, no boolean, no fraction).
Int = Annotated[int, BeforeValidator(_integral)]

# A numeric id (user, team, tenant, key) in a body: PostgreSQL's integer columns hold 32
# bits, and a larger value is an overflow in the driver (a 500), not "no such user".
Id = Annotated[Int, Field(ge=1, le=2**31 - 1)]

# `metadata` is free-form tags for the caller's own bookkeeping (and a classification
# claim): small and shallow. OpenAI allows 16 string pairs; this is looser, and bounded.
METADATA_MAX_DEPTH = 8
METADATA_MAX_BYTES = 16 * 1024


class APIModel(BaseModel):
    """Every request body of the model and library APIs.

    OpenAI and Mistral both add fields over time: unknown fields are accepted, and the
    ones we know are acted on. Known fields are read strictly, as the document types them
    (`/openapi.json` is generated from these models): no `"5"` for 5, no `0` for false, no
    `"1.5"` for a number. JSON integers still fill `number` fields, as JSON Schema says
    and as the SDKs send them (`temperature: 1`).
    """

    model_config = ConfigDict(extra="allow", strict=True)


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
