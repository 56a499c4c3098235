"""Documents of a library: upload (then processed in the background), read, change, delete.

Reading a document needs the viewer level on its library; uploading, renaming,
reprocessing and deleting need editor. A document id outside the library named in the
path is 404, like a library the caller may not read.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from ..context import RequestContext
from ..errors import InvalidRequest, NotFound, PayloadTooLarge
from ..protocol.libraries import DocumentUpdate, document_json, pagination, status_json
from .archive import check_declared
from .chunker import page_range
from .documents import SORTABLE, DocumentStore
from .embedder import principal_to_json
from .parsers import detect

if TYPE_CHECKING:
    from .service import LibraryService

MAX_PAGE_SIZE = 1000


class DocumentService:
    def __init__(self, libraries: LibraryService, store: DocumentStore) -> None:
        self.libraries = libraries
        self.store = store

    async def upload(
        self, ctx: RequestContext, library_id: str, filename: str, data: bytes
    ) -> dict[str, Any]:
        libraries = self.libraries
        caller, _ = await libraries.access(ctx, library_id, "editor")
        limit = libraries.config.max_upload_bytes
        if len(data) > limit:
            raise too_large(limit)
        detected = detect(data, filename)
        if detected.kind == "docx":  # the ZIP's directory only: a bomb is refused at once
            check_declared(data, libraries.config.limits)
        if detected.kind == "image" and not libraries.config.ocr:
            raise InvalidRequest(
                "images are read by OCR, which is off on this gateway (libraries.ocr)",
                param="file",
            )
        name = filename.replace("\\", "/").rsplit("/", 1)[-1][:500] or "document"
        await libraries.record(
            ctx,
            "library.document.upload",
            {"library": library_id, "size": len(data), "kind": detected.kind},
        )
        principal = ctx.principal
        job = {"principal": principal_to_json(principal), "claims": list(ctx.claims)}
        document_id = await asyncio.to_thread(
            self.store.add,
            library_id,
            name=name,
            kind=detected.kind,
            mime_type=detected.mime_type,
            extension=detected.extension,
            data=data,
            uploaded_by=caller.label,
            uploaded_by_user_id=principal.user_id,
            job=job,
        )
        libraries.nudge()
        return document_json(await self._row(library_id, document_id))

    async def list_documents(
        self,
        ctx: RequestContext,
        library_id: str,
        *,
        search: str | None,
        page: int,
        page_size: int,
        sort_by: str,
        sort_order: str,
    ) -> dict[str, Any]:
        await self.libraries.access(ctx, library_id, "viewer")
        if sort_by not in SORTABLE:
            raise InvalidRequest(
                f"sort_by must be one of: {', '.join(sorted(SORTABLE))}", param="sort_by"
            )
        if sort_order not in ("asc", "desc"):
            raise InvalidRequest("sort_order must be asc or desc", param="sort_order")
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        page = max(0, page)
        rows, total = await asyncio.to_thread(
            self.store.list_documents,
            library_id,
            search=search,
            offset=page * page_size,
            limit=page_size,
            sort_by=sort_by,
            descending=sort_order == "desc",
        )
        return {
            "pagination": pagination(total, page, page_size),
            "data": [document_json(row) for row in rows],
        }

    async def get(self, ctx: RequestContext, library_id: str, document_id: str) -> dict[str, Any]:
        await self.libraries.access(ctx, library_id, "viewer")
        return document_json(await self._row(library_id, document_id))

    async def status(
        self, ctx: RequestContext, library_id: str, document_id: str
    ) -> dict[str, Any]:
        await self.libraries.access(ctx, library_id, "viewer")
        return status_json(await self._row(library_id, document_id))

    async def text_content(
        self,
        ctx: RequestContext,
        library_id: str,
        document_id: str,
        page_start: int | None,
        page_end: int | None,
    ) -> dict[str, Any]:
        await self.libraries.access(ctx, library_id, "viewer")
        row = await asyncio.to_thread(self.store.text_of, library_id, document_id)
        if row is None:
            raise not_found(document_id)
        if row.status != "done":
            raise InvalidRequest(
                f"document {document_id!r} has no text yet (process_status: {row.status})",
                code="document_not_processed",
            )
        starts = json.loads(row.page_starts) if row.page_starts else []
        text = row.text or ""
        if page_start is not None or page_end is not None:
            text = page_range(text, starts, page_start, page_end)
        return {"text": text}

    async def update(
        self, ctx: RequestContext, library_id: str, document_id: str, body: DocumentUpdate
    ) -> dict[str, Any]:
        await self.libraries.access(ctx, library_id, "editor")
        await self._row(library_id, document_id)
        if body.expires_at is not None:
            raise InvalidRequest(
                "expires_at is not supported: delete the document when it should go",
                param="expires_at",
            )
        values: dict[str, Any] = {}
        if body.name is not None:
            values["name"] = body.name
        if "attributes" in body.model_fields_set:
            values["attributes"] = json.dumps(body.attributes) if body.attributes else None
        if values:
            await asyncio.to_thread(self.store.update, library_id, document_id, values)
        return document_json(await self._row(library_id, document_id))

    async def delete(self, ctx: RequestContext, library_id: str, document_id: str) -> None:
        await self.libraries.access(ctx, library_id, "editor")
        await self._row(library_id, document_id)
        await self.libraries.record(
            ctx, "library.document.delete", {"library": library_id, "document": document_id}
        )
        await asyncio.to_thread(self.store.delete, library_id, document_id)

    async def reprocess(self, ctx: RequestContext, library_id: str, document_id: str) -> None:
        await self.libraries.access(ctx, library_id, "editor")
        row = await self._row(library_id, document_id)
        if row.status == "in_progress":
            return  # it is being processed now
        principal = ctx.principal
        job = {"principal": principal_to_json(principal), "claims": list(ctx.claims)}
        await asyncio.to_thread(self.store.requeue, library_id, document_id, job)
        self.libraries.nudge()

    async def _row(self, library_id: str, document_id: str) -> Any:
        row = await asyncio.to_thread(self.store.get, library_id, document_id)
        if row is None:
            raise not_found(document_id)
        return row


def not_found(document_id: str) -> NotFound:
    return NotFound(
        f"document {document_id!r} does not exist in this library", code="document_not_found"
    )


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the file is larger than {limit} bytes (libraries.max_upload_bytes)", param="file"
    )
