"""A file as both SDKs read it: one JSON object that satisfies OpenAI's `FileObject` and
Mistral's `FileSchema`/`CreateFileResponse`/`GetFileResponse` (each SDK ignores the keys it
does not know), and the listing that serves both paginations."""

from __future__ import annotations

from typing import Any

from .store import FilePage, FileRecord

# Mistral's `sample_type`, by purpose (its enum: pretrain, instruct, batch_request,
# batch_result, batch_error).
SAMPLE_TYPES = {"batch": "batch_request", "batch_output": "batch_result",
                "batch_error": "batch_error"}  # fmt: skip
SAMPLE_TYPE_VALUES = ("pretrain", "instruct", "batch_request", "batch_result", "batch_error")
# Mistral's `source` (upload, repository, mistral): what the gateway wrote is "mistral",
# the value its API gives the files the service made itself.
SOURCES = {"upload": "upload", "gateway": "mistral"}
SOURCE_VALUES = ("upload", "repository", "mistral")


def file_object(record: FileRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": int(record.created_at),
        "filename": record.filename,
        "purpose": record.purpose,
        # OpenAI: a stored file is ready at once (the field is deprecated there).
        "status": "processed",
        "status_details": None,
        "expires_at": int(record.expires_at) if record.expires_at is not None else None,
        # Mistral's fields.
        "sample_type": SAMPLE_TYPES.get(record.purpose, "instruct"),
        "source": SOURCES[record.source],
        "num_lines": record.num_lines,
        "mimetype": record.mimetype,
        "signature": record.sha256,  # the SHA-256 of the bytes, hex
        "visibility": "user",  # only its owner sees it (files/store.py)
        "deleted": False,
    }


def file_list(page: FilePage) -> dict[str, Any]:
    """OpenAI's cursor page (`first_id`, `last_id`, `has_more`) and Mistral's (`total`)."""
    data = [file_object(record) for record in page.files]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
        "total": page.total,
    }


def file_deleted(file_id: str) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "deleted": True}
