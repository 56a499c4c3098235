"""The contract every engine implements: a few async methods, one per kind of call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from ..config import DeploymentConfig, ModelConfig
from ..errors import EngineUnavailable, UnsupportedByModel
from ..policy.facts import DeploymentFacts
from ..protocol.chat import ChatCompletionRequest, ChatDelta, Completion
from ..protocol.common import Usage
from ..protocol.embeddings import EmbeddingRequest
from ..protocol.fim import FIMCompletionRequest
from ..protocol.models import Capabilities
from ..protocol.text_completions import TextCompletionRequest


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: np.ndarray  # (n, dim) float32
    usage: Usage


class Backend:
    """One deployment of one model.

    An engine overrides what it can do: `chat` yields deltas as they come (the last one
    has `finish_reason` and `usage`); `chat_complete` may ask the engine for a whole answer
    at once and defaults to gathering the stream. Errors are `SouverainError`s; an
    `EngineUnavailable` before anything was produced lets the dispatcher try the next
    deployment.
    """

    kind = "abstract"
    # True: the engine itself holds answers to the request's json_schema and strict tools
    # (the local engine: grammar, check, retries); else the dispatcher does it for it
    # (answer_conformance.py).
    checks_structured_output = False

    def __init__(self, model: ModelConfig, deployment: DeploymentConfig) -> None:
        self.model = model
        self.deployment = deployment
        self.name = deployment.name or f"{model.id}@{deployment.engine}"
        self.facts = DeploymentFacts.of(deployment)

    async def start(self) -> None:
        """Load weights or open connections; called once before serving."""

    async def close(self) -> None:
        """Release what `start` took."""

    def ready(self) -> bool:
        return True

    def queue_depth(self) -> int:
        return 0

    async def probe(self) -> None:
        """An active health check: return if healthy, raise `EngineUnavailable` if not."""
        if not self.ready():
            raise EngineUnavailable(f"deployment {self.name} is not ready")

    def capabilities(self) -> Capabilities:
        return Capabilities(completion_chat=self.model.type == "chat")

    def context_length(self) -> int:
        return self.model.max_context_length or 32768

    @property
    def upstream_model(self) -> str:
        return self.deployment.upstream_model or self.model.id

    def chat(self, request: ChatCompletionRequest) -> AsyncIterator[ChatDelta]:
        raise UnsupportedByModel(f"model {self.model.id!r} does not serve chat completions")

    async def chat_complete(self, request: ChatCompletionRequest) -> Completion:
        return await gather(self.chat(request))

    def fim(self, request: FIMCompletionRequest) -> AsyncIterator[ChatDelta]:
        raise UnsupportedByModel(
            f"model {self.model.id!r} does not support fill-in-the-middle completions"
        )

    async def fim_complete(self, request: FIMCompletionRequest) -> Completion:
        return await gather(self.fim(request))

    def text(self, request: TextCompletionRequest) -> AsyncIterator[ChatDelta]:
        """A legacy text completion: the prompt continued as written, no chat template."""
        raise UnsupportedByModel(
            f"model {self.model.id!r} does not serve text completions (/v1/completions); "
            "use /v1/chat/completions",
            param="model",
        )

    async def text_complete(self, request: TextCompletionRequest) -> Completion:
        return await gather(self.text(request))

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        raise UnsupportedByModel(f"model {self.model.id!r} does not serve embeddings")


async def gather(deltas: AsyncIterator[ChatDelta]) -> Completion:
    completion = Completion()
    async for delta in deltas:
        completion.add(delta)
    return completion
