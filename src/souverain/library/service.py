"""The document libraries of one app: what the routes and the grounded chat call.

Every operation takes the caller's `RequestContext` (from `pipeline.open(headers,
"libraries")`), checks its access (acl.py) and runs the database work in a thread.
Changes (create, rename, delete, share, upload, delete a document) get an admin leaf
in the audit log before they are made, as admin routes do.

For retrieval:

    hits = await state.libraries.search(ctx, "quand la facture est-elle due ?",
                                        library_ids=None, top_k=5)

returns `SearchHit`s (document id and name, page, offsets, text, scores) from the
libraries the caller may read, best first; `ctx` is not changed (the query's
embedding is a model call of its own, through the pipeline).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from ..audit.leaves import admin_leaf
from ..config import DEFAULT_EMBEDDINGS_MODEL, Settings
from ..context import RequestContext
from ..errors import InvalidRequest, SouverainError
from ..jobs.runner import JobHandler, JobRunner
from ..pipeline import Pipeline
from ..protocol.libraries import (
    LibraryCreate,
    LibraryUpdate,
    ShareDelete,
    ShareRequest,
    library_json,
    pagination,
    sharing_json,
)
from ..store.tables import MAX_ID
from .acl import (
    MISTRAL_LEVELS,
    MISTRAL_TARGETS,
    SHARE_LEVELS,
    TARGET_TYPES,
    Caller,
    Level,
    check_role,
)
from .document_service import DocumentService
from .documents import INGEST_KIND, DocumentStore
from .embedder import Embedder
from .ingest_job import IngestHandler
from .search import Searcher, SearchHit, vector_index
from .store import Access, LibraryStore

MAX_PAGE_SIZE = 1000


class LibraryService:
    def __init__(self, settings: Settings, database: Engine, pipeline: Pipeline) -> None:
        self.config = settings.libraries
        self.settings = settings
        self.pipeline = pipeline
        self.store = LibraryStore(database)
        self.vectors = vector_index(database)
        self.searcher = Searcher(database, self.vectors)
        self.embedder = Embedder(pipeline, batch=self.config.embed_batch)
        store = DocumentStore(database)
        self.ingest = IngestHandler(self.config, settings.ocr, store, store.jobs, self.embedder)
        self.runner: JobRunner | None = None  # set when the app starts its job runner
        self.documents = DocumentService(self, store)

    def handlers(self) -> dict[str, JobHandler]:
        """The job kinds of libraries, for the app's job runner (docs/jobs.md)."""
        return {INGEST_KIND: self.ingest}

    def nudge(self) -> None:
        """A document's job was just queued: look for work now rather than at the next poll."""
        if self.runner is not None:
            self.runner.nudge()

    # ---- shared by the operations ---------------------------------------------------------

    async def caller(self, ctx: RequestContext) -> Caller:
        check_role(ctx.principal)
        return await asyncio.to_thread(self.store.caller, ctx.principal)

    async def access(
        self, ctx: RequestContext, library_id: str, need: Level
    ) -> tuple[Caller, Access]:
        caller = await self.caller(ctx)
        access = await asyncio.to_thread(self.store.access, caller, library_id, need)
        return caller, access

    async def record(self, ctx: RequestContext, action: str, target: dict[str, Any]) -> None:
        """The admin leaf, durable before the change: what cannot be logged is not done."""
        if self.pipeline.audit is not None:
            await self.pipeline.audit.append(admin_leaf(ctx, action, target))

    def embedding_model(self) -> str:
        """The model new libraries embed with (kept per library: vectors of two models do
        not mix)."""
        catalog = self.pipeline.catalog
        wanted = self.config.embedding_model
        if wanted is not None:
            return catalog.get(wanted).id
        names = {model.id for model in catalog.models}
        if DEFAULT_EMBEDDINGS_MODEL in names:
            return DEFAULT_EMBEDDINGS_MODEL
        for model in catalog.models:
            if model.capabilities().embeddings:
                return model.id
        raise SouverainError(
            "no embeddings model is configured: document libraries need one "
            "(libraries.embedding_model)"
        )

    async def render(self, rows: Sequence[Any]) -> list[dict[str, Any]]:
        figures = await asyncio.to_thread(self.store.figures, [row.id for row in rows])
        roles = await asyncio.gather(*(self._org_role(row) for row in rows))
        return [
            library_json(row, figures[row.id], role) for row, role in zip(rows, roles, strict=True)
        ]

    async def _org_role(self, row: Any) -> str | None:
        shares = await asyncio.to_thread(self.store.shares, row.id)
        for share in shares:
            if share.target_type == "tenant":
                return MISTRAL_LEVELS[share.level]
        return None

    # ---- libraries --------------------------------------------------------------------------

    async def create(self, ctx: RequestContext, body: LibraryCreate) -> dict[str, Any]:
        caller = await self.caller(ctx)
        model = self.embedding_model()
        await self.record(ctx, "library.create", {"name": body.name})
        library_id = await asyncio.to_thread(
            self.store.create,
            caller,
            name=body.name,
            description=body.description,
            owner_type=body.owner_type or "User",
            chunk_size=body.chunk_size,
            embedding_model=model,
        )
        return await self.get(ctx, library_id)

    async def list_libraries(
        self,
        ctx: RequestContext,
        *,
        page: int,
        page_size: int,
        page_token: str | None,
        search: str | None,
    ) -> dict[str, Any]:
        caller = await self.caller(ctx)
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        offset = _offset_of(page_token) if page_token else max(0, page) * page_size
        rows, total = await asyncio.to_thread(
            self.store.list_libraries, caller, search=search, offset=offset, limit=page_size
        )
        following = offset + page_size
        return {
            "data": await self.render(rows),
            "pagination": pagination(total, offset // page_size, page_size),
            "next_page_token": _token_of(following) if following < total else None,
        }

    async def get(self, ctx: RequestContext, library_id: str) -> dict[str, Any]:
        _, access = await self.access(ctx, library_id, "viewer")
        return (await self.render([access.library]))[0]

    async def update(
        self, ctx: RequestContext, library_id: str, body: LibraryUpdate
    ) -> dict[str, Any]:
        await self.access(ctx, library_id, "owner")
        values = body.model_dump(include={"name", "description"}, exclude_unset=True)
        if values.get("name", "") is None:
            raise InvalidRequest("name cannot be null", param="name")
        if values:
            await self.record(ctx, "library.update", {"id": library_id, **values})
            await asyncio.to_thread(self.store.update, library_id, values)
        return await self.get(ctx, library_id)

    async def delete(self, ctx: RequestContext, library_id: str) -> dict[str, Any]:
        _, access = await self.access(ctx, library_id, "owner")
        rendered = (await self.render([access.library]))[0]
        await self.record(ctx, "library.delete", {"id": library_id})
        await asyncio.to_thread(self.store.delete, library_id)
        self.vectors.forget(library_id)
        return rendered

    # ---- shares -------------------------------------------------------------------------------

    async def shares(self, ctx: RequestContext, library_id: str) -> dict[str, Any]:
        _, access = await self.access(ctx, library_id, "viewer")
        library = access.library
        owner = library.created_by_user_id or library.created_by
        data = [sharing_json(library, "User", owner, "Owner", None)]
        for share in await asyncio.to_thread(self.store.shares, library_id):
            data.append(
                sharing_json(
                    library,
                    MISTRAL_TARGETS[share.target_type],
                    share.target_id,
                    MISTRAL_LEVELS[share.level],
                    share.created_by,
                )
            )
        return {"data": data}

    async def share(
        self, ctx: RequestContext, library_id: str, body: ShareRequest
    ) -> dict[str, Any]:
        caller, access = await self.access(ctx, library_id, "owner")
        target_type, target_id = _target(
            access, body.share_with_type, body.share_with_uuid, body.org_id
        )
        level = SHARE_LEVELS[body.level]
        await self.record(
            ctx,
            "library.share",
            {"id": library_id, "with": target_type, "target": target_id, "level": level},
        )
        await asyncio.to_thread(
            self.store.share, access.library, caller, target_type, target_id, level
        )
        return sharing_json(
            access.library, body.share_with_type, target_id, body.level, caller.label
        )

    async def unshare(
        self, ctx: RequestContext, library_id: str, body: ShareDelete
    ) -> dict[str, Any]:
        _, access = await self.access(ctx, library_id, "owner")
        target_type, target_id = _target(
            access, body.share_with_type, body.share_with_uuid, body.org_id
        )
        await self.record(
            ctx, "library.unshare", {"id": library_id, "with": target_type, "target": target_id}
        )
        row = await asyncio.to_thread(self.store.unshare, library_id, target_type, target_id)
        return sharing_json(
            access.library,
            body.share_with_type,
            target_id,
            MISTRAL_LEVELS[row.level],
            row.created_by,
        )

    # ---- search -------------------------------------------------------------------------------

    async def search(
        self,
        ctx: RequestContext,
        query: str,
        *,
        library_ids: Sequence[str] | None = None,
        top_k: int = 5,
    ) -> list[SearchHit]:
        """The `top_k` chunks best matching `query` in the libraries the caller may read
        (all of them, or those named: one it may not read is 404)."""
        if not query.strip():
            raise InvalidRequest("the query is empty", param="query")
        caller = await self.caller(ctx)
        targets = await asyncio.to_thread(self.searcher.libraries, caller, library_ids)
        targets = [target for target in targets if target.revision > 0]  # never had chunks
        vectors = {}
        for model in sorted({target.embedding_model for target in targets}):
            vectors[model] = await self.embedder.query(ctx, model, query)
        return await asyncio.to_thread(self.searcher.search, caller, targets, query, vectors, top_k)


def _target(access: Access, kind: str, uuid: str, org_id: str | None) -> tuple[Any, int]:
    library = access.library
    if org_id is not None and org_id != str(library.tenant_id):
        raise InvalidRequest(
            f"org_id {org_id!r} is not this library's organization ({library.tenant_id}); "
            "libraries are shared within their tenant only",
            param="org_id",
        )
    # ASCII digits only (int() reads other scripts' digits too), within the id column.
    if not (uuid.isascii() and uuid.isdigit()) or len(uuid) > 18 or int(uuid) > MAX_ID:
        raise InvalidRequest(
            "share_with_uuid must be the id of a Souverain user, team (Workspace) or tenant "
            '(Org), e.g. "12"',
            param="share_with_uuid",
        )
    return TARGET_TYPES[kind], int(uuid)


def _token_of(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset_of(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind == "offset" and value.isascii() and value.isdigit() and len(value) <= 12:
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidRequest("page_token is not one this server gave", param="page_token")
