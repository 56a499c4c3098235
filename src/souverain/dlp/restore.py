"""Putting the originals back into what a model answers: whole answers and streams,
content and tool-call arguments (a placeholder split across chunks included)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from ..protocol.chat import ChatDelta, Completion
from ..protocol.tool_call_stream import whole_tool_calls
from .transform import StreamRestorer, restore, restore_json_arguments


def restore_completion(completion: Completion, mapping: Mapping[str, str]) -> Completion:
    completion.content = restore(completion.content, mapping)
    for call in completion.tool_calls:
        _restore_call(call, mapping)
    return completion


async def restore_stream(
    deltas: AsyncIterator[ChatDelta], mapping: Mapping[str, str]
) -> AsyncIterator[ChatDelta]:
    """Restore as the stream goes, holding back only what may be half a placeholder.

    Tool calls are taken whole (joined here if the engine sent fragments), so their
    arguments are one complete string, restored as the JSON they are.
    """
    content = StreamRestorer(mapping)
    async for delta in whole_tool_calls(deltas):
        if delta.content:
            delta.content = content.feed(delta.content) or None
        for call in delta.tool_calls or ():
            _restore_call(call, mapping)
        if delta.finish_reason is not None:
            tail = content.flush()
            if tail:
                delta.content = (delta.content or "") + tail
        if delta.content or delta.tool_calls or delta.finish_reason or delta.usage:
            yield delta


def _restore_call(call: dict[str, object], mapping: Mapping[str, str]) -> None:
    function = call.get("function")
    if not isinstance(function, dict):
        return
    if isinstance(function.get("name"), str):  # a tool's name is read and replaced too
        function["name"] = restore(function["name"], mapping)
    if isinstance(function.get("arguments"), str):
        function["arguments"] = restore_json_arguments(function["arguments"], mapping)
