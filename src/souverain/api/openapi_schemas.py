"""What the routes answer, as pydantic models, for the OpenAPI document only.

The request bodies are the protocol's own models (the ones the routes validate with); the
answers are rendered as plain dicts (protocol/*.py `render_*`, identity/directory.py), so
their shapes are written down here. Each model lists the fields every answer carries
(required) and lets others through (`extra="allow"`): the property-based run
(tests/test_schemathesis.py) checks real answers against these, so a renderer that drops
or retypes a field fails there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---- errors (errors.py: `SouverainError.body`) ---------------------------------------------


class ErrorDetail(_Out):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, ...")
    param: str | None
    code: str | None


class ErrorResponse(_Out):
    """Every error, whatever the route (OpenAI's shape; the mistralai SDK reads it too)."""

    error: ErrorDetail


# ---- model calls ---------------------------------------------------------------------------


class UsageOut(_Out):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class ToolCallOut(_Out):
    id: str | None
    type: str
    function: dict[str, Any]


class AssistantMessage(_Out):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ToolCallOut] | None = None


class Choice(_Out):
    index: int
    message: AssistantMessage
    finish_reason: str | None


class ChatCompletion(_Out):
    """`chat.completion` (also the answer of Mistral's FIM endpoint)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: UsageOut


class TextChoice(_Out):
    text: str
    index: int
    logprobs: dict[str, Any] | None
    finish_reason: str | None


class TextCompletion(_Out):
    """`text_completion`: the legacy completions endpoint's answer; a stream sends chunks
    of the same shape (`choices[].text`), then a usage-only one with include_usage."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextChoice]
    usage: UsageOut


class TextCompletionChunk(_Out):
    """One `data:` event of a legacy completions stream: usage only on the last chunk
    (a usage-only one with `choices: []` when `stream_options.include_usage` is set)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextChoice]
    usage: UsageOut | None = None


class ChunkChoice(_Out):
    index: int
    delta: dict[str, Any]
    finish_reason: str | None


class ChatCompletionChunk(_Out):
    """One `data:` event of a stream; the stream ends with `data: [DONE]`. A stream that
    fails after it started sends a chunk with `finish_reason: "error"`, an `ErrorResponse`
    event, then `[DONE]`."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageOut | None = None


class Embedding(_Out):
    object: Literal["embedding"]
    embedding: list[float] | str = Field(description="floats, or base64 little-endian float32")
    index: int


class EmbeddingList(_Out):
    id: str
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: UsageOut


class ModelObject(_Out):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    type: str
    capabilities: dict[str, bool]
    max_context_length: int
    aliases: list[str]


class ModelList(_Out):
    object: Literal["list"]
    data: list[ModelObject]


class OCRPage(_Out):
    index: int
    markdown: str
    images: list[dict[str, Any]]
    dimensions: dict[str, Any] | None


class OCRResponse(_Out):
    pages: list[OCRPage]
    model: str
    usage_info: dict[str, Any]


class ResponseObject(_Out):
    """A Responses API `response` (docs/responses.md)."""

    id: str
    object: Literal["response"]
    status: str
    output: list[dict[str, Any]]


class ResponseEvent(_Out):
    """One typed event of a Responses API stream (`response.output_text.delta`, ...)."""

    type: str


# ---- directory, keys, usage (`/admin/v1`) --------------------------------------------------


class Tenant(_Out):
    object: Literal["tenant"]
    id: int
    name: str
    created_at: int
    limits: dict[str, Any]


class TeamOrUser(_Out):
    """A team (`object: team`, with `members`) or a user (`object: user` or `service`,
    with `role` and `disabled`)."""

    object: str
    id: int
    name: str
    tenant: str | None
    tenant_id: int
    created_at: int
    limits: dict[str, Any]


class Deleted(_Out):
    object: str
    id: int | str
    deleted: bool


class ApiKey(_Out):
    """A key as listed (never its secret); `key`, the secret, only in the creation's answer."""

    id: int
    name: str
    role: str


class ObjectList(_Out):
    object: Literal["list"]
    data: list[dict[str, Any]]


class AnyObject(_Out):
    """A JSON object; its fields are described in the route's documentation."""


# ---- libraries (`/v1/libraries`) -----------------------------------------------------------


class Library(_Out):
    id: str
    name: str
    created_at: str | None
    owner_type: str | None
    total_size: int
    nb_documents: int


class Document(_Out):
    id: str
    library_id: str
    name: str
    process_status: str
    processing_status: str


class Paged(_Out):
    """Mistral's paged listing: `pagination` and `data`."""

    pagination: dict[str, Any]
    data: list[dict[str, Any]]


# ---- health ---------------------------------------------------------------------------------


class Health(_Out):
    status: str


class Readiness(_Out):
    status: Literal["ready", "not ready"]
    store: bool
    models: dict[str, bool]


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    ErrorResponse,
    ChatCompletion,
    ResponseObject,
    ChatCompletionChunk,
    TextCompletion,
    EmbeddingList,
    ModelObject,
    ModelList,
    OCRResponse,
    Tenant,
    TeamOrUser,
    Deleted,
    ApiKey,
    ObjectList,
    AnyObject,
    Library,
    Document,
    Paged,
    Health,
    Readiness,
)
