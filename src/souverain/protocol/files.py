"""`/v1/files` upload form fields, beside the file itself: OpenAI's `purpose` and
`expires_after[anchor|seconds]` (the openai SDK writes a nested object as bracketed form
keys), Mistral's `purpose`, `expiry` (hours) and `visibility`.

Form values arrive as text, so numbers are read from their digits (not strictly typed
as JSON bodies are). The same model validates the upload (api/files.py) and describes
it in /openapi.json.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import InvalidRequest
from ..files.settings import UploadPurpose

MIN_EXPIRY_S, MAX_EXPIRY_S = 3600, 2_592_000  # OpenAI's bounds: an hour to 30 days
MAX_EXPIRY_HOURS = MAX_EXPIRY_S // 3600
OPTIONAL_FIELDS = ("expires_after[anchor]", "expires_after[seconds]", "expiry")
FORM_FIELDS = frozenset({"purpose", "visibility", *OPTIONAL_FIELDS})  # the others are skipped


class FileUploadFields(BaseModel):
    """The text fields of the multipart form. An absent purpose is `fine-tune` (the
    mistralai SDK sends none unless asked)."""

    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        json_schema_extra={
            "dependentRequired": {
                "expires_after[anchor]": ["expires_after[seconds]"],
                "expires_after[seconds]": ["expires_after[anchor]"],
            }
        },
    )

    purpose: UploadPurpose = "fine-tune"
    anchor: Literal["created_at"] | None = Field(default=None, alias="expires_after[anchor]")
    seconds: int | None = Field(
        default=None, ge=MIN_EXPIRY_S, le=MAX_EXPIRY_S, alias="expires_after[seconds]"
    )
    expiry: int | None = Field(
        default=None, ge=1, le=MAX_EXPIRY_HOURS, description="Mistral: hours until it expires."
    )
    visibility: Literal["workspace", "user"] = Field(
        default="user", description="Accepted; a file is always visible to its owner only."
    )

    @model_validator(mode="before")
    @classmethod
    def _unset_fields(cls, data: Any) -> Any:
        """A form cannot send null: the mistralai SDK writes an explicit `expiry=None` as
        the text "null", so an empty or "null" optional field reads as absent."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items()
                    if not (key in OPTIONAL_FIELDS and value in ("", "null"))}  # fmt: skip
        return data

    def check(self) -> None:
        """Rules between fields (400 naming the field), beyond what each field says."""
        if (self.anchor is None) != (self.seconds is None):
            raise InvalidRequest("expires_after needs both anchor and seconds",
                                 param="expires_after")  # fmt: skip

    def lifetime_s(self) -> int | None:
        if self.seconds is not None:
            return self.seconds
        return self.expiry * 3600 if self.expiry is not None else None
