"""Streamed tool calls, delivered whole: one delta per call, as Mistral's API sends them.

OpenAI-compatible servers stream a tool call in fragments keyed by `index`: a head with the
id and name, then argument pieces that carry only the index. The mistralai SDK rejects such
a piece (`function.name` is required) and langchain-mistralai reads each as a separate call.
A whole call (id, type, name, complete arguments) is what Mistral sends and what OpenAI
clients accept too, so every stream leaves the gateway that way; content is never held.

A call is complete when another call starts or the stream finishes. Calls are numbered
in the order they complete, whatever indexes the engine used.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError
from .chat import ChatDelta

_ID_ALPHABET = string.ascii_letters + string.digits


def new_tool_call_id() -> str:
    """A tool-call id in Mistral's format (9 alphanumeric characters), read by both SDKs."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))


@dataclass(slots=True)
class _PendingCall:
    index: int | None
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def whole(self, position: int) -> dict[str, Any]:
        if not self.name:
            raise EngineError("the engine streamed a tool call without a function name")
        return {
            "index": position,
            "id": self.id or new_tool_call_id(),
            "type": "function",
            "function": {"name": self.name, "arguments": "".join(self.arguments) or "{}"},
        }


class _Assembler:
    """Joins the fragments of one stream; knows which indexes it has already sent."""

    def __init__(self) -> None:
        self.current: _PendingCall | None = None
        self.sent_indexes: set[int] = set()
        self.sent = 0

    def feed(self, fragment: dict[str, Any]) -> dict[str, Any] | None:
        """Take one fragment; return the previous call if this one starts another."""
        function = fragment.get("function") or {}
        index = fragment.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else None
        if index is not None and index in self.sent_indexes:
            raise EngineError(f"the engine streamed more of tool call {index} after it ended")
        finished = None
        if self._starts_new_call(index, fragment.get("id"), function.get("name")):
            finished = self.flush()
            self.current = _PendingCall(index=index)
        call = self.current
        assert call is not None
        if isinstance(fragment.get("id"), str) and fragment["id"]:
            call.id = fragment["id"]
        if isinstance(function.get("name"), str) and function["name"]:
            call.name = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # Mistral may send them as an object
            arguments = json.dumps(arguments, ensure_ascii=False)
        if isinstance(arguments, str):
            call.arguments.append(arguments)
        return finished

    def _starts_new_call(self, index: int | None, id_: Any, name: Any) -> bool:
        call = self.current
        if call is None:
            return True
        if index is not None and call.index is not None:
            return index != call.index
        if id_ and call.id and id_ != call.id:
            return True
        # No index to go by (Mistral's whole calls may omit it): a second name is a second call.
        return bool(name) and bool(call.name)

    def flush(self) -> dict[str, Any] | None:
        call, self.current = self.current, None
        if call is None:
            return None
        if call.index is not None:
            self.sent_indexes.add(call.index)
        whole = call.whole(self.sent)
        self.sent += 1
        return whole


async def whole_tool_calls(deltas: AsyncIterator[ChatDelta]) -> AsyncIterator[ChatDelta]:
    """The same stream with each tool call in one delta; applying it twice changes nothing."""
    assembler = _Assembler()
    try:
        async for delta in deltas:
            ready = [
                call
                for fragment in delta.tool_calls or ()
                if isinstance(fragment, dict) and (call := assembler.feed(fragment)) is not None
            ]
            if delta.finish_reason is not None:
                last = assembler.flush()
                ready += [last] if last is not None else []
            delta.tool_calls = ready or None
            if delta.content or delta.tool_calls or delta.finish_reason or delta.usage:
                yield delta
        last = assembler.flush()  # an engine that ended without a finish
        if last is not None:
            yield ChatDelta(tool_calls=[last])
    finally:  # closing this stream closes the engine's (and its upstream request)
        aclose = getattr(deltas, "aclose", None)
        if aclose is not None:
            await aclose()
