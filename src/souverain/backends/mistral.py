"""`engine: mistral` — Mistral AI's API (or anything speaking its shape, e.g. another Souverain).

`base_url` is the server without `/v1`, as with the mistralai SDK; the default is
Mistral's EU-hosted `https://api.mistral.ai`. The key comes from the environment
variable named by `api_key_env`. Mistral rejects fields it does not know, so requests
are rebuilt from an allow-list rather than passed through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ..errors import UnsupportedByModel
from ..protocol.chat import ChatCompletionRequest, ChatDelta, Completion
from ..protocol.fim import FIMCompletionRequest
from ..protocol.text_completions import TextCompletionRequest
from . import outbound
from .base import gather
from .http_engine import completion_from_response, deltas_from_chunks, estimate_tokens
from .openai_compat import OpenAIBackend

FIM_FIELDS = (
    "prompt", "suffix", "temperature", "top_p", "max_tokens", "min_tokens", "stop",
    "random_seed",
)  # fmt: skip


class MistralBackend(OpenAIBackend):
    kind = "mistral"
    default_base_url = "https://api.mistral.ai"
    chat_path = "/v1/chat/completions"
    embeddings_path = "/v1/embeddings"
    models_path = "/v1/models"

    def chat_body(self, request: ChatCompletionRequest, *, stream: bool) -> dict[str, Any]:
        """Built from the allow-lists of backends/outbound.py: Mistral rejects fields it
        does not know, and unknown fields stay here anyway."""
        if request.logprobs:
            raise UnsupportedByModel(
                f"model {self.model.id!r} is served by Mistral's API, which returns no "
                "log probabilities; send the request without logprobs",
                param="logprobs",
            )
        body = outbound.chat_body(
            request,
            fields=outbound.MISTRAL_CHAT_FIELDS,
            message_fields=outbound.MISTRAL_MESSAGE_FIELDS,
        )
        for item in body["messages"]:
            if item.get("role") == "developer":
                item["role"] = "system"
        body.update(_mistral_only(request))
        body["model"] = self.upstream_model
        body["stream"] = stream
        body.setdefault("random_seed", request.effective_seed)
        body.setdefault("max_tokens", request.effective_max_tokens)
        if body.get("tool_choice") == "required":
            body["tool_choice"] = "any"
        return {key: value for key, value in body.items() if value is not None}

    def text(self, request: TextCompletionRequest) -> AsyncIterator[ChatDelta]:
        raise UnsupportedByModel(
            f"model {self.model.id!r} is served by Mistral's API, which has no legacy "
            "completions endpoint; use /v1/chat/completions (or /v1/fim/completions for code)",
            param="model",
        )

    async def text_complete(self, request: TextCompletionRequest) -> Completion:
        return await gather(self.text(request))  # the same refusal

    def fim_body(self, request: FIMCompletionRequest, *, stream: bool) -> dict[str, Any]:
        body = {name: getattr(request, name) for name in FIM_FIELDS}
        body.update(model=self.upstream_model, stream=stream)
        return {key: value for key, value in body.items() if value is not None}

    async def fim_complete(self, request: FIMCompletionRequest) -> Completion:
        data = await self.post_json("/v1/fim/completions", self.fim_body(request, stream=False))
        return completion_from_response(data, estimate_prompt_tokens=_estimate(request))

    def fim(self, request: FIMCompletionRequest) -> AsyncIterator[ChatDelta]:
        events = self.stream_events("/v1/fim/completions", self.fim_body(request, stream=True))
        return deltas_from_chunks(events, estimate_prompt_tokens=_estimate(request))


def _mistral_only(request: ChatCompletionRequest) -> dict[str, Any]:
    """Mistral's fields the protocol does not declare, checked for their shape."""
    extra = request.model_extra or {}
    out: dict[str, Any] = {}
    if isinstance(extra.get("prompt_mode"), str):
        out["prompt_mode"] = extra["prompt_mode"]
    prediction = extra.get("prediction")
    if isinstance(prediction, dict) and isinstance(prediction.get("content"), str):
        out["prediction"] = {"type": "content", "content": prediction["content"]}
    return out


def _estimate(request: FIMCompletionRequest) -> int:
    return estimate_tokens(request.prompt + (request.suffix or ""))


def register_engines(register: Any) -> None:
    register("mistral", MistralBackend, model_types=("chat", "embeddings"))
