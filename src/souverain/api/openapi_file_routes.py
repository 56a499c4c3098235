"""The Files API's lines of the OpenAPI table (`/v1/files...`, api/files.py) and the
shapes it answers (one object for both SDKs: files/shapes.py); merged into
api/openapi_routes.py, whose docstring says how to add a line."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..files.shapes import SAMPLE_TYPE_VALUES, SOURCE_VALUES
from ..files.store import ALL_PURPOSES
from ..protocol.files import FileUploadFields
from .files import MAX_FILTER_CHARS, MAX_FILTER_VALUES, MAX_SEARCH_CHARS
from .openapi_spec import Operation, Param, op
from .openapi_spec import int_param as _int
from .openapi_spec import text_param as _text


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class FileObject(_Out):
    """OpenAI's `FileObject` and Mistral's `FileSchema` in one (each SDK reads its keys)."""

    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    expires_at: int | None = None
    sample_type: str
    source: str
    num_lines: int | None = None
    mimetype: str | None = None
    signature: str | None = None
    visibility: Literal["workspace", "user"] | None = None
    deleted: bool


class FileList(_Out):
    """OpenAI's cursor page and Mistral's `ListFilesOut` in one."""

    object: Literal["list"]
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool
    total: int


class FileDeleted(_Out):
    id: str
    object: Literal["file"]
    deleted: bool


F = "/v1/files"
ONE = F + "/{file_id}"
USE: Literal["models.use"] = "models.use"
TAG = "files"


def _many(name: str, description: str, values: tuple[str, ...] | None = None) -> Param:
    item: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_FILTER_CHARS}
    if values is not None:
        item = {"type": "string", "enum": list(values)}
    schema = {"type": "array", "items": item, "maxItems": MAX_FILTER_VALUES}
    return Param(name, schema, description)


FILE_OPERATIONS: dict[str, Operation] = {
    f"POST {F}": op(
        "Upload a file (multipart: `file` and `purpose`)",
        USE,
        tag=TAG,
        body="multipart",
        form=FileUploadFields,
        ok=FileObject,
        errors=(404, 429),
        description="Streamed to disk as it arrives; a file over files.max_file_bytes is a "
        "413 at once, a tenant past files.tenant_quota_bytes a 429 `insufficient_quota`.",
    ),
    f"GET {F}": op(
        "The caller's files, newest first (OpenAI's cursor or Mistral's pages)",
        USE,
        tag=TAG,
        ok=FileList,
        errors=(404,),
        query=(
            _many("purpose", "Only files of these purposes.", ALL_PURPOSES),
            _text("search", "Words in the file name.", maxLength=MAX_SEARCH_CHARS),
            _text("after", "OpenAI's cursor: a file id from the previous page."),
            _int("limit", "Files per page (OpenAI), 1 to 10,000.", minimum=1, maximum=10_000),
            Param("order", {"type": "string", "enum": ["asc", "desc"]}),
            _int("page", "Mistral's page, from 0.", maximum=1_000_000),
            _int("page_size", "Files per page (Mistral).", minimum=1, maximum=10_000),
            Param("include_total", {"type": "boolean"}, "Always included."),
            _many("sample_type", "Mistral's sample types.", SAMPLE_TYPE_VALUES),
            _many("source", "Mistral's sources.", SOURCE_VALUES),
            _many("mimetypes", "Only files with these content types."),
        ),
    ),
    f"GET {ONE}": op("A file's description", USE, tag=TAG, ok=FileObject),
    f"DELETE {ONE}": op("Delete a file and its bytes", USE, tag=TAG, ok=FileDeleted),
    f"GET {ONE}/content": op(
        "The file's bytes (application/octet-stream, streamed)", USE, tag=TAG, binary=True
    ),
    f"GET {ONE}/url": op(
        "Not served: files do not leave the gateway by URL (read /content)",
        USE,
        tag=TAG,
        errors=(501,),
        query=(_int("expiry", "Hours (Mistral).", minimum=1, maximum=168),),
    ),
}
