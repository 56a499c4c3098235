"""`POST /v1/chat/completions` (OpenAI) and Mistral's same-named endpoint.

Fields follow the order of OpenAI's reference; Mistral-only fields are marked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from .common import MAX_COUNT, APIModel, Metadata, Seed, TokenCount, Usage, drop_none, new_id, now

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class ContentPart(APIModel):
    type: str
    text: str | None = None


class FunctionCall(APIModel):
    name: str
    arguments: str | dict[str, Any] = "{}"


class ToolCall(APIModel):
    id: str | None = None
    type: str = "function"
    function: FunctionCall
    index: int | None = Field(default=None, ge=0, le=MAX_COUNT)  # Mistral sends it in messages


class ChatMessage(APIModel):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    prefix: bool = False  # Mistral: the assistant message is a prefix to continue

    def text(self) -> str:
        """The message's text; non-text parts are rejected by the engines that can't read them."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")

    def part_types(self) -> set[str]:
        if isinstance(self.content, list):
            return {part.type for part in self.content}
        return set()


class FunctionDefinition(APIModel):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(APIModel):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class DocumentLibraryTool(APIModel):
    """Mistral's built-in `document_library` tool: ground the answer on these libraries.
    The gateway runs it itself (library/grounding.py); it never reaches an engine."""

    type: Literal["document_library"]
    library_ids: list[str] = Field(min_length=1, max_length=32)


class JSONSchemaFormat(APIModel):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


# What `_schema_given` checks, in the document: type json_schema needs a non-empty schema.
NEEDS_SCHEMA: JsonDict = {
    "if": {"required": ["type"], "properties": {"type": {"const": "json_schema"}}},
    "then": {
        "required": ["json_schema"],
        "properties": {
            "json_schema": {
                "type": "object",
                "required": ["schema"],
                "properties": {"schema": {"type": "object", "minProperties": 1}},
            }
        },
    },
}


class ResponseFormat(APIModel):
    model_config = ConfigDict(json_schema_extra=NEEDS_SCHEMA)

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and (
            self.json_schema is None or not self.json_schema.schema_
        ):
            raise ValueError("response_format.json_schema.schema is required for type json_schema")
        return self


class StreamOptions(APIModel):
    include_usage: bool = False


class ChatCompletionRequest(APIModel):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    n: int | None = Field(default=None, ge=1, le=1)  # several choices: not supported yet
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: ResponseFormat | None = None
    seed: Seed | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[Tool | DocumentLibraryTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    user: str | None = None
    metadata: Metadata | None = None
    # Mistral-specific fields that are not in OpenAI's spec.
    random_seed: Seed | None = None
    safe_prompt: bool | None = None
    # Souverain extension: ground a plain chat on document libraries (as the tool does).
    library_ids: list[str] | None = Field(default=None, min_length=1, max_length=32)

    @property
    def grounding_libraries(self) -> list[str]:
        """Every library this request asks to be grounded on (extension and tools)."""
        named = list(self.library_ids or [])
        for tool in self.tools or ():
            if isinstance(tool, DocumentLibraryTool):
                named.extend(tool.library_ids)
        return list(dict.fromkeys(named))

    @field_validator("tool_choice")
    @classmethod
    def _any_is_required(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        # Mistral spells OpenAI's "required" as "any" (langchain-mistralai sends it); OpenAI
        # servers such as llama.cpp's refuse "any". The mistral engine spells it back.
        return "required" if value == "any" else value

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 16:
            raise ValueError("at most 16 stop sequences")
        return value

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def effective_seed(self) -> int | None:
        return self.seed if self.seed is not None else self.random_seed

    @property
    def effective_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def logprobs_top(self) -> int | None:
        """How many alternatives per token to report, or None: no logprobs wanted."""
        return (self.top_logprobs or 0) if self.logprobs else None

    @property
    def wants_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"

    def json_schema(self) -> dict[str, Any] | None:
        """The schema the output must follow; `{}` means any JSON object; None: free text."""
        fmt = self.response_format
        if fmt is None or fmt.type == "text":
            return None
        if fmt.type == "json_object":
            return {}
        assert fmt.json_schema is not None and fmt.json_schema.schema_ is not None
        return fmt.json_schema.schema_


def finish_reason(value: object) -> FinishReason:
    """An engine's finish reason in our vocabulary (unknown ones read as `stop`)."""
    if value in ("stop", "length", "tool_calls", "content_filter", "error"):
        return value
    return "stop"


# ---- what engines produce ---------------------------------------------------------


@dataclass(slots=True)
class ChatDelta:
    """One step of a generation, whatever the engine: text, tool-call fragments, the end."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    logprobs: list[dict[str, Any]] | None = None  # backends/logprobs.py, one per token


@dataclass(slots=True)
class Completion:
    """A whole generation, assembled from deltas or returned by an engine at once."""

    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)
    logprobs: list[dict[str, Any]] | None = None

    def add(self, delta: ChatDelta) -> None:
        if delta.content:
            self.content += delta.content
        if delta.logprobs is not None:
            self.logprobs = [*(self.logprobs or ()), *delta.logprobs]
        for fragment in delta.tool_calls or ():
            _merge_tool_call(self.tool_calls, fragment)
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        if delta.usage:
            self.usage = delta.usage


def _merge_tool_call(calls: list[dict[str, Any]], fragment: dict[str, Any]) -> None:
    """Streams send tool calls in pieces keyed by `index`; join the argument strings."""
    index = fragment.get("index", len(calls))
    while len(calls) <= index:
        calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    call = calls[index]
    if fragment.get("id"):
        call["id"] = fragment["id"]
    function = fragment.get("function") or {}
    if function.get("name"):
        call["function"]["name"] = function["name"]
    arguments = function.get("arguments")
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments)
    if arguments:
        call["function"]["arguments"] += arguments


# ---- responses ---------------------------------------------------------------------


def render_completion(
    completion: Completion,
    *,
    model: str,
    request_id: str | None = None,
    citations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": completion.content}
    if completion.tool_calls:
        message["tool_calls"] = [
            {key: value for key, value in call.items() if key != "index"}
            for call in completion.tool_calls
        ]
    return {
        "id": request_id or new_id("chatcmpl"),
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": completion.finish_reason,
                "logprobs": chat_logprobs(completion.logprobs),
            }
        ],
        "usage": completion.usage.as_dict(),
        **({"citations": citations} if citations is not None else {}),
    }


class ChunkRenderer:
    """Builds the `chat.completion.chunk` objects of one stream.

    The role goes on the first chunk; `finish_reason` is present and null until the last
    content chunk. Usage is sent exactly once, since clients that add chunks up (langchain,
    pydantic-ai) would count it twice: with `stream_options.include_usage`, on a usage-only
    chunk with `choices: []` after the finish (OpenAI's spec); without it, on the last
    content chunk (Mistral's habit, read by its SDK), because clients that read
    `choices[0]` on every chunk break on a chunk without choices.
    """

    def __init__(
        self,
        *,
        model: str,
        include_usage_chunk: bool,
        request_id: str | None = None,
        citations: list[dict[str, Any]] | None = None,
    ):
        self.id = request_id or new_id("chatcmpl")
        self.created = now()
        self.model = model
        self.include_usage_chunk = include_usage_chunk
        self.citations = citations  # on the chunk that carries finish_reason
        self._sent_role = False

    def _chunk(self, choices: Sequence[dict[str, Any]], usage: Usage | None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": list(choices),
        }
        if usage is not None:
            chunk["usage"] = usage.as_dict()
        return chunk

    def delta(self, delta: ChatDelta) -> list[dict[str, Any]]:
        body: dict[str, Any] = {}
        if not self._sent_role:
            body["role"] = "assistant"
            self._sent_role = True
        if delta.content is not None:
            body["content"] = delta.content
        if delta.tool_calls:
            body["tool_calls"] = delta.tool_calls
        if delta.logprobs:
            body.setdefault("content", "")  # OpenAI's chunks with logprobs carry content
        if not body and delta.finish_reason is None and delta.usage is None:
            return []
        if delta.finish_reason is not None and "content" not in body and "tool_calls" not in body:
            body.setdefault("content", "")
        choice = {
            "index": 0,
            "delta": body,
            "finish_reason": delta.finish_reason,
            "logprobs": chat_logprobs(delta.logprobs),
        }
        usage = delta.usage if delta.finish_reason is not None else None
        usage_apart = usage is not None and self.include_usage_chunk
        chunks = [self._chunk([choice], None if usage_apart else usage)]
        if delta.finish_reason is not None and self.citations is not None:
            chunks[0]["citations"] = self.citations
        if usage_apart:
            chunks.append(self._chunk([], usage))
        return chunks


def chat_logprobs(entries: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """A choice's `logprobs` in OpenAI's chat shape, or null when none were asked for."""
    return None if entries is None else {"content": entries, "refusal": None}


def completion_request_options(request: ChatCompletionRequest) -> dict[str, Any]:
    """The sampling options every engine understands, in OpenAI's names."""
    return drop_none(
        {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.effective_max_tokens,
            "stop": request.stop_sequences or None,
            "seed": request.effective_seed,
            "presence_penalty": request.presence_penalty,
            "frequency_penalty": request.frequency_penalty,
        }
    )
