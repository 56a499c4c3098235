"""A recording, echoing OpenAI-compatible upstream: a test instrument, named as a fake.

It records every body it receives (to prove what left the gateway) and answers with the
last user message's text (so placeholders come back and their restoration can be
checked), streamed in 3-character chunks so that placeholders are split across chunks.
With `tools` in the request it answers with a tool call whose arguments carry the text;
streamed, one call per declared tool, sent as OpenAI servers do: a head fragment (index, id,
name) then the arguments in 3-character fragments that carry only the index
(`tool_call_ids = False` leaves the ids out, as some servers do).
Legacy completions (how the `openai` engine sends FIM) and Mistral's FIM endpoint echo the
prompt the same way.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web


class RecordingUpstream:
    def deployment(self, **fields: Any) -> dict[str, Any]:
        """An `openai` deployment on this upstream, as an EU cloud would be declared (FR, no
        retention, no training): the policy lets any classification the tests use reach it."""
        return {"engine": "openai", "base_url": self.url, "jurisdiction": "FR",
                "operator": "EU Cloud", "retention_days": 0, "trains_on_data": False, **fields}  # fmt: skip

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.tool_call_ids = True  # streamed tool calls carry an id in their head fragment
        # Texts to answer with, one per chat call in order, in place of the echo (a tool
        # call's `text` argument too): a test scripts a wrong answer, then a right one.
        self.answers: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> RecordingUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def seen(self) -> str:
        return json.dumps(self.received, ensure_ascii=False)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/fim/completions", self._fim)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(body)
        users = [m.get("content") for m in body["messages"] if m.get("role") == "user"]
        text = (users[-1] if users else "") or ""  # a system message alone is a valid chat
        if isinstance(text, list):
            text = "".join(part.get("text", "") for part in text)
        if self.answers:
            text = self.answers.pop(0)
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if body.get("tools") and body.get("stream"):
            return await _stream(request, "chat.completion.chunk", self._tool_fragments(body, text),
                                 {"delta": {}}, usage, finish="tool_calls")  # fmt: skip
        if body.get("tools"):
            arguments = json.dumps({"text": text}, ensure_ascii=False)
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": "echo", "arguments": arguments},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return web.json_response({"id": "x", "object": "chat.completion", "created": 0, "model": "echo",
                                      "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                                      "usage": usage})  # fmt: skip
        return await _echo_as_chat(request, body, text)

    def _tool_fragments(self, body: dict[str, Any], text: str) -> list[dict[str, Any]]:
        """One call per declared function tool, in OpenAI's streamed fragments."""
        arguments = json.dumps({"text": text}, ensure_ascii=False)
        names = [t["function"]["name"] for t in body["tools"] if t.get("type") == "function"]
        pieces: list[dict[str, Any]] = []
        for index, name in enumerate(names):
            head: dict[str, Any] = {"index": index, "type": "function",
                                    "function": {"name": name, "arguments": ""}}  # fmt: skip
            if self.tool_call_ids:
                head["id"] = f"call_{index + 1}"
            pieces.append({"delta": {"tool_calls": [head]}})
            pieces += [
                {"delta": {"tool_calls": [{"index": index, "function": {"arguments": part}}]}}
                for part in (arguments[i : i + 3] for i in range(0, len(arguments), 3))
            ]
        return pieces

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(body)
        text, usage = (
            body["prompt"],
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        )
        if not body.get("stream"):
            return web.json_response({"id": "x", "object": "text_completion", "created": 0, "model": "echo",
                                      "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                                      "usage": usage})  # fmt: skip
        pieces = [{"text": text[i : i + 3]} for i in range(0, len(text), 3)]
        return await _stream(request, "text_completion", pieces, {"text": ""}, usage)

    async def _fim(self, request: web.Request) -> web.StreamResponse:
        """Mistral's FIM endpoint: the prompt echoed in the chat completion's shape."""
        body = await request.json()
        self.received.append(body)
        return await _echo_as_chat(request, body, body["prompt"])

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.0, 1.0]} for i in range(len(inputs))
        ]
        return web.json_response({"object": "list", "data": data, "model": "echo",
                                  "usage": {"prompt_tokens": 3, "total_tokens": 3}})  # fmt: skip


async def _echo_as_chat(
    request: web.Request, body: dict[str, Any], text: str
) -> web.StreamResponse:
    """`text` as a chat completion, whole or streamed in 3-character chunks."""
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    if not body.get("stream"):
        message = {"role": "assistant", "content": text}
        return web.json_response({"id": "x", "object": "chat.completion", "created": 0, "model": "echo",
                                  "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                  "usage": usage})  # fmt: skip
    pieces = [{"delta": {"content": text[i : i + 3]}} for i in range(0, len(text), 3)]
    return await _stream(request, "chat.completion.chunk", pieces, {"delta": {}}, usage)


async def _stream(
    request: web.Request, kind: str, pieces: list[dict[str, Any]], end: dict[str, Any],
    usage: dict[str, int], finish: str = "stop",
) -> web.StreamResponse:  # fmt: skip
    """Server-sent events: one chunk per piece, a last one with finish_reason and usage."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    chunks = [{"choices": [{"index": 0, **piece, "finish_reason": None}]} for piece in pieces]
    chunks.append({"choices": [{"index": 0, **end, "finish_reason": finish}], "usage": usage})
    for chunk in chunks:
        event = {"id": "x", "object": kind, "created": 0, "model": "echo", **chunk}
        await response.write(f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    return response
