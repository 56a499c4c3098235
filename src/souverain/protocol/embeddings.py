"""`POST /v1/embeddings`: OpenAI's shape, plus what Mistral's adds (`id`, `output_dtype`)."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from .common import APIModel, Metadata, TokenCount, Usage, new_id
from .token_ids import decode_inputs, is_token_ids, text_or_token_ids

MAX_INPUTS = 2048


class EmbeddingRequest(APIModel):
    model: str = Field(min_length=1)
    # Texts are not empty (OpenAI refuses them too; the local engine answers 400).
    input: Annotated[
        str | list[str] | list[int] | list[list[int]],
        text_or_token_ids(MAX_INPUTS, min_length=1),
    ]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: TokenCount | None = None
    user: str | None = None
    # Mistral-specific fields that are not in OpenAI's spec.
    output_dimension: TokenCount | None = None
    output_dtype: Literal["float"] | None = None
    metadata: Metadata | None = None

    @field_validator("input")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("input must not be empty")
            # A flat list of ints is one input (token ids), bounded by token_ids.py.
            if len(value) > MAX_INPUTS and not isinstance(value[0], int):
                raise ValueError(f"at most {MAX_INPUTS} inputs per request")
        if is_token_ids(value):  # read as text from here on: DLP, quotas and engines see it
            return decode_inputs(value, field="input")
        return value

    def texts(self) -> list[str] | None:
        """The inputs as texts, or None when they are token ids."""
        if isinstance(self.input, str):
            return [self.input]
        if all(isinstance(item, str) for item in self.input):
            return list(self.input)  # type: ignore[arg-type]
        return None

    @property
    def wanted_dimensions(self) -> int | None:
        return self.dimensions or self.output_dimension


def render_embeddings(
    vectors: np.ndarray, *, model: str, usage: Usage, encoding_format: str
) -> dict[str, Any]:
    data = []
    for index, vector in enumerate(vectors):
        embedding: Any
        if encoding_format == "base64":
            embedding = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
        else:
            embedding = vector.astype(float).tolist()
        data.append({"object": "embedding", "embedding": embedding, "index": index})
    return {
        "id": new_id("embd"),
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    }
