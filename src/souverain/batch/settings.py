"""`batch:` in the configuration: what one batch may hold and how it is cut into work."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# The endpoints a batch line may call, and the pipeline call kind each one is.
BATCH_ENDPOINTS = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/fim/completions": "fim",
    "/v1/ocr": "ocr",  # not a catalog model: the OCR route's call (batch/ocr_lines.py)
}


class BatchConfig(BaseModel):
    """Limits are checked while the input file is read, line by line, before any call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    max_lines: int = Field(default=50_000, ge=1, le=10_000_000, description="Requests per batch.")
    max_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1024, le=2**40, description="Input bytes per batch."
    )
    max_line_bytes: int = Field(
        default=1024 * 1024, ge=256, le=64 * 1024 * 1024, description="Bytes of one line."
    )
    max_input_files: int = Field(default=10, ge=1, le=1000, description="Mistral's input_files.")
    one_model: bool = Field(
        default=True, description="Every line of an OpenAI batch names the same model."
    )
    range_lines: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Lines per unit of work: replicas share a batch range by range, and a "
        "dead replica's range is redone from its first unanswered line.",
    )
    lane_concurrency: int = Field(
        default=2,
        ge=1,
        le=1024,
        description="Batch lines running at once per model in one replica (on in-process "
        "engines at most their workers); they also wait while interactive calls are in "
        "flight on the model (batch/lane.py).",
    )
    max_timeout_hours: int = Field(
        default=168, ge=1, le=8760, description="The longest completion window accepted."
    )
    max_window_s: float | None = Field(
        default=None,
        gt=0,
        le=8760 * 3600,
        description="The longest any batch runs, whatever window it asks for (seconds; "
        "None: its completion_window or timeout_hours).",
    )
    retry_s: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description="How long a line refused for rate or capacity (429, 503) is retried "
        "before it goes to the error file.",
    )
