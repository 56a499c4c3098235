"""What the engines that speak HTTP share: the client, error mapping and SSE parsing.

The client is aiohttp with orjson: on the gateway's hot path it costs a fraction of
httpx's CPU per request (bench/gateway_overhead.py measures the whole path).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from ..config import DeploymentConfig, ModelConfig
from ..errors import EngineError, EngineUnavailable, InvalidRequest, SouverainError
from ..protocol.chat import ChatDelta, Completion, finish_reason
from ..protocol.common import Usage
from ..protocol.tool_call_stream import whole_tool_calls
from .base import Backend
from .logprobs import choice_entries

# Upstream statuses worth trying another deployment for.
RETRYABLE_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}


class HTTPBackend(Backend):
    """An engine reached over HTTP with a JSON API and SSE streams."""

    default_base_url: str | None = None

    def __init__(self, model: ModelConfig, deployment: DeploymentConfig) -> None:
        super().__init__(model, deployment)
        base_url = deployment.base_url or self.default_base_url
        if base_url is None:
            raise ValueError(f"deployment {self.name} needs a base_url")
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _api_key(self) -> str | None:
        name = self.deployment.api_key_env
        return os.environ.get(name) if name else None

    async def start(self) -> None:
        headers = {"User-Agent": "souverain", "Content-Type": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._session = aiohttp.ClientSession(
            headers=headers,
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.deployment.connect_timeout_s,
                sock_read=self.deployment.timeout_s,
            ),
            read_bufsize=2**20,  # one SSE line may carry a long chunk
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise EngineUnavailable(f"deployment {self.name} is not started")
        return self._session

    models_path = "/models"

    async def probe(self) -> None:
        try:
            async with self.session.get(self.base_url + self.models_path) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc) from None
        if status >= 500 or status == 429:
            raise EngineUnavailable(f"deployment {self.name} answered {status} to its health check")

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self.session.post(self.base_url + path, data=orjson.dumps(body)) as response:
                content = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc) from None
        if status >= 400:
            raise self._status_error(status, content)
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise EngineError(f"deployment {self.name} answered with invalid JSON") from None
        if not isinstance(data, dict):
            raise EngineError(f"deployment {self.name} answered with an unexpected body")
        return data

    async def stream_events(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST and yield each `data:` JSON object until `[DONE]` or the end of the body."""
        try:
            async with self.session.post(self.base_url + path, data=orjson.dumps(body)) as response:
                if response.status >= 400:
                    raise self._status_error(response.status, await response.read())
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        return
                    try:
                        event = orjson.loads(payload)
                    except orjson.JSONDecodeError:
                        raise EngineError(
                            f"deployment {self.name} sent a malformed event"
                        ) from None
                    if isinstance(event, dict) and "error" in event and "choices" not in event:
                        raise EngineError(
                            f"deployment {self.name} failed mid-stream: {_message(event)}"
                        )
                    yield event
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc) from None

    def _transport_error(self, exc: Exception) -> SouverainError:
        return EngineUnavailable(
            f"deployment {self.name} is unreachable ({type(exc).__name__})", retry_after=1
        )

    def _status_error(self, status: int, content: bytes) -> SouverainError:
        detail = _message_from_bytes(content)
        if status in RETRYABLE_STATUSES:
            return EngineUnavailable(
                f"deployment {self.name} answered {status}: {detail}", retry_after=1
            )
        if status in (400, 413, 422):
            return InvalidRequest(f"the engine rejected the request: {detail}")
        # 401/403/404 from an upstream mean our configuration is wrong, not the caller's request.
        return EngineError(f"deployment {self.name} answered {status}: {detail}")


def deltas_from_chunks(
    events: AsyncIterator[dict[str, Any]], *, estimate_prompt_tokens: int
) -> AsyncIterator[ChatDelta]:
    """Turn OpenAI-shaped chunks into deltas; the finish and usage come last, together.

    Tool calls leave whole, one delta each (protocol/tool_call_stream.py): OpenAI servers
    stream them in name-less fragments, which Mistral's clients reject.
    """

    async def convert() -> AsyncIterator[ChatDelta]:
        finish: Any = None
        usage: Usage | None = None
        produced = 0
        async for event in events:
            if event.get("usage"):
                usage = usage_from(event["usage"])
            for choice in event.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                content = delta.get("content")
                tool_calls = delta.get("tool_calls")
                logprobs = choice_entries(choice.get("logprobs"))
                if content or tool_calls or logprobs:
                    produced += 1
                    yield ChatDelta(
                        content=content or None, tool_calls=tool_calls or None, logprobs=logprobs
                    )
                finish = choice.get("finish_reason") or finish
        if usage is None:
            # Some servers (llama.cpp's Python server) never report usage when streaming.
            usage = Usage(estimate_prompt_tokens, produced)
        yield ChatDelta(finish_reason=finish_reason(finish), usage=usage)

    return whole_tool_calls(convert())


def completion_from_response(data: dict[str, Any], *, estimate_prompt_tokens: int) -> Completion:
    choices = data.get("choices") or []
    if not choices:
        raise EngineError("the engine answered without choices")
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    if content is None:
        content = choice.get("text", "")  # /v1/completions shape
    usage = usage_from(data["usage"]) if data.get("usage") else Usage(estimate_prompt_tokens, 0)
    return Completion(
        content=content if isinstance(content, str) else "",
        tool_calls=list(message.get("tool_calls") or []),
        finish_reason=finish_reason(choice.get("finish_reason")),
        usage=usage,
        logprobs=choice_entries(choice.get("logprobs")),
    )


def usage_from(data: dict[str, Any]) -> Usage:
    return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0))


def estimate_tokens(text: str) -> int:
    """A rough count (4 bytes a token) for engines that report no usage."""
    return max(1, len(text.encode("utf-8")) // 4)


def _message(event: dict[str, Any]) -> str:
    error = event.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    return str(error or event.get("message") or event.get("detail") or event)[:500]


def _message_from_bytes(content: bytes) -> str:
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content[:200].decode("utf-8", "replace") or "(empty body)"
    if isinstance(data, dict):
        return _message(data)
    return str(data)[:500]
