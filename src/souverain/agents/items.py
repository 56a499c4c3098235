"""Conversation items and chat messages, both ways.

A turn's input (messages, function calls and their outputs) becomes the chat messages an
engine reads; what the engine answers (text, tool calls) becomes output items. Items are
kept as plain JSON objects, as they are stored and returned; the chat messages are built
as `ChatMessage`s, so that the request the pipeline guards holds all of them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from ..errors import InvalidRequest
from ..protocol.chat import ChatMessage, Completion, ContentPart, FunctionCall, ToolCall
from ..protocol.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputImage,
    InputItem,
    InputText,
    MessageItem,
    OutputText,
    Refusal,
    function_call_item,
    message_item,
)
from ..protocol.tool_call_stream import new_tool_call_id


def item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def input_items(value: str | Sequence[InputItem]) -> list[dict[str, Any]]:
    """The turn's input as items with ids, as stored and listed (`input_items`)."""
    if isinstance(value, str):
        value = [MessageItem(role="user", content=[InputText(type="input_text", text=value)])]
    items = []
    for item in value:
        data = item.model_dump(mode="json", exclude_none=True, by_alias=True)
        if isinstance(item, MessageItem) and isinstance(item.content, str):
            kind = "output_text" if item.role == "assistant" else "input_text"
            data["content"] = [{"type": kind, "text": item.content}]
        data.setdefault("id", item_id("msg" if isinstance(item, MessageItem) else "fc"))
        data.setdefault("status", "completed")
        items.append(data)
    return items


def to_messages(items: Iterable[dict[str, Any]], *, where: str = "input") -> list[ChatMessage]:
    """Chat messages for stored or incoming items (consecutive calls join one message)."""
    messages: list[ChatMessage] = []
    for index, item in enumerate(items):
        param = f"{where}[{index}]"
        try:
            _add(messages, item, param)
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]["msg"]
            raise InvalidRequest(f"{param}: {problem}", param=param) from None
    return messages


def _add(messages: list[ChatMessage], item: dict[str, Any], param: str) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        messages.append(_message(MessageItem.model_validate(item), param))
    elif kind == "function_call":
        call = FunctionCallItem.model_validate(item)
        tool_call = ToolCall(
            id=call.call_id,
            function=FunctionCall(name=call.name, arguments=call.arguments),
        )
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant":  # text and calls: one chat message
            last.tool_calls = [*(last.tool_calls or []), tool_call]
        else:
            messages.append(ChatMessage(role="assistant", content=None, tool_calls=[tool_call]))
    elif kind == "function_call_output":
        output = FunctionCallOutputItem.model_validate(item)
        content = output.output
        text = content if isinstance(content, str) else _text_of(content, param + ".output")
        messages.append(ChatMessage(role="tool", tool_call_id=output.call_id, content=text))
    else:
        raise InvalidRequest(f"{param}: items of type {kind!r} are not supported", param=param)


def _message(item: MessageItem, param: str) -> ChatMessage:
    if isinstance(item.content, str):
        return ChatMessage(role=item.role, content=item.content)
    if item.role == "assistant" or all(
        isinstance(part, InputText | OutputText | Refusal) for part in item.content
    ):
        return ChatMessage(role=item.role, content=_text_of(item.content, param + ".content"))
    parts = []
    for index, part in enumerate(item.content):
        where = f"{param}.content[{index}]"
        if isinstance(part, InputText | OutputText):
            parts.append(ContentPart(type="text", text=part.text))
        elif isinstance(part, InputImage) and part.image_url:
            image = {"type": "image_url", "image_url": {"url": part.image_url}}
            parts.append(ContentPart.model_validate(image))
        else:
            raise InvalidRequest(
                f"{where}: only text and images given by image_url are supported", param=where
            )
    return ChatMessage(role=item.role, content=parts)


def _text_of(parts: Sequence[Any], param: str) -> str:
    texts = []
    for index, part in enumerate(parts):
        if isinstance(part, InputText | OutputText):
            texts.append(part.text)
        elif isinstance(part, Refusal):
            texts.append(part.refusal)
        else:
            where = f"{param}[{index}]"
            raise InvalidRequest(f"{where}: only text is supported here", param=where)
    return "".join(texts)


def output_items(completion: Completion, status: str) -> list[dict[str, Any]]:
    """The output items of a whole answer: its text (if any, or if nothing else), then
    one item per tool call."""
    items = []
    if completion.content or not completion.tool_calls:
        items.append(message_item(item_id("msg"), completion.content, status))
    for call in completion.tool_calls:
        function = call.get("function") or {}
        items.append(
            function_call_item(
                item_id("fc"),
                call.get("id") or new_tool_call_id(),
                function.get("name", ""),
                function.get("arguments") or "{}",
                "completed",
            )
        )
    return items


def finish_status(finish_reason: str) -> tuple[str, str | None]:
    """The response's status and `incomplete_details.reason` for an engine's finish."""
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None
