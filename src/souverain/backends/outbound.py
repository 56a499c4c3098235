"""What an HTTP engine may send upstream: bodies built from allow-lists, never a dump.

The protocol models accept fields they do not know (the SDKs add fields over time), so a
request can carry anything. An engine takes from it only the fields named here, at every
level: the request, each message, each content part, each tool, the response format. What
is not on a list is not sent. Data-loss prevention has read every string of the request
(dlp/fields.py), so whatever these lists take was scanned.

A content part of a type the engine cannot pass on is refused (400) rather than dropped:
silently sending half a message would change what the model is asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import InvalidRequest
from ..protocol.chat import ChatCompletionRequest, ChatMessage, ContentPart, Tool
from ..protocol.text_completions import TextCompletionRequest

# OpenAI's chat fields that engines act on. Not forwarded: `user` and `metadata` (the
# gateway's own bookkeeping: subjects, classification claims), `stream_options` (the
# engine sets it), and anything the protocol does not declare.
OPENAI_CHAT_FIELDS = (
    "frequency_penalty", "max_tokens", "max_completion_tokens", "n", "presence_penalty",
    "seed", "stop", "temperature", "top_p", "tool_choice", "parallel_tool_calls",
    "logprobs", "top_logprobs",
)  # fmt: skip
MISTRAL_CHAT_FIELDS = (
    "temperature", "top_p", "max_tokens", "stop", "random_seed", "tool_choice",
    "presence_penalty", "frequency_penalty", "n", "parallel_tool_calls", "safe_prompt",
)  # fmt: skip
# Legacy completions (/v1/completions). Not forwarded: `echo` (the gateway echoes the
# client's own prompt, never the pseudonymized one the engine saw), `stream_options`,
# `user`, `metadata`.
OPENAI_TEXT_FIELDS = (
    "prompt", "suffix", "max_tokens", "temperature", "top_p", "n", "best_of", "stop",
    "logprobs", "seed", "presence_penalty", "frequency_penalty",
)  # fmt: skip
OPENAI_MESSAGE_FIELDS = ("role", "content", "name", "tool_calls", "tool_call_id")
MISTRAL_MESSAGE_FIELDS = (*OPENAI_MESSAGE_FIELDS, "prefix")
IMAGE_URL_FIELDS = ("url", "detail")


def chat_body(
    request: ChatCompletionRequest,
    *,
    fields: Iterable[str],
    message_fields: Iterable[str],
) -> dict[str, Any]:
    """The allow-listed fields of a chat request, without `model` and `stream`."""
    body: dict[str, Any] = {}
    for name in fields:
        value = getattr(request, name, None)
        if value is not None:
            body[name] = _tool_choice(value) if name == "tool_choice" else value
    wanted = tuple(message_fields)
    body["messages"] = [message(item, wanted) for item in request.messages]
    tools = [tool(item) for item in request.tools or () if isinstance(item, Tool)]
    if tools:
        body["tools"] = tools
    if request.response_format is not None:
        body["response_format"] = response_format(request)
    return body


def text_body(request: TextCompletionRequest) -> dict[str, Any]:
    """The allow-listed fields of a legacy completion request, without `model` and `stream`.
    `max_tokens` is always set: the gateway's default (OpenAI's 16) is what the caller got."""
    body: dict[str, Any] = {}
    for name in OPENAI_TEXT_FIELDS:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    body["max_tokens"] = request.effective_max_tokens
    return body


def message(item: ChatMessage, fields: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(item, name, None)
        if name == "prefix":
            if value:
                out["prefix"] = True
        elif name == "content":
            # An assistant turn of tool calls only: "" rather than null, which some servers
            # refuse (llama.cpp's), or nothing, which its chat templates cannot read.
            empty = item.content is None and item.tool_calls
            out["content"] = "" if empty else _content(item)
        elif name == "tool_calls":
            if value:
                out["tool_calls"] = [_tool_call(call) for call in value]
        elif value is not None:
            out[name] = value
    return out


def tool(item: Tool) -> dict[str, Any]:
    function = item.function
    out: dict[str, Any] = {"name": function.name}
    if function.description is not None:
        out["description"] = function.description
    if function.parameters is not None:
        out["parameters"] = function.parameters
    if function.strict is not None:
        out["strict"] = function.strict
    return {"type": "function", "function": out}


def response_format(request: ChatCompletionRequest) -> dict[str, Any]:
    given = request.response_format
    assert given is not None
    out: dict[str, Any] = {"type": given.type}
    if given.type == "json_schema" and given.json_schema is not None:
        schema = given.json_schema
        inner: dict[str, Any] = {"name": schema.name, "schema": schema.schema_}
        if schema.description is not None:
            inner["description"] = schema.description
        if schema.strict is not None:
            inner["strict"] = schema.strict
        out["json_schema"] = inner
    return out


def _content(item: ChatMessage) -> Any:
    if item.content is None or isinstance(item.content, str):
        return item.content
    return [_part(part) for part in item.content]


def _part(part: ContentPart) -> dict[str, Any]:
    if part.type == "text":
        return {"type": "text", "text": part.text or ""}
    if part.type == "image_url":
        given = (part.model_extra or {}).get("image_url")
        if isinstance(given, str):  # Mistral's spelling: the URL itself
            return {"type": "image_url", "image_url": given}
        if isinstance(given, dict) and isinstance(given.get("url"), str):
            kept = {key: given[key] for key in IMAGE_URL_FIELDS if isinstance(given.get(key), str)}
            return {"type": "image_url", "image_url": kept}
        raise InvalidRequest("an image_url part needs an image_url with a url", param="messages")
    raise InvalidRequest(
        f"content parts of type {part.type!r} cannot be sent to this model", param="messages"
    )


def _tool_call(call: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function"}
    if call.id is not None:
        out["id"] = call.id
    out["function"] = {"name": call.function.name, "arguments": call.function.arguments}
    return out


def _tool_choice(value: Any) -> Any:
    """`auto`, `none`, `required`/`any`, or a named function: nothing else is passed on."""
    if isinstance(value, str):
        return value
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise InvalidRequest(
            "tool_choice must be a string or {'type': 'function', 'function': {'name': ...}}",
            param="tool_choice",
        )
    return {"type": "function", "function": {"name": name}}
