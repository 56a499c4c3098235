"""The Batch APIs' lines of the OpenAPI table (`/v1/batches...` and `/v1/batch/jobs...`,
api/batches.py) and the shapes they answer (batch/protocol.py); merged into
api/openapi_routes.py, whose docstring says how to add a line."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..batch.protocol import BatchCreate, BatchJobCreate
from .openapi_spec import PAGE, Operation, Param, op
from .openapi_spec import int_param as _int
from .openapi_spec import text_param as _text


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class BatchObject(_Out):
    """OpenAI's `Batch` (openai/types/batch.py)."""

    id: str
    object: Literal["batch"]
    endpoint: str
    input_file_id: str
    completion_window: str
    status: Literal[
        "validating", "failed", "in_progress", "finalizing", "completed", "expired",
        "cancelling", "cancelled",
    ]  # fmt: skip
    created_at: int
    request_counts: dict[str, int]
    errors: dict[str, Any] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchPage(_Out):
    object: Literal["list"]
    data: list[BatchObject]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class BatchJobObject(_Out):
    """Mistral's `BatchJob` (mistralai/client/models/batchjob.py)."""

    id: str
    object: Literal["batch"]
    input_files: list[str]
    endpoint: str
    errors: list[dict[str, Any]]
    status: Literal[
        "QUEUED", "RUNNING", "SUCCESS", "FAILED", "TIMEOUT_EXCEEDED",
        "CANCELLATION_REQUESTED", "CANCELLED",
    ]  # fmt: skip
    created_at: int
    total_requests: int
    completed_requests: int
    succeeded_requests: int
    failed_requests: int
    output_file: str | None = None
    error_file: str | None = None


class BatchJobPage(_Out):
    object: Literal["list"]
    data: list[BatchJobObject]
    total: int


B, J = "/v1/batches", "/v1/batch/jobs"
USE: Literal["models.use"] = "models.use"

BATCH_OPERATIONS: dict[str, Operation] = {
    f"POST {B}": op(
        "Create a batch from an uploaded JSONL file (OpenAI)",
        USE,
        tag="batches",
        body=BatchCreate,
        errors=(404,),
        ok=BatchObject,
    ),
    f"GET {B}": op(
        "The caller's batches, newest first (OpenAI)",
        USE,
        tag="batches",
        ok=BatchPage,
        query=(
            _text("after", "A batch id: the page starts after it.", maxLength=200),
            _int("limit", "Batches per page.", minimum=1, maximum=100),
        ),
    ),
    f"GET {B}/{{batch_id}}": op("A batch (OpenAI)", USE, tag="batches", ok=BatchObject),
    f"POST {B}/{{batch_id}}/cancel": op(
        "Cancel a batch; what was done is kept (OpenAI)", USE, tag="batches", ok=BatchObject
    ),
    f"POST {J}": op(
        "Create a batch job (Mistral)",
        USE,
        tag="batches",
        body=BatchJobCreate,
        errors=(404,),
        ok=BatchJobObject,
    ),
    f"GET {J}": op(
        "The caller's batch jobs, newest first (Mistral)",
        USE,
        tag="batches",
        ok=BatchJobPage,
        query=(
            PAGE,
            _int("page_size", "Jobs per page.", minimum=1, maximum=1000),
            Param(
                "created_by_me",
                {"type": "string", "enum": ["true", "false"]},
                "Accepted as the SDK sends it: a caller sees only its own jobs.",
            ),
            Param(
                "order_by",
                {"type": "string", "enum": ["-created", "created"]},
                "Newest first (default) or oldest first.",
            ),
        ),
    ),
    f"GET {J}/{{job_id}}": op("A batch job (Mistral)", USE, tag="batches", ok=BatchJobObject),
    f"POST {J}/{{job_id}}/cancel": op(
        "Cancel a batch job; what was done is kept (Mistral)",
        USE,
        tag="batches",
        ok=BatchJobObject,
    ),
}
