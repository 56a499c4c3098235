"""Conversation entries (Mistral's shapes) and the chat messages a model step reads.

Entries are kept as plain JSON objects, as they are stored and returned:
`message.input`, `message.output`, `function.call`, `function.result`, `tool.execution`
and `agent.handoff`. What the gateway needs to rebuild the chat history but a client
must not see (a server-side tool's output and call id) is kept under keys starting with
`_`, dropped by `public`. A server-side tool's output is still the caller's data: it is
stored with the conversation (erasable, deletable), never in the audit log.

History to messages: function calls become an assistant message's `tool_calls`, results
`tool` messages; a tool execution or a handoff is a call and its result, so that every
engine reads a well-formed chat whatever ran it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from ..errors import InvalidRequest
from ..protocol.chat import ChatMessage, ContentPart, FunctionCall, ToolCall
from .items import item_id

MAX_RESULT_CHARS = 1_000_000  # one function result
PREFIXES = {
    "message.input": "msg",
    "message.output": "msg",
    "function.call": "fc",
    "function.result": "fr",
    "tool.execution": "tex",
    "agent.handoff": "ho",
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def entry(kind: str, **fields: Any) -> dict[str, Any]:
    stamp = now_iso()
    return {
        "object": "entry",
        "type": kind,
        "id": item_id(PREFIXES[kind]),
        "created_at": stamp,
        "completed_at": stamp,
        **fields,
    }


def public(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if not key.startswith("_")}


def input_entries(inputs: str | Sequence[Any]) -> list[dict[str, Any]]:
    """The turn's inputs as entries with ids, or a 400 naming the bad one."""
    if isinstance(inputs, str):
        return [entry("message.input", role="user", content=inputs, prefix=False)]
    checked = []
    for index, value in enumerate(inputs):
        where = f"inputs[{index}]"
        if not isinstance(value, dict):
            raise InvalidRequest(f"{where}: an entry is an object", param=where)
        checked.append(_input_entry(value, where))
    return checked


def _input_entry(value: dict[str, Any], where: str) -> dict[str, Any]:
    kind = value.get("type") or ("message.input" if "role" in value else None)
    if kind in ("message.input", "message.output"):
        role = value.get("role", "assistant" if kind == "message.output" else None)
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"{where}.role: user or assistant", param=f"{where}.role")
        content = _content(value.get("content"), f"{where}.content")
        prefix = value.get("prefix") is True
        return entry("message.input", role=role, content=content, prefix=prefix)
    if kind == "function.result":
        call_id, result = value.get("tool_call_id"), value.get("result")
        if not isinstance(call_id, str) or not call_id or len(call_id) > 200:
            raise InvalidRequest(f"{where}.tool_call_id: a call id", param=f"{where}.tool_call_id")
        if not isinstance(result, str) or len(result) > MAX_RESULT_CHARS:
            raise InvalidRequest(
                f"{where}.result: a string of at most {MAX_RESULT_CHARS} characters",
                param=f"{where}.result",
            )
        return entry("function.result", tool_call_id=call_id, result=result)
    shown = repr(kind[:40]) if isinstance(kind, str) else "missing"
    raise InvalidRequest(
        f"{where}: entry type {shown} cannot be an input; use message.input or function.result",
        param=f"{where}.type",
    )


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        raise InvalidRequest(f"{where}: a string or a list of chunks", param=where)
    chunks = []
    for index, chunk in enumerate(content):
        at = f"{where}[{index}]"
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind == "text" and isinstance(chunk.get("text"), str):
            chunks.append({"type": "text", "text": chunk["text"]})
        elif kind == "image_url" and isinstance(chunk.get("image_url"), str | dict):
            chunks.append({"type": "image_url", "image_url": chunk["image_url"]})
        else:
            raise InvalidRequest(f"{at}: only text and image_url chunks are supported", param=at)
    return chunks


def to_messages(entries: Iterable[dict[str, Any]]) -> list[ChatMessage]:
    """The chat history of stored entries, in order."""
    messages: list[ChatMessage] = []
    for value in entries:
        kind = value.get("type")
        if kind == "message.input":
            messages.append(
                ChatMessage(role=value["role"], content=_chat_content(value["content"]))
            )
        elif kind == "message.output":
            text = text_of(value.get("content"))
            messages.append(ChatMessage(role="assistant", content=text))
        elif kind == "function.call":
            if value.get("confirmation_status") is not None:
                continue  # a server-side call awaiting approval: its execution holds it
            _call(messages, value["tool_call_id"], value["name"], value.get("arguments"))
        elif kind == "function.result":
            messages.append(
                ChatMessage(
                    role="tool", tool_call_id=value["tool_call_id"], content=value["result"]
                )
            )
        elif kind in ("tool.execution", "agent.handoff"):
            call_id = value.get("_tool_call_id")
            if not call_id:
                continue
            name = value.get("_tool_name") or value.get("name") or "tool"
            _call(messages, call_id, name, value.get("arguments") or "{}")
            messages.append(
                ChatMessage(role="tool", tool_call_id=call_id, content=value["_output"])
            )
    return messages


def _call(messages: list[ChatMessage], call_id: str, name: str, arguments: Any) -> None:
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments or {}).decode()
    call = ToolCall(id=call_id, function=FunctionCall(name=name, arguments=arguments))
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant" and not last.prefix:
        last.tool_calls = [*(last.tool_calls or []), call]
    else:
        messages.append(ChatMessage(role="assistant", content="", tool_calls=[call]))


def _chat_content(content: str | list[dict[str, Any]]) -> str | list[ContentPart]:
    if isinstance(content, str):
        return content
    if all(chunk["type"] == "text" for chunk in content):
        return "".join(chunk["text"] for chunk in content)
    parts = []
    for chunk in content:
        if chunk["type"] == "text":
            parts.append(ContentPart(type="text", text=chunk["text"]))
        else:
            image = chunk["image_url"]
            url = image if isinstance(image, str) else image.get("url")
            parts.append(
                ContentPart.model_validate({"type": "image_url", "image_url": {"url": url}})
            )
    return parts


def text_of(content: Any) -> str:
    """An entry's content as plain text: a string, or its text chunks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return ""


def messages_of(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries `GET .../messages` returns: inputs and outputs, nothing else."""
    return [public(e) for e in entries if e.get("type") in ("message.input", "message.output")]
