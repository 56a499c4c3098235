"""`engine: openai` — any OpenAI-compatible server: vLLM, llama.cpp server, Ollama, LM Studio.

`base_url` includes the `/v1` prefix, as with the openai SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from ..errors import EngineError
from ..protocol.chat import ChatCompletionRequest, ChatDelta, Completion
from ..protocol.common import Usage
from ..protocol.embeddings import EmbeddingRequest
from ..protocol.fim import FIMCompletionRequest
from ..protocol.models import Capabilities
from ..protocol.text_completions import TextCompletionRequest
from . import outbound
from .base import Embeddings
from .grammar import grammar_text
from .grammar_tool_call import ForcedCall, as_call, as_call_deltas, forced_call, spell_as_grammar
from .http_engine import (
    HTTPBackend,
    completion_from_response,
    deltas_from_chunks,
    estimate_tokens,
    usage_from,
)
from .registry import BackendFactory


class OpenAIBackend(HTTPBackend):
    kind = "openai"
    chat_path = "/chat/completions"
    embeddings_path = "/embeddings"

    def capabilities(self) -> Capabilities:
        declared = self.model.capabilities
        is_chat = self.model.type == "chat"
        return Capabilities(
            completion_chat=is_chat
            if declared.completion_chat is None
            else declared.completion_chat,
            completion_fim=bool(declared.completion_fim),
            function_calling=is_chat
            if declared.function_calling is None
            else declared.function_calling,
            vision=bool(declared.vision),
            embeddings=not is_chat,
        )

    # ---- chat -------------------------------------------------------------------------

    def chat_body(self, request: ChatCompletionRequest, *, stream: bool) -> dict[str, Any]:
        """Built from the allow-lists of backends/outbound.py: unknown fields stay here."""
        body = outbound.chat_body(
            request,
            fields=outbound.OPENAI_CHAT_FIELDS,
            message_fields=outbound.OPENAI_MESSAGE_FIELDS,
        )
        body["model"] = self.upstream_model
        body["stream"] = stream
        if request.random_seed is not None and request.seed is None:
            body["seed"] = request.random_seed
        self._spell_for_this_server(body, request)
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _spell_for_this_server(self, body: dict[str, Any], request: ChatCompletionRequest) -> None:
        """The same demands, spelled so this deployment obeys them (found against llama.cpp's
        server, which ignored or refused OpenAI's spellings: tests/test_openai_engine_body.py)."""
        # One output limit, under the one name this deployment reads: llama.cpp's server
        # ignores `max_completion_tokens`, OpenAI's reasoning models refuse `max_tokens`.
        body.pop("max_tokens", None)
        body.pop("max_completion_tokens", None)
        if request.effective_max_tokens is not None:
            body[self.deployment.max_tokens_field] = request.effective_max_tokens
        if body.get("tool_choice") in ("required", "any") and len(body.get("tools", ())) == 1:
            # llama.cpp's function-calling format takes `auto` or a named tool, not `required`.
            only = body["tools"][0]["function"]["name"]
            body["tool_choice"] = {"type": "function", "function": {"name": only}}
        given: dict[str, Any] = body.get("response_format") or {}
        if "json_schema" not in given or self.deployment.json_schema_as == "json_schema":
            return
        schema = given["json_schema"].get("schema") or {}
        if self.deployment.json_schema_as == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        else:  # llama.cpp's server reads a GBNF `grammar` in place of a response format
            del body["response_format"]
            body["grammar"] = grammar_text(schema)

    async def chat_complete(self, request: ChatCompletionRequest) -> Completion:
        body = self.chat_body(request, stream=False)
        call = self._call_by_grammar(body)
        data = await self.post_json(self.chat_path, body)
        completion = completion_from_response(
            data, estimate_prompt_tokens=_prompt_estimate(request)
        )
        return completion if call is None else as_call(completion, call)

    def chat(self, request: ChatCompletionRequest) -> AsyncIterator[ChatDelta]:
        body = self.chat_body(request, stream=True)
        call = self._call_by_grammar(body)
        events = self.stream_events(self.chat_path, body)
        deltas = deltas_from_chunks(events, estimate_prompt_tokens=_prompt_estimate(request))
        return deltas if call is None else as_call_deltas(deltas, call)

    def _call_by_grammar(self, body: dict[str, Any]) -> ForcedCall | None:
        """A forced call, on a deployment that reads grammars, asked for by grammar
        (grammar_tool_call.py); None, and `body` unchanged, otherwise."""
        if self.deployment.json_schema_as != "grammar":
            return None
        call = forced_call(body)
        if call is not None:
            spell_as_grammar(body, call)
        return call

    # ---- fill in the middle, through the legacy completions endpoint --------------------

    def fim_body(self, request: FIMCompletionRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.upstream_model,
            "prompt": request.prompt,
            "suffix": request.suffix,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stop": request.stop_sequences or None,
            "seed": request.random_seed,
            "stream": stream,
        }
        return {key: value for key, value in body.items() if value is not None}

    async def fim_complete(self, request: FIMCompletionRequest) -> Completion:
        if not self.capabilities().completion_fim:
            return await super().fim_complete(request)
        data = await self.post_json("/completions", self.fim_body(request, stream=False))
        return completion_from_response(data, estimate_prompt_tokens=_fim_estimate(request))

    def fim(self, request: FIMCompletionRequest) -> AsyncIterator[ChatDelta]:
        if not self.capabilities().completion_fim:
            return super().fim(request)
        events = self.stream_events("/completions", self.fim_body(request, stream=True))
        return deltas_from_chunks(
            _text_as_delta(events), estimate_prompt_tokens=_fim_estimate(request)
        )

    # ---- legacy text completions --------------------------------------------------------

    def text_body(self, request: TextCompletionRequest, *, stream: bool) -> dict[str, Any]:
        body = outbound.text_body(request)
        body.update(model=self.upstream_model, stream=stream)
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def text_complete(self, request: TextCompletionRequest) -> Completion:
        data = await self.post_json("/completions", self.text_body(request, stream=False))
        return completion_from_response(data, estimate_prompt_tokens=_text_estimate(request))

    def text(self, request: TextCompletionRequest) -> AsyncIterator[ChatDelta]:
        events = self.stream_events("/completions", self.text_body(request, stream=True))
        return deltas_from_chunks(
            _text_as_delta(events), estimate_prompt_tokens=_text_estimate(request)
        )

    # ---- embeddings ---------------------------------------------------------------------

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        body: dict[str, Any] = {
            "model": self.upstream_model,
            "input": request.input,
            "encoding_format": "float",
        }
        if request.wanted_dimensions:
            body["dimensions"] = request.wanted_dimensions
        data = await self.post_json(self.embeddings_path, body)
        return embeddings_from_response(data)


def embeddings_from_response(data: dict[str, Any]) -> Embeddings:
    try:
        rows = sorted(data["data"], key=lambda item: item.get("index", 0))
        vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        raise EngineError("the engine answered embeddings in an unexpected shape") from None
    usage = usage_from(data.get("usage") or {})
    return Embeddings(vectors=vectors, usage=Usage(usage.prompt_tokens, 0))


async def _text_as_delta(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Legacy completion chunks carry `text`; present them as chat deltas."""
    async for event in events:
        for choice in event.get("choices") or ():
            if "text" in choice and "delta" not in choice:
                choice["delta"] = {"content": choice.pop("text")}
        yield event


def _prompt_estimate(request: ChatCompletionRequest) -> int:
    return estimate_tokens("".join(message.text() for message in request.messages))


def _text_estimate(request: TextCompletionRequest) -> int:
    return estimate_tokens(request.prompt_text + (request.suffix or ""))


def _fim_estimate(request: FIMCompletionRequest) -> int:
    return estimate_tokens(request.prompt + (request.suffix or ""))


def register_engines(register: Any) -> None:
    factory: BackendFactory = OpenAIBackend
    register("openai", factory, model_types=("chat", "embeddings"))
