"""`POST /v1/responses`: OpenAI's Responses API, as the openai and mistralai SDKs send it.

Fields follow the order of OpenAI's reference. What Souverain cannot honour (built-in
tools, background runs, reasoning, prompt templates, conversations…) is refused with a
400 that names the parameter (`unsupported`), never silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from ..errors import InvalidRequest
from .common import REFUSED, APIModel, Metadata, TokenCount

NULL = {"type": "null"}


# `reasoning` is accepted only without options: an object whose values are all null.
ALL_NULL = {"anyOf": [{"type": "object", "additionalProperties": NULL}, NULL]}


# The tool choices agents/runtime.py `_tool_choice` reads; it refuses the rest (400).
TOOL_CHOICE = {
    "anyOf": [
        {"enum": ["auto", "none", "required"]},
        {
            "type": "object",
            "required": ["type", "name"],
            "properties": {"type": {"const": "function"}, "name": {"type": "string"}},
        },
        NULL,
    ]
}


TEXT_OUTPUT = {
    "anyOf": [
        {"type": "string"},
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {
                        "type": "object",
                        "required": ["type", "text"],
                        "properties": {
                            "type": {"enum": ["input_text", "output_text"]},
                            "text": {"type": "string"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["type", "refusal"],
                        "properties": {
                            "type": {"const": "refusal"},
                            "refusal": {"type": "string"},
                        },
                    },
                ]
            },
        },
    ]
}


def _doc(schema: dict[str, Any]) -> WithJsonSchema:
    """What the document says of a field read loosely so that `unsupported` can refuse
    the rest by name (a 400 with code unsupported_parameter): the values served."""
    return WithJsonSchema(schema)


def _only(*values: object) -> WithJsonSchema:
    return _doc({"enum": list(values)})


def _named_function(schema: dict[str, Any]) -> None:
    schema["required"] = ["type", "name"]
    schema["properties"]["name"] = {"type": "string", "minLength": 1, "maxLength": 64}


class InputText(APIModel):
    type: Literal["input_text"]
    text: str


class OutputText(APIModel):
    type: Literal["output_text"]
    text: str


class Refusal(APIModel):
    type: Literal["refusal"]
    refusal: str


def _image_by_url(schema: dict[str, Any]) -> None:
    schema["required"] = ["type", "image_url"]
    schema["properties"]["image_url"] = {"type": "string", "minLength": 1}


class InputImage(APIModel):
    # Only images given by image_url are read (agents/response_items.py refuses the rest, 400).
    model_config = ConfigDict(json_schema_extra=_image_by_url)

    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputFile(APIModel):
    """Read so that its refusal names it (no files here): the document allows none."""

    type: Literal["input_file"]

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return REFUSED


ContentPart = Annotated[
    InputText | OutputText | Refusal | InputImage | InputFile, Field(discriminator="type")
]


class MessageItem(APIModel):
    type: Literal["message"] = "message"
    id: str | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    status: str | None = None


class FunctionCallItem(APIModel):
    type: Literal["function_call"]
    id: str | None = None
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    status: str | None = None


class FunctionCallOutputItem(APIModel):
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: str = Field(min_length=1)
    # Only text comes back from a function (agents/response_items.py refuses other parts, 400).
    output: Annotated[str | list[ContentPart], _doc(TEXT_OUTPUT)]
    status: str | None = None


class UnsupportedItem(APIModel):
    """Items of the built-in tools, reasoning and references: refused by `unsupported`
    (400, naming the item); the document allows none."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return REFUSED

    type: Literal[
        "item_reference", "reasoning", "file_search_call", "web_search_call",
        "computer_call", "computer_call_output", "image_generation_call",
        "code_interpreter_call", "local_shell_call", "local_shell_call_output",
        "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "mcp_call",
        "custom_tool_call", "custom_tool_call_output", "shell_call", "shell_call_output",
        "apply_patch_call", "apply_patch_call_output", "compaction",
    ]  # fmt: skip


InputItem = Annotated[
    MessageItem | FunctionCallItem | FunctionCallOutputItem | UnsupportedItem,
    Field(discriminator="type"),
]


class ResponsesTool(APIModel):
    # Read loosely, refused by name in `unsupported` (400): in the document, only named
    # function tools.
    model_config = ConfigDict(json_schema_extra=_named_function)

    type: Annotated[str, _only("function")]
    name: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class TextFormat(APIModel):
    # What `_schema_given` checks: type json_schema needs a non-empty schema.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["type"], "properties": {"type": {"const": "json_schema"}}},
            "then": {
                "required": ["schema"],
                "properties": {"schema": {"type": "object", "minProperties": 1}},
            },
        }
    )

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> TextFormat:
        if self.type == "json_schema" and not self.schema_:
            raise ValueError("text.format.schema is required for type json_schema")
        return self


class TextConfig(APIModel):
    format: TextFormat | None = None
    verbosity: Annotated[str | None, _only("medium", None)] = None


class ResponsesRequest(APIModel):
    model: str = Field(min_length=1)
    input: str | list[InputItem]
    background: Annotated[bool | None, _only(False, None)] = None
    conversation: Annotated[Any, _only(None)] = None
    include: Annotated[
        list[str] | None, _doc({"anyOf": [{"type": "array", "maxItems": 0}, NULL]})
    ] = None
    instructions: str | None = None
    max_output_tokens: TokenCount | None = None
    max_tool_calls: TokenCount | None = None
    metadata: Metadata | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = Field(default=None, min_length=1)
    prompt: Annotated[Any, _only(None)] = None
    prompt_cache_key: str | None = None
    reasoning: Annotated[dict[str, Any] | None, _doc(ALL_NULL)] = None
    safety_identifier: str | None = None
    service_tier: Annotated[str | None, _only("auto", "default", None)] = None
    store: bool | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    text: TextConfig | None = None
    tool_choice: Annotated[str | dict[str, Any] | None, _doc(TOOL_CHOICE)] = None
    tools: list[ResponsesTool] | None = None
    top_logprobs: Annotated[int | None, _only(0, None)] = None
    top_p: float | None = Field(default=None, ge=0, le=1)
    truncation: Annotated[str | None, _only("disabled", None)] = None
    user: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _messages_without_type(cls, value: Any) -> Any:
        """An item with a `role` and no `type` is a message (OpenAI's easy input form)."""
        if isinstance(value, list):
            return [
                {**item, "type": "message"}
                if isinstance(item, dict) and "type" not in item and "role" in item
                else item
                for item in value
            ]
        return value

    @property
    def stored(self) -> bool:
        return self.store is not False  # OpenAI's default: stored

    def unsupported(self) -> None:
        """400 naming the first parameter that asks for something not served here."""
        if self.background:
            _refuse("background", "background responses are not supported; send it without")
        if self.conversation is not None:
            _refuse("conversation", "conversations are not supported; use previous_response_id")
        if self.prompt is not None:
            _refuse("prompt", "stored prompt templates are not supported")
        if self.include:
            _refuse("include", f"include {self.include[0]!r} is not supported")
        if self.reasoning and any(value is not None for value in self.reasoning.values()):
            _refuse("reasoning", "reasoning options are not supported by these models")
        if self.top_logprobs:
            _refuse("top_logprobs", "top_logprobs is not supported on /v1/responses")
        if self.truncation not in (None, "disabled"):
            _refuse("truncation", "only truncation 'disabled' is supported")
        if self.service_tier not in (None, "auto", "default"):
            _refuse("service_tier", "only service_tier 'auto' or 'default' is supported")
        if self.text is not None and self.text.verbosity not in (None, "medium"):
            _refuse("text.verbosity", "only verbosity 'medium' is supported")
        for index, tool in enumerate(self.tools or ()):
            if tool.type != "function":
                _refuse(
                    f"tools[{index}].type",
                    f"the built-in tool {tool.type[:40]!r} is not supported; only function tools",
                )
            if not tool.name:
                _refuse(f"tools[{index}].name", "a function tool needs a name")
        if isinstance(self.input, list):
            for index, item in enumerate(self.input):
                if isinstance(item, UnsupportedItem):
                    _refuse(f"input[{index}].type", f"input items of type {item.type!r} are "
                            "not supported")  # fmt: skip


def _refuse(param: str, message: str) -> None:
    raise InvalidRequest(f"{param}: {message}", param=param, code="unsupported_parameter")


# ---- the objects returned --------------------------------------------------------------


def usage_object(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [text_part(text)] if status != "in_progress" else [],
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def response_object(
    request: ResponsesRequest,
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    """The `response` object, as returned whole and inside the lifecycle events."""
    fmt = request.text.format if request.text and request.text.format else None
    text_format = fmt.model_dump(by_alias=True, exclude_none=True) if fmt else {"type": "text"}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "model": model,
        "output": output,
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": None,
        "service_tier": "default",
        "store": request.stored,
        "temperature": request.temperature,
        "text": {"format": text_format},
        "tool_choice": request.tool_choice if request.tool_choice is not None else "auto",
        "tools": [tool.model_dump(exclude_none=True) for tool in request.tools or ()],
        "top_p": request.top_p,
        "truncation": "disabled",
        "usage": usage,
        "user": request.user,
        "metadata": request.metadata or {},
    }
