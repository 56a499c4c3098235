"""Responses items and conversation entries, both ways: a response chain is a conversation.

A turn's input items become conversation entries, so the conversation runtime builds every
model step from one history whatever API made it:

| Responses item | entry |
|---|---|
| `message` (user, system, developer, assistant) | `message.input` with that role |
| `function_call` (an earlier call the client gives back) | `function.call` |
| `function_call_output` | `function.result` |

Answers come back the other way: a `message.output` entry is a `message` output item and a
`function.call` entry a `function_call` item, each under its entry's id (`msg_…`, `fc_…`),
so `GET /v1/responses/{id}` shows the ids the turn returned.

Each input entry keeps the item as the client gave it under `_item` (ids, part types),
for `input_items`, and is tagged `_response` with the response's id (as are the copies
of all its entries in a branched conversation: agents/runtime.py), so that deleting or
erasing the response finds them. Keys starting with `_` never leave the gateway
(conversation_entries.py `public`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from ..errors import InvalidRequest
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
from .conversation_entries import entry, text_of
from .items import item_id
from .store import RESPONSE_TAG


def input_entries(value: str | Sequence[InputItem], response_id: str) -> list[dict[str, Any]]:
    """The turn's input as entries (a 400 naming `input[i]…` for what cannot be read)."""
    if isinstance(value, str):
        value = [MessageItem(role="user", content=[InputText(type="input_text", text=value)])]
    entries = []
    for index, item in enumerate(value):
        made = _entry(item, f"input[{index}]")
        made["_item"] = _listed(item)
        made[RESPONSE_TAG] = response_id
        entries.append(made)
    return entries


def _listed(item: InputItem) -> dict[str, Any]:
    """The item as `input_items` lists it: with an id and a status, text in parts."""
    data = item.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(item, MessageItem) and isinstance(item.content, str):
        kind = "output_text" if item.role == "assistant" else "input_text"
        data["content"] = [{"type": kind, "text": item.content}]
    data.setdefault("id", item_id("msg" if isinstance(item, MessageItem) else "fc"))
    data.setdefault("status", "completed")
    return data


def _entry(item: InputItem, param: str) -> dict[str, Any]:
    if isinstance(item, MessageItem):
        return entry("message.input", role=item.role, content=_content(item, param), prefix=False)
    if isinstance(item, FunctionCallItem):
        return entry(
            "function.call", tool_call_id=item.call_id, name=item.name, arguments=item.arguments
        )
    if isinstance(item, FunctionCallOutputItem):
        output = item.output
        text = output if isinstance(output, str) else _text_of(output, param + ".output")
        return entry("function.result", tool_call_id=item.call_id, result=text)
    # `ResponsesRequest.unsupported` refused every other item type before this.
    raise InvalidRequest(f"{param}: items of type {item.type!r} are not supported", param=param)


def _content(item: MessageItem, param: str) -> str | list[dict[str, Any]]:
    """A message's content as an entry holds it: its text, or text and image chunks."""
    if isinstance(item.content, str):
        return item.content
    where = param + ".content"
    if item.role == "assistant" or all(
        isinstance(part, InputText | OutputText | Refusal) for part in item.content
    ):
        return _text_of(item.content, where)
    chunks: list[dict[str, Any]] = []
    for index, part in enumerate(item.content):
        at = f"{where}[{index}]"
        if isinstance(part, InputText | OutputText):
            chunks.append({"type": "text", "text": part.text})
        elif isinstance(part, InputImage) and part.image_url:
            chunks.append({"type": "image_url", "image_url": part.image_url})
        else:
            raise InvalidRequest(
                f"{at}: only text and images given by image_url are supported", param=at
            )
    return chunks


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


def listed_items(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A response's input items, as given, from its entries."""
    return [value["_item"] for value in entries if "_item" in value]


def output_items(entries: Iterable[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    """A response's output items from the entries its turn produced. Entries a Responses
    turn never makes (tool executions, handoffs) have no item and are left out."""
    items = []
    for value in entries:
        kind = value.get("type")
        if kind == "message.output":
            items.append(message_item(value["id"], text_of(value.get("content")), status))
        elif kind == "function.call" and value.get("confirmation_status") is None:
            items.append(
                function_call_item(
                    value["id"],
                    value["tool_call_id"],
                    value["name"],
                    _arguments(value.get("arguments")),
                    "completed",
                )
            )
    return items


def _arguments(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments or "{}"
    return orjson.dumps(arguments or {}).decode()


def finish_status(finish_reason: str) -> tuple[str, str | None]:
    """The response's status and `incomplete_details.reason` for an engine's finish."""
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None
