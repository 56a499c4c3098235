"""`files:` in the configuration: what one upload and one tenant may store (docs/files.md)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What a client may name as `purpose` when it uploads: every value the openai SDK
# documents, and Mistral's (`ocr`). Files the gateway writes itself (batch results)
# carry purposes of their own (files/store.py GATEWAY_PURPOSES).
UploadPurpose = Literal["batch", "fine-tune", "ocr", "user_data", "assistants", "vision", "evals"]
UPLOAD_PURPOSES: tuple[str, ...] = get_args(UploadPurpose)


class FilesConfig(BaseModel):
    """Sizes in bytes. A file over `max_file_bytes` is refused while it streams in (413);
    a tenant's files together may not pass `tenant_quota_bytes` (429 insufficient_quota)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    max_file_bytes: int = Field(default=200 * 1024 * 1024, ge=1024, le=2**40)
    tenant_quota_bytes: int = Field(default=10 * 1024**3, ge=1024, le=2**50)
    purposes: tuple[str, ...] = Field(default=UPLOAD_PURPOSES, min_length=1)

    @model_validator(mode="after")
    def _known_purposes(self) -> FilesConfig:
        unknown = [p for p in self.purposes if p not in UPLOAD_PURPOSES]
        if unknown:
            raise ValueError(f"purposes: {unknown[0]!r} is not one of {', '.join(UPLOAD_PURPOSES)}")
        if self.max_file_bytes > self.tenant_quota_bytes:
            raise ValueError("max_file_bytes is larger than tenant_quota_bytes")
        return self
