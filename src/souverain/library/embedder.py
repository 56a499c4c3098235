"""Embeddings for chunks and queries, always through the pipeline, as the caller.

Each batch is one model call with its own `RequestContext` for the principal who
uploaded the document (or who searches): its model scopes, quotas, classification
claim, data-loss prevention and policy apply, and it gets a usage row and an audit
leaf (endpoint `libraries`). E5 models want `passage: ` before texts to be found and
`query: ` before questions: the local engine reads `input_type` for that.

A chunk the model finds too long (a table of numbers is many tokens per character) is
embedded from its first half, then its first quarter, …: its whole text still goes to
keyword search and citations.

`principal_to_json`/`principal_from_json` keep who uploaded a document with the
document, so that a replica that restarts can still process it as that principal.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Literal

import numpy as np

from ..context import Principal, RequestContext
from ..errors import ContextLengthExceeded
from ..pipeline import Pipeline
from ..protocol.embeddings import EmbeddingRequest
from ..quotas.limits import Demand, Limits, Scope

InputType = Literal["passage", "query"]
MIN_CHARS = 64  # below this a refused text is an error, not something to shorten


class Embedder:
    def __init__(self, pipeline: Pipeline, *, batch: int) -> None:
        self.pipeline = pipeline
        self.batch = batch

    async def passages(
        self, principal: Principal, claim: str | None, model: str, texts: list[str]
    ) -> tuple[np.ndarray, int]:
        """Unit vectors (float32, one row per text) and the tokens they cost."""
        rows: list[np.ndarray] = []
        tokens = 0
        for first in range(0, len(texts), self.batch):
            vectors, used = await self._batch(
                principal, claim, model, texts[first : first + self.batch], "passage"
            )
            rows.append(vectors)
            tokens += used
        if not rows:
            return np.zeros((0, 0), dtype=np.float32), 0
        return unit(np.vstack(rows)), tokens

    async def query(self, ctx: RequestContext, model: str, text: str) -> np.ndarray:
        """The query's unit vector, as the caller of `ctx` (which is left as it is)."""
        vectors, _ = await self._call(_child(ctx.principal, ctx.claims), model, [text], "query")
        query: np.ndarray = unit(vectors)[0]
        return query

    async def _batch(
        self,
        principal: Principal,
        claim: str | None,
        model: str,
        texts: list[str],
        input_type: InputType,
    ) -> tuple[np.ndarray, int]:
        try:
            return await self._call(_child(principal, [claim]), model, texts, input_type)
        except ContextLengthExceeded:
            if len(texts) == 1 and len(texts[0]) < MIN_CHARS:
                raise
        if len(texts) == 1:  # too long: its first half stands for it
            return await self._batch(
                principal, claim, model, [texts[0][: len(texts[0]) // 2]], input_type
            )
        parts = [await self._batch(principal, claim, model, [t], input_type) for t in texts]
        return np.vstack([p[0] for p in parts]), sum(p[1] for p in parts)

    async def _call(
        self, ctx: RequestContext, model: str, texts: list[str], input_type: InputType
    ) -> tuple[np.ndarray, int]:
        request = EmbeddingRequest(model=model, input=texts, input_type=input_type)  # type: ignore[call-arg]
        call = await self.pipeline.prepare(ctx, "embeddings", request)
        result = await self.pipeline.embed(ctx, call)
        vectors = np.asarray(result.vectors, dtype=np.float32).reshape(len(texts), -1)
        return vectors, result.usage.prompt_tokens


def _child(principal: Principal, claims: list[str | None]) -> RequestContext:
    ctx = RequestContext(endpoint="libraries", principal=principal)
    ctx.claims.extend(claims)
    return ctx


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms == 0, 1, norms), dtype=np.float32)


# ---- who processes a document, kept with it --------------------------------------------------


def principal_to_json(principal: Principal) -> dict[str, Any]:
    data = asdict(principal)
    for name in ("models", "endpoints"):
        if data[name] is not None:
            data[name] = sorted(data[name])
    return data


def principal_from_json(data: dict[str, Any]) -> Principal:
    known = {field.name for field in fields(Principal)}
    values = {key: value for key, value in data.items() if key in known}
    for name in ("models", "endpoints"):
        if values.get(name) is not None:
            values[name] = frozenset(values[name])
    values["teams"] = tuple(values.get("teams") or ())
    values["quotas"] = tuple(
        Demand(Scope(**demand["scope"]), Limits(**demand["limits"]))
        for demand in values.get("quotas") or ()
    )
    return Principal(**values)
