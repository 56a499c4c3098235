"""Batch lines on `/v1/ocr`: the same call as the OCR route (ocr/call.py), as the submitter.

The OCR engine is not a catalog model, so the batch lane (batch/lane.py) does not see
it; its rule is applied here to the OCR engine's own queue: a line waits while an
interactive OCR call is in flight or queued in this replica (the engine's depth less
this replica's own OCR lines), and at most `batch.lane_concurrency` OCR lines run at
once. A line refused because the engine's queue is full (503) is retried by the caller
(batch/execute.py), as any line refused for capacity.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import ValidationError

from ..api.http import validation_error
from ..context import RequestContext
from ..errors import NotFound
from ..ocr.call import OcrCalls
from ..pipeline import Pipeline
from ..protocol.ocr import OCRRequest
from .settings import BATCH_ENDPOINTS

PAUSE_S = 0.05  # how often a waiting line looks at the engine's depth again


class OcrLines:
    def __init__(self, calls: OcrCalls, share: int) -> None:
        self.calls = calls
        self._slots = asyncio.Semaphore(share)
        self._running = 0  # this replica's OCR lines in the engine

    def interactive(self) -> int:
        """OCR documents in flight or queued here that are not batch lines."""
        return max(0, self.calls.service.queue_depth() - self._running)

    @asynccontextmanager
    async def admitted(self, stop: asyncio.Event | None = None) -> AsyncIterator[None]:
        async with self._slots:
            # The engine exposes a depth, not an event to wait on: it is polled.
            while self.interactive() > 0 and not (stop is not None and stop.is_set()):  # noqa: ASYNC110
                await asyncio.sleep(PAUSE_S)
            self._running += 1
            try:
                yield
            finally:
                self._running -= 1

    async def answer(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """The OCR answer (Mistral's shape), or the route's error for this body."""
        try:
            request = OCRRequest.model_validate(body)
        except ValidationError as exc:
            raise validation_error(exc) from None
        return await self.calls.run(ctx, request)


def check_line_model(
    pipeline: Pipeline, ocr: OcrCalls | None, ctx: RequestContext, endpoint: str, name: str
) -> None:
    """The 404 (or 403) for a model the submitter may not call on this endpoint: the OCR
    model's own names and scopes on `/v1/ocr`, the catalog elsewhere."""
    if BATCH_ENDPOINTS.get(endpoint) != "ocr":
        pipeline.visible_model(ctx, name)
    elif ocr is None:
        raise NotFound("OCR is not available to batches on this gateway", param="endpoint")
    else:
        ocr.check_model(ctx, name)
