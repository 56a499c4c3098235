"""`engine: mistral` — Mistral AI's API (or anything speaking its shape, e.g. another Souverain).

`base_url` is the server without `/v1`, as with the mistralai SDK; the default is
Mistral's EU-hosted `https://api.mistral.ai`. The key comes from the environment
variable named by `api_key_env`. Mistral rejects fields it does not know, so requests
are rebuilt from an allow-list rather than passed through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ..protocol.chat import ChatCompletionRequest, ChatDelta, Completion
from ..protocol.fim import FIMCompletionRequest
from .http_engine import completion_from_response, deltas_from_chunks, estimate_tokens
from .openai_compat import OpenAIBackend

CHAT_FIELDS = (
    "temperature", "top_p", "max_tokens", "stop", "random_seed", "response_format", "tools",
    "tool_choice", "presence_penalty", "frequency_penalty", "n", "parallel_tool_calls",
    "safe_prompt", "prediction", "prompt_mode",
)  # fmt: skip
MESSAGE_FIELDS = ("role", "content", "name", "tool_calls", "tool_call_id", "prefix")


class MistralBackend(OpenAIBackend):
    kind = "mistral"
    default_base_url = "https://api.mistral.ai"
    chat_path = "/v1/chat/completions"
    embeddings_path = "/v1/embeddings"
    models_path = "/v1/models"

    def chat_body(self, request: ChatCompletionRequest, *, stream: bool) -> dict[str, Any]:
        given = request.model_dump(exclude_unset=True, exclude_none=True, by_alias=True)
        body: dict[str, Any] = {"model": self.upstream_model, "stream": stream}
        body["messages"] = [_mistral_message(message) for message in given["messages"]]
        given.setdefault("random_seed", request.effective_seed)
        given.setdefault("max_tokens", request.effective_max_tokens)
        if given.get("tool_choice") == "required":
            given["tool_choice"] = "any"
        body.update({key: given[key] for key in CHAT_FIELDS if given.get(key) is not None})
        return body

    def fim_body(self, request: FIMCompletionRequest, *, stream: bool) -> dict[str, Any]:
        given = request.model_dump(exclude_unset=True, exclude_none=True)
        given.pop("metadata", None)
        return {**given, "model": self.upstream_model, "stream": stream}

    async def fim_complete(self, request: FIMCompletionRequest) -> Completion:
        data = await self.post_json("/v1/fim/completions", self.fim_body(request, stream=False))
        return completion_from_response(data, estimate_prompt_tokens=_estimate(request))

    def fim(self, request: FIMCompletionRequest) -> AsyncIterator[ChatDelta]:
        events = self.stream_events("/v1/fim/completions", self.fim_body(request, stream=True))
        return deltas_from_chunks(events, estimate_prompt_tokens=_estimate(request))


def _mistral_message(message: dict[str, Any]) -> dict[str, Any]:
    out = {key: message[key] for key in MESSAGE_FIELDS if key in message}
    if out.get("role") == "developer":
        out["role"] = "system"
    return out


def _estimate(request: FIMCompletionRequest) -> int:
    return estimate_tokens(request.prompt + (request.suffix or ""))


def register_engines(register: Any) -> None:
    register("mistral", MistralBackend, model_types=("chat", "embeddings"))
