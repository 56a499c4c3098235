"""`/v1/files`: OpenAI's and Mistral's Files API (`client.files.*` in both SDKs).

Thin: the upload is read as it streams (files/upload.py), stored by files/store.py, and
answered in the shape both SDKs read (files/shapes.py). Key scopes name this surface
`files`; the role needs `models.use` (a file is input for model calls). Uploads, reads
of the content and deletions leave an audit leaf (never the file name or the bytes).
Contents are not scanned by the DLP here: a batch line is scanned when it is executed,
by the pipeline, like any other call (docs/files.md).
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..audit.leaves import admin_leaf, read_leaf
from ..context import RequestContext
from ..errors import InvalidRequest, NotFound, SouverainError
from ..files.names import content_disposition
from ..files.settings import FilesConfig
from ..files.shapes import (
    SAMPLE_TYPE_VALUES,
    SAMPLE_TYPES,
    SOURCE_VALUES,
    SOURCES,
    file_deleted,
    file_list,
    file_object,
)
from ..files.store import ALL_PURPOSES, FileRecord, FileStore, file_too_large
from ..files.upload import ReceivedUpload, receive_upload
from ..identity.rbac import require
from ..protocol.files import FORM_FIELDS, FileUploadFields
from .http import JSON, MAX_PAGE_NUMBER, app_state, query_int, validation_error
from .middleware import RouteLimit

ENDPOINT = "files"
MULTIPART_OVERHEAD = 64 * 1024  # part headers and boundaries around the file
MAX_LISTED = 10_000  # OpenAI's largest `limit`
MAX_SEARCH_CHARS = 300
MAX_FILTER_VALUES, MAX_FILTER_CHARS = 20, 200  # a repeatable filter's values


def file_routes() -> list[Route]:
    base = "/v1/files"
    one = base + "/{file_id}"
    return [
        Route(base, upload, methods=["POST"]),
        Route(base, list_files, methods=["GET"]),
        Route(one, retrieve, methods=["GET"]),
        Route(one, delete, methods=["DELETE"]),
        Route(one + "/content", content, methods=["GET"]),
        Route(one + "/url", signed_url, methods=["GET"]),
    ]


def upload_body_limits(config: FilesConfig) -> dict[tuple[str, str], RouteLimit]:
    """The request body limit of the upload route (api/middleware.py `BodyLimit`): the
    file and its form around it; past it, the error names files.max_file_bytes."""
    limit = config.max_file_bytes + MULTIPART_OVERHEAD
    return {("POST", "/v1/files"): (limit, lambda: file_too_large(config.max_file_bytes))}


async def _open(request: Request) -> tuple[FileStore, RequestContext]:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, ENDPOINT)
    require(ctx.principal, "models.use")
    if not state.settings.files.enabled:
        raise NotFound("the Files API is off on this gateway (files.enabled)", code="unknown_url")
    return FileStore(state.database, state.settings.files), ctx


async def _leaf(request: Request, leaf: dict[str, object]) -> None:
    audit = app_state(request).audit
    if audit is not None:  # durable before the answer goes out
        await audit.append(leaf)


async def upload(request: Request) -> Response:
    store, ctx = await _open(request)
    config = store.config
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.max_file_bytes + MULTIPART_OVERHEAD:
        raise file_too_large(config.max_file_bytes)
    if declared.isdigit():  # the quota, before a byte is read (checked again when stored)
        expected = max(0, int(declared) - MULTIPART_OVERHEAD)
        await asyncio.to_thread(store.check_quota, ctx.principal.tenant, expected)
    spool = app_state(request).settings.data_dir / "uploads"
    received = await receive_upload(
        request.headers.get("content-type", ""),
        request.stream(),
        config.max_file_bytes,
        spool,
        FORM_FIELDS,
    )
    try:
        form = _form(received, config.purposes)
        lifetime = form.lifetime_s()
        record = await asyncio.to_thread(
            store.add, ctx.principal, form.purpose, received.filename or "", received.file,
            mimetype=received.content_type, origin="upload",
            expires_at=time.time() + lifetime if lifetime is not None else None,
        )  # fmt: skip
    finally:
        received.file.close()
    target = {"file": record.id, "purpose": record.purpose, "bytes": record.bytes}
    await _leaf(request, admin_leaf(ctx, "file.upload", target))
    return JSON(file_object(record))


def _form(received: ReceivedUpload, allowed: tuple[str, ...]) -> FileUploadFields:
    try:
        fields = FileUploadFields.model_validate(received.fields)
    except ValidationError as exc:
        raise validation_error(exc) from None
    fields.check()
    if fields.purpose not in allowed:  # the configuration may allow fewer (files.purposes)
        raise InvalidRequest(f"purpose must be one of {', '.join(allowed)} on this gateway",
                             param="purpose")  # fmt: skip
    return fields


async def list_files(request: Request) -> Response:
    store, ctx = await _open(request)
    params = request.query_params
    order: Literal["asc", "desc"] = "asc" if params.get("order") == "asc" else "desc"
    if params.get("order") not in (None, "", "asc", "desc"):
        raise InvalidRequest("order must be asc or desc", param="order")
    if params.get("include_total") not in (None, "true", "false"):
        raise InvalidRequest("include_total must be true or false", param="include_total")
    purposes = _many(request, "purpose", ALL_PURPOSES)
    public_sources = {public: ours for ours, public in SOURCES.items()}
    sources = [public_sources.get(v, v) for v in _many(request, "source", SOURCE_VALUES)]
    sample_types = _many(request, "sample_type", SAMPLE_TYPE_VALUES)
    page_size = query_int(request, "page_size", 100, minimum=1, maximum=MAX_LISTED)
    limit = query_int(request, "limit", page_size, minimum=1, maximum=MAX_LISTED)
    page = query_int(request, "page", 0, minimum=0, maximum=MAX_PAGE_NUMBER)
    search = params.get("search") or None
    if search is not None and len(search) > MAX_SEARCH_CHARS:
        raise InvalidRequest(f"search is longer than {MAX_SEARCH_CHARS} characters",
                             param="search")  # fmt: skip
    after = await _after(store, ctx, params.get("after") or None)
    found = await asyncio.to_thread(
        store.list, ctx.principal, purposes=_with_sample_types(purposes, sample_types),
        search=search, sources=sources, mimetypes=_many(request, "mimetypes"),
        order=order, after=after, offset=0 if after else page * limit, limit=limit,
    )  # fmt: skip
    return JSON(file_list(found))


def _many(request: Request, name: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    """A repeatable filter (`?source=upload&source=mistral`): each value one of `allowed`,
    or any text of 1 to MAX_FILTER_CHARS characters."""
    values = request.query_params.getlist(name)
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidRequest(f"{name} is given more than {MAX_FILTER_VALUES} times", param=name)
    for value in values:
        if allowed is not None and value not in allowed:
            raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}", param=name)
        if not 1 <= len(value) <= MAX_FILTER_CHARS:
            raise InvalidRequest(f"{name} must be 1 to {MAX_FILTER_CHARS} characters", param=name)
    return values


def _with_sample_types(purposes: list[str], sample_types: list[str]) -> list[str]:
    """Mistral's `sample_type` filter, read as the purposes that give each type."""
    if not sample_types:
        return purposes
    by_type: dict[str, set[str]] = {}
    for purpose in ALL_PURPOSES:
        by_type.setdefault(SAMPLE_TYPES.get(purpose, "instruct"), set()).add(purpose)
    wanted = {p for t in sample_types for p in by_type.get(t, set())}
    chosen = [p for p in purposes if p in wanted] if purposes else sorted(wanted)
    return chosen or ["(none)"]  # a type no file has: an empty listing


async def _after(store: FileStore, ctx: RequestContext, file_id: str | None) -> FileRecord | None:
    if file_id is None:
        return None
    found = await asyncio.to_thread(store.get, ctx.principal, file_id)
    if found is None:
        raise InvalidRequest(f"after: no file {file_id[:80]!r} among yours", param="after")
    return found


async def _owned(request: Request) -> tuple[FileStore, RequestContext, FileRecord]:
    store, ctx = await _open(request)
    file_id = request.path_params["file_id"]
    record = await asyncio.to_thread(store.get, ctx.principal, file_id)
    if record is None:
        raise NotFound(f"no file {file_id[:80]!r}", param="file_id", code="file_not_found")
    return store, ctx, record


async def retrieve(request: Request) -> Response:
    _, _, record = await _owned(request)
    return JSON(file_object(record))


async def delete(request: Request) -> Response:
    store, ctx, record = await _owned(request)
    if not await asyncio.to_thread(store.delete, ctx.principal, record.id):
        raise NotFound(f"no file {record.id!r}", param="file_id", code="file_not_found")
    await _leaf(request, admin_leaf(ctx, "file.delete", {"file": record.id}))
    return JSON(file_deleted(record.id))


async def content(request: Request) -> Response:
    """The bytes, streamed chunk by chunk from the database (never whole in memory).
    `application/octet-stream` always: the mistralai SDK accepts no other type here."""
    store, ctx, record = await _owned(request)
    await _leaf(request, read_leaf(ctx, "file.read", {"file": record.id, "bytes": record.bytes}))
    headers = {
        "Content-Disposition": content_disposition(record.filename),
        "Content-Length": str(record.bytes),
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(
        store.read(record.id), media_type="application/octet-stream", headers=headers
    )


class NotServed(SouverainError):
    status_code = 501
    error_type = "invalid_request_error"
    default_code = "not_implemented"


async def signed_url(request: Request) -> Response:
    """Mistral's `get_signed_url`: not served. A URL that opens a file without a key
    would skip authentication, the owner check and the audit leaf of every read; read
    `/v1/files/{file_id}/content` instead (libraries refuse signed URLs the same way)."""
    await _owned(request)  # 404 for a file that is not the caller's, as everywhere
    raise NotServed("files do not leave the gateway by URL; read /v1/files/{file_id}/content")
