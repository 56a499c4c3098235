"""`/v1/libraries`: Mistral's Libraries API shapes (libraries, documents, shares).

Ids are strings (uuids for libraries and documents); Souverain's users, teams and
tenants have integer ids, given as strings in `share_with_uuid` and `org_id`.
Times are ISO 8601 in UTC. Processing states are Mistral's `process_status` values:
todo, in_progress, done, error, missing_content (no text found).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from .common import APIModel

PROCESSING_STATUS = {
    "todo": "Pending",
    "in_progress": "Running",
    "done": "Completed",
    "error": "Failed",
    "missing_content": "Failed",
}


class LibraryCreate(APIModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    chunk_size: int | None = Field(default=None, ge=256, le=32768)
    owner_type: Literal["User", "Workspace"] | None = None


class LibraryUpdate(APIModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class DocumentUpdate(APIModel):
    name: str | None = Field(default=None, min_length=1, max_length=500)
    attributes: dict[str, Any] | None = None
    # Not supported (library/document_service.py refuses a value: delete the document
    # when it should go): the document allows null only.
    expires_at: Annotated[datetime | None, WithJsonSchema({"type": "null"})] = Field(
        default=None, strict=False
    )


class ShareRequest(APIModel):
    level: Literal["Viewer", "Editor"]
    share_with_uuid: str = Field(min_length=1, max_length=40)
    share_with_type: Literal["User", "Workspace", "Org"]
    org_id: str | None = None


class ShareDelete(APIModel):
    share_with_uuid: str = Field(min_length=1, max_length=40)
    share_with_type: Literal["User", "Workspace", "Org"]
    org_id: str | None = None


class SearchRequest(APIModel):
    """Souverain's extension (Mistral has no public search route): hybrid search."""

    query: str = Field(min_length=1, max_length=4000)
    library_ids: list[str] | None = Field(default=None, max_length=100)
    top_k: int = Field(default=5, ge=1, le=50)


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def library_json(row: Any, figures: dict[str, int], org_role: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "owner_id": str(row.created_by_user_id)
        if row.created_by_user_id is not None
        else row.created_by,
        "owner_type": row.owner_type,
        "total_size": figures.get("size", 0),
        "nb_documents": figures.get("documents", 0),
        "chunk_size": row.chunk_size,
        "emoji": None,
        "description": row.description,
        "generated_description": None,
        "explicit_user_members_count": figures.get("users", 0),
        "explicit_workspace_members_count": figures.get("teams", 0),
        "org_sharing_role": org_role,
        "generated_name": None,
        # Souverain-specific fields that are not in Mistral's spec.
        "tenant_id": str(row.tenant_id),
        "embedding_model": row.embedding_model,
    }


def document_json(row: Any) -> dict[str, Any]:
    failed = row.status in ("error", "missing_content")
    return {
        "id": row.id,
        "library_id": row.library_id,
        "hash": row.hash,
        "mime_type": row.mime_type,
        "extension": row.extension,
        "size": row.size,
        "name": row.name,
        "created_at": iso(row.created_at),
        "process_status": row.status,
        "uploaded_by_id": str(row.uploaded_by_user_id)
        if row.uploaded_by_user_id is not None
        else row.uploaded_by,
        "uploaded_by_type": "User" if row.uploaded_by_user_id is not None else "ApiKey",
        "processing_status": PROCESSING_STATUS.get(row.status, row.status),
        "tokens_processing_total": row.tokens,
        # No generated summaries here: a failed document's summary says why it failed.
        "summary": f"Processing failed: {row.error}" if failed and row.error else None,
        "last_processed_at": iso(row.processed_at),
        "number_of_pages": row.number_of_pages,
        "tokens_processing_main_content": row.tokens,
        "tokens_processing_summary": None,
        "url": None,
        "attributes": json.loads(row.attributes) if row.attributes else None,
        "expires_at": None,
        # Souverain-specific fields that are not in Mistral's spec.
        "process_error": row.error,
        "chunks": row.chunk_count,
    }


def status_json(row: Any) -> dict[str, Any]:
    return {
        "document_id": row.id,
        "process_status": row.status,
        "processing_status": PROCESSING_STATUS.get(row.status, row.status),
        "process_error": row.error,
    }


def sharing_json(
    library: Any, target_type: str, target_id: int | str, role: str, by: str | None
) -> dict[str, Any]:
    return {
        "library_id": library.id,
        "org_id": str(library.tenant_id),
        "role": role,
        "share_with_type": target_type,
        "share_with_uuid": str(target_id),
        "user_id": by,
    }


def pagination(total: int, page: int, page_size: int) -> dict[str, Any]:
    return {
        "total_items": total,
        "total_pages": (total + page_size - 1) // page_size if page_size else 0,
        "current_page": page,
        "page_size": page_size,
        "has_more": (page + 1) * page_size < total,
    }
