"""The recording upstream (tests/recording_upstream.py, a named fake) playing a model that
uses tools, for the conversation tests: deterministic agent loops over a real HTTP engine.

- after a tool result (the last message is `tool`), it answers in text: `result: <tool
  output>`, so a turn ends and the test sees what the model was given;
- a user message holding `use:NAME {json}` calls the offered tool NAME with those
  arguments (`{"text": <message>}` without JSON);
- otherwise it behaves as the recording upstream: with an `echo` tool offered, a call of
  it; else the last user message echoed.
Whole or streamed (OpenAI's fragments), as the request asks.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from .recording_upstream import RecordingUpstream, _echo_as_chat, _stream

USE = re.compile(r"use:([A-Za-z0-9_-]+)\s*(\{.*\})?", re.DOTALL)
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


class AgentUpstream(RecordingUpstream):
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = body["messages"]
        last = messages[-1]
        if last.get("role") == "tool":
            self.received.append(body)
            return await _echo_as_chat(request, body, f"result: {last.get('content')}")
        users = [m.get("content") for m in messages if m.get("role") == "user"]
        text = users[-1] if users and isinstance(users[-1], str) else ""
        offered = [t["function"]["name"] for t in body.get("tools") or []]
        wanted = USE.search(text)
        if wanted and wanted.group(1) in offered:
            self.received.append(body)
            arguments = wanted.group(2) or json.dumps({"text": text})
            return await _call(request, body, wanted.group(1), arguments)
        if offered and "echo" not in offered:  # nothing to call: a plain answer
            self.received.append(body)
            return await _echo_as_chat(request, body, text)
        return await super()._chat(_Replay(request, body))


class _Replay:
    """The request, its body already read (the parent handler reads it again)."""

    def __init__(self, request: web.Request, body: dict[str, Any]) -> None:
        self._request, self._body = request, body

    async def json(self) -> dict[str, Any]:
        return self._body

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


async def _call(
    request: web.Request, body: dict[str, Any], name: str, arguments: str
) -> web.StreamResponse:
    if not body.get("stream"):
        call = {"id": "call_s1", "type": "function",
                "function": {"name": name, "arguments": arguments}}  # fmt: skip
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        return web.json_response({"id": "x", "object": "chat.completion", "created": 0,
                                  "model": "echo", "choices": [choice], "usage": USAGE})  # fmt: skip
    head = {"index": 0, "id": "call_s1", "type": "function",
            "function": {"name": name, "arguments": ""}}  # fmt: skip
    pieces = [{"delta": {"tool_calls": [head]}}]
    pieces += [
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 5]}}]}}
        for i in range(0, len(arguments), 5)
    ]
    return await _stream(request, "chat.completion.chunk", pieces, {"delta": {}}, USAGE,
                         finish="tool_calls")  # fmt: skip
