"""One batch line answered through the pipeline, as the batch's submitter.

The line's body is read by the endpoint's own protocol model, then goes through the
same stages as an interactive call (`Pipeline.prepare`, then `complete` or `embed`):
the submitter's model scopes, quotas, classification claim, data-loss prevention,
policy, routing, usage row and audit leaf. A line refused for rate or capacity (429,
503) waits and is tried again, for up to `batch.retry_s`: a batch is not in a hurry,
and a refusal there would only move the line to the error file. Any other refusal is
the line's answer, in the error file, in the endpoint's error shape. Each call first
waits for its turn in the batch lane (batch/lane.py): interactive traffic goes first.
An OCR line is the OCR route's own call (ocr/call.py), behind the same rule applied to
the OCR engine's queue (batch/ocr_lines.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..api.http import validation_error
from ..context import Principal, RequestContext
from ..errors import EngineOverloaded, NotFound, PermissionDenied, RateLimited, SouverainError
from ..pipeline import CallKind, Pipeline
from ..protocol.chat import ChatCompletionRequest, render_completion
from ..protocol.embeddings import EmbeddingRequest, render_embeddings
from ..protocol.fim import FIMCompletionRequest
from ..protocol.token_ids import load_off_the_loop
from .lane import BatchLane
from .ocr_lines import OcrLines
from .settings import BATCH_ENDPOINTS

SCHEMAS: dict[str, type[BaseModel]] = {
    "chat": ChatCompletionRequest,
    "fim": FIMCompletionRequest,
    "embeddings": EmbeddingRequest,
}
RETRY_PAUSE_S = 2.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    request_id: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Submitter:
    """Who the lines run as, and what they claim about their data."""

    principal: Principal
    claim: str | None = None


class LineCaller:
    def __init__(
        self, pipeline: Pipeline, lane: BatchLane, retry_s: float, ocr: OcrLines | None = None
    ) -> None:
        self.pipeline = pipeline
        self.lane = lane
        self.retry_s = retry_s
        self.ocr = ocr  # `/v1/ocr` lines: the OCR route's call (batch/ocr_lines.py)

    async def answer(
        self,
        submitter: Submitter,
        endpoint: str,
        body: dict[str, Any],
        stop: asyncio.Event | None = None,
    ) -> Answer:
        """The line's response (any status); retried while refused for rate or capacity."""
        deadline = time.monotonic() + self.retry_s
        while True:
            ctx = RequestContext(endpoint="batch", principal=submitter.principal)
            ctx.claims.append(submitter.claim)
            kind = BATCH_ENDPOINTS[endpoint]
            gate = (
                self.ocr.admitted(stop)
                if kind == "ocr" and self.ocr is not None
                else self.lane.admitted(body.get("model"), stop)
            )
            try:
                async with gate:  # interactive first
                    return await self._call(ctx, kind, body)
            except (RateLimited, EngineOverloaded) as exc:
                pause = max(RETRY_PAUSE_S, exc.retry_after or 0.0)
                if time.monotonic() + pause > deadline or (stop is not None and stop.is_set()):
                    return Answer(exc.status_code, ctx.request_id, exc.body())
                await asyncio.sleep(pause)
            except SouverainError as exc:
                return Answer(exc.status_code, ctx.request_id, exc.body())

    async def _call(self, ctx: RequestContext, kind: str, body: dict[str, Any]) -> Answer:
        endpoints = ctx.principal.endpoints
        if endpoints is not None and kind not in endpoints:
            raise PermissionDenied(f"this key may not use the {kind} endpoints")
        if kind == "ocr":
            if self.ocr is None:
                raise NotFound("OCR is not available to batches on this gateway")
            return Answer(200, ctx.request_id, await self.ocr.answer(ctx, body))
        if kind == "embeddings":
            await load_off_the_loop()  # inputs may be token ids
        try:
            request = SCHEMAS[kind].model_validate(body)
        except ValidationError as exc:
            raise validation_error(exc) from None
        call_kind: CallKind = "chat" if kind == "chat" else "fim" if kind == "fim" else "embeddings"
        call = await self.pipeline.prepare(ctx, call_kind, request)  # type: ignore[arg-type]
        if isinstance(request, EmbeddingRequest):
            result = await self.pipeline.embed(ctx, call)
            rendered = render_embeddings(
                result.vectors,
                model=call.model.id,
                usage=result.usage,
                encoding_format=request.encoding_format,
            )
            return Answer(200, ctx.request_id, rendered)
        completion = await self.pipeline.complete(ctx, call)
        rendered = render_completion(completion, model=call.model.id, request_id=ctx.request_id)
        return Answer(200, ctx.request_id, rendered)
