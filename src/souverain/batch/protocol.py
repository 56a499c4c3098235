"""The request bodies of both Batch APIs, as their SDKs send them, and the answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from ..protocol.common import StrictModel
from .lines_format import Api
from .service import BatchView

Metadata = dict[str, str]
FileId = Annotated[str, Field(min_length=1, max_length=200)]
# OpenAI's bounds for `output_expires_after.seconds`: an hour to 30 days.
MIN_OUTPUT_EXPIRY_S, MAX_OUTPUT_EXPIRY_S = 3600, 2_592_000
# The endpoints a batch line may call (batch/settings.py BATCH_ENDPOINTS).
Endpoint = Literal["/v1/chat/completions", "/v1/embeddings", "/v1/fim/completions", "/v1/ocr"]


class OutputExpiresAfter(StrictModel):
    """When the batch's output and error files expire: `seconds` after each file is
    created (openai OutputExpiresAfter)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    anchor: Literal["created_at"]
    seconds: int = Field(ge=MIN_OUTPUT_EXPIRY_S, le=MAX_OUTPUT_EXPIRY_S)


class BatchCreate(StrictModel):
    """OpenAI's `POST /v1/batches` (openai/types/batch_create_params.py). `endpoint` also
    takes this gateway's `/v1/fim/completions` and `/v1/ocr` (the SDK sends any string)."""

    model_config = ConfigDict(strict=True, extra="allow")

    input_file_id: str = Field(min_length=1, max_length=200)
    endpoint: Endpoint
    completion_window: str = Field(pattern=r"^[0-9]{1,4}h$", max_length=5)
    metadata: Metadata | None = Field(default=None, max_length=16)
    output_expires_after: OutputExpiresAfter | None = None  # None: the files never expire


class BatchJobCreate(StrictModel):
    """Mistral's `POST /v1/batch/jobs` (mistralai CreateBatchJobRequest); only
    `input_files` (not inline `requests`, not `agent_id`)."""

    model_config = ConfigDict(strict=True, extra="allow")

    input_files: list[FileId] = Field(min_length=1, max_length=1000)
    endpoint: Endpoint
    model: str = Field(min_length=1, max_length=200)
    metadata: Metadata | None = Field(default=None, max_length=16)
    timeout_hours: int = Field(default=24, ge=1, le=8760)


OPENAI_STATUS = {"validating": "validating", "in_progress": "in_progress",
                 "finalizing": "finalizing"}  # fmt: skip
TERMINAL_OPENAI = {"succeeded": "completed", "failed": "failed", "cancelled": "cancelled",
                   "expired": "expired"}  # fmt: skip
TERMINAL_MISTRAL = {"succeeded": "SUCCESS", "failed": "FAILED", "cancelled": "CANCELLED",
                    "expired": "TIMEOUT_EXCEEDED"}  # fmt: skip


def openai_status(view: BatchView) -> str:
    job = view.job
    if job.finished:
        return TERMINAL_OPENAI[job.status]
    if job.cancel_requested:
        return "cancelling"
    return OPENAI_STATUS.get(job.stage or "validating", "in_progress")


def mistral_status(view: BatchView) -> str:
    job = view.job
    if job.finished:
        return TERMINAL_MISTRAL[job.status]
    if job.cancel_requested:
        return "CANCELLATION_REQUESTED"
    return "QUEUED" if job.stage == "validating" and job.status == "queued" else "RUNNING"


def _at(value: Any) -> int | None:
    return int(value) if value is not None else None


def render_openai(view: BatchView) -> dict[str, Any]:
    job, result = view.job, view.job.result
    status = openai_status(view)
    errors = list(result.get("errors") or [])
    if job.status == "failed" and job.error:  # given up, or an unexpected failure
        errors.append({"code": "batch_failed", "message": job.error, "line": None, "param": None})
    return {
        "id": job.id,
        "object": "batch",
        "endpoint": job.payload["endpoint"],
        "model": result.get("model") or job.payload.get("model"),
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": job.payload["input_files"][0],
        "completion_window": job.payload.get("completion_window", "24h"),
        "status": status,
        "output_file_id": result.get("output_file_id"),
        "error_file_id": result.get("error_file_id"),
        "created_at": int(job.created_at),
        "in_progress_at": _at(result.get("in_progress_at")),
        "expires_at": _at(job.expires_at),
        "finalizing_at": _at(result.get("finalizing_at")),
        "completed_at": _at(job.finished_at) if status == "completed" else None,
        "failed_at": _at(job.finished_at) if status == "failed" else None,
        "expired_at": _at(job.finished_at) if status == "expired" else None,
        "cancelling_at": _at(job.updated_at) if job.cancel_requested else None,
        "cancelled_at": _at(job.finished_at) if status == "cancelled" else None,
        "request_counts": {
            "total": int(result.get("total") or 0),
            "completed": view.counts.succeeded,
            "failed": view.counts.failed,
        },
        "metadata": job.payload.get("metadata"),
    }


def render_mistral(view: BatchView) -> dict[str, Any]:
    job, result = view.job, view.job.result
    errors = [{"message": e["message"], "count": 1} for e in result.get("errors") or []]
    if job.status == "failed" and job.error:
        errors.append({"message": job.error, "count": 1})
    return {
        "id": job.id,
        "object": "batch",
        "input_files": job.payload["input_files"],
        "metadata": job.payload.get("metadata"),
        "endpoint": job.payload["endpoint"],
        "model": job.payload.get("model") or result.get("model"),
        "agent_id": None,
        "output_file": result.get("output_file_id"),
        "error_file": result.get("error_file_id"),
        "errors": errors,
        "outputs": None,
        "status": mistral_status(view),
        "created_at": int(job.created_at),
        "total_requests": int(result.get("total") or 0),
        "completed_requests": view.counts.done,
        "succeeded_requests": view.counts.succeeded,
        "failed_requests": view.counts.failed,
        "started_at": _at(job.started_at),
        "completed_at": _at(job.finished_at),
    }


def api_of(view: BatchView) -> Api:
    api: Api = view.job.payload["api"]
    return api
