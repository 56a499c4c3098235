"""Batches as their owners see them: create, read, list, cancel (both APIs).

A batch is a `batch` job (batch/handler.py) owned by its submitter (agents/store.py
`Owner`): another owner, or another tenant, gets a 404 for its id as for an id that
does not exist. The submitter's principal is stored with the job, so that any replica,
after any restart, runs its lines as that principal.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..agents.store import Owner
from ..context import RequestContext
from ..errors import InvalidRequest, NotFound, PermissionDenied
from ..files.store import FileStore
from ..jobs.runner import JobHandler, JobRunner
from ..jobs.store import JobRow, JobStore, NewJob
from ..library.embedder import principal_to_json
from ..ocr.call import OcrCalls
from ..pipeline import Pipeline
from .execute import LineCaller
from .handler import BATCH_KIND, BatchHandler
from .lane import BatchLane
from .lines import LineCounts, LineStore
from .lines_format import Api
from .ocr_lines import OcrLines, check_line_model
from .ranges import RANGE_KIND, RangeHandler
from .settings import BATCH_ENDPOINTS, BatchConfig

MAX_METADATA_KEYS, MAX_KEY_CHARS, MAX_VALUE_CHARS = 16, 64, 512


@dataclass(frozen=True, slots=True)
class BatchView:
    job: JobRow
    counts: LineCounts


@dataclass(frozen=True, slots=True)
class BatchOrder:
    api: Api
    endpoint: str
    input_files: list[str]
    window_s: float
    completion_window: str
    metadata: dict[str, str] | None
    model: str | None = None  # Mistral: the job's model
    output_expires_s: int | None = None  # OpenAI's output_expires_after.seconds


class BatchService:
    def __init__(
        self,
        config: BatchConfig,
        jobs: JobStore,
        lines: LineStore,
        files: FileStore,
        pipeline: Pipeline,
        ocr: OcrCalls | None = None,
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.lines = lines
        self.files = files
        self.pipeline = pipeline
        self.ocr = ocr  # `/v1/ocr` lines; None: such batches are refused
        self.runner: JobRunner | None = None  # set when the app starts its runner

    def handlers(self) -> dict[str, JobHandler]:
        lane = BatchLane(self.pipeline.catalog, self.config.lane_concurrency)
        ocr = OcrLines(self.ocr, self.config.lane_concurrency) if self.ocr is not None else None
        caller = LineCaller(self.pipeline, lane, self.config.retry_s, ocr)
        return {
            BATCH_KIND: BatchHandler(
                self.config, self.jobs, self.lines, self.files, self.pipeline, self.ocr
            ),
            RANGE_KIND: RangeHandler(self.config, self.jobs, self.lines, self.files, caller),
        }

    async def create(self, ctx: RequestContext, order: BatchOrder) -> BatchView:
        principal = ctx.principal
        if order.endpoint not in BATCH_ENDPOINTS:
            raise InvalidRequest(
                f"endpoint {order.endpoint[:200]!r} is not one a batch may call "
                f"({', '.join(BATCH_ENDPOINTS)})",
                param="endpoint",
            )
        kind = BATCH_ENDPOINTS[order.endpoint]
        if principal.endpoints is not None and kind not in principal.endpoints:
            raise PermissionDenied(f"this key may not use the {kind} endpoints")
        _check_metadata(order.metadata)
        if order.endpoint == "/v1/ocr" and self.ocr is None:
            raise InvalidRequest("OCR is not available to batches on this gateway",
                                 param="endpoint")  # fmt: skip
        if order.model is not None:  # 404 for a model out of reach
            check_line_model(self.pipeline, self.ocr, ctx, order.endpoint, order.model)
        for file_id in order.input_files:
            record = await asyncio.to_thread(self.files.get, principal, file_id)
            param = "input_file_id" if order.api == "openai" else "input_files"
            if record is None:
                raise NotFound(f"no file {file_id[:100]!r}", param=param, code="file_not_found")
            if record.purpose != "batch":
                raise InvalidRequest(
                    f"file {file_id!r} was uploaded with purpose {record.purpose!r}; "
                    "a batch reads files uploaded with purpose 'batch'",
                    param=param,
                )
        owner = Owner.of(principal)
        payload = {"api": order.api, "endpoint": order.endpoint, "input_files": order.input_files,
                   "model": order.model, "metadata": order.metadata,
                   "completion_window": order.completion_window,
                   "output_expires_s": order.output_expires_s,
                   "claim": next((c for c in ctx.claims if c), None)}  # fmt: skip
        job = NewJob(kind=BATCH_KIND, tenant=owner.tenant, tenant_id=owner.tenant_id,
                     owner=owner.owner, principal=principal_to_json(principal), payload=payload,
                     stage="validating", expires_at=time.time() + self._window(order),
                     id=f"batch_{uuid.uuid4().hex}")  # fmt: skip
        job_id = await asyncio.to_thread(self.jobs.create, job)
        if self.runner is not None:
            self.runner.nudge()
        view = await self.get(ctx, job_id)
        assert view is not None
        return view

    def _window(self, order: BatchOrder) -> float:
        cap = self.config.max_window_s
        return order.window_s if cap is None else min(order.window_s, cap)

    async def get(self, ctx: RequestContext, batch_id: str) -> BatchView | None:
        job = await asyncio.to_thread(self.jobs.get, batch_id)
        owner = Owner.of(ctx.principal)
        if (
            job is None
            or job.kind != BATCH_KIND
            or (job.tenant, job.owner)
            != (
                owner.tenant,
                owner.owner,
            )
        ):
            return None
        return await self._view(job)

    async def require(self, ctx: RequestContext, batch_id: str) -> BatchView:
        view = await self.get(ctx, batch_id)
        if view is None:
            raise NotFound(f"no batch {batch_id[:100]!r}", code="batch_not_found")
        return view

    async def list(
        self,
        ctx: RequestContext,
        *,
        before: float | None,
        offset: int,
        limit: int,
        oldest_first: bool = False,
    ) -> tuple[list[BatchView], int]:
        owner = Owner.of(ctx.principal)
        rows, total = await asyncio.to_thread(
            self.jobs.owned, BATCH_KIND, owner.tenant, owner.owner,
            before=before, offset=offset, limit=limit, oldest_first=oldest_first,
        )  # fmt: skip
        return [await self._view(job) for job in rows], total

    async def cancel(self, ctx: RequestContext, batch_id: str) -> BatchView:
        view = await self.require(ctx, batch_id)
        if not view.job.finished:
            await asyncio.to_thread(self.jobs.request_cancel, batch_id)
            if self.runner is not None:
                self.runner.nudge()
        return await self.require(ctx, batch_id)

    async def _view(self, job: JobRow) -> BatchView:
        stored = job.result.get("counts")
        if job.finished and stored is not None:
            counts = LineCounts(int(stored["succeeded"]), int(stored["failed"]))
        else:
            counts = await asyncio.to_thread(self.lines.counts, job.id)
        return BatchView(job, counts)


def _check_metadata(metadata: dict[str, Any] | None) -> None:
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequest(f"metadata holds at most {MAX_METADATA_KEYS} keys", param="metadata")
    for key, value in metadata.items():
        if len(key) > MAX_KEY_CHARS or not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
            raise InvalidRequest(
                f"metadata: keys are at most {MAX_KEY_CHARS} characters and values strings "
                f"of at most {MAX_VALUE_CHARS}",
                param="metadata",
            )
