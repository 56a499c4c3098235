"""Putting the originals back into what a model answers: whole answers and streams,
content and tool-call arguments (a placeholder split across chunks included)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

from ..protocol.chat import ChatDelta, Completion
from .transform import StreamRestorer, restore, restore_json_arguments


def restore_completion(completion: Completion, mapping: Mapping[str, str]) -> Completion:
    completion.content = restore(completion.content, mapping)
    for call in completion.tool_calls:
        function = call.get("function") or {}
        if isinstance(function.get("name"), str):  # a tool's name is read and replaced too
            function["name"] = restore(function["name"], mapping)
        if isinstance(function.get("arguments"), str):
            function["arguments"] = restore_json_arguments(function["arguments"], mapping)
    return completion


async def restore_stream(
    deltas: AsyncIterator[ChatDelta], mapping: Mapping[str, str]
) -> AsyncIterator[ChatDelta]:
    """Restore as the stream goes, holding back only what may be half a placeholder."""
    content = StreamRestorer(mapping)
    # Inside JSON strings an original must be escaped as JSON: restore with escaped values.
    escaped = {key: json.dumps(value, ensure_ascii=False)[1:-1] for key, value in mapping.items()}
    arguments: dict[int, StreamRestorer] = {}
    async for delta in deltas:
        if delta.content:
            delta.content = content.feed(delta.content) or None
        for fragment in delta.tool_calls or ():
            function = fragment.get("function") or {}
            if isinstance(function.get("name"), str):  # names come whole, in one fragment
                function["name"] = restore(function["name"], mapping)
            if isinstance(function.get("arguments"), str):
                restorer = arguments.setdefault(fragment.get("index", 0), StreamRestorer(escaped))
                function["arguments"] = restorer.feed(function["arguments"])
        if delta.finish_reason is not None:
            tail = content.flush()
            if tail:
                delta.content = (delta.content or "") + tail
            for index, restorer in arguments.items():
                rest = restorer.flush()
                if rest:
                    tail_fragment = {"index": index, "function": {"arguments": rest}}
                    delta.tool_calls = [*(delta.tool_calls or []), tail_fragment]
        if delta.content or delta.tool_calls or delta.finish_reason or delta.usage:
            yield delta
