"""`/v1/libraries/{library_id}/documents`: upload (multipart), list, read, change, delete.

The upload answers as soon as the file is stored (`process_status: todo`); the ingest
worker does the rest. Signed URLs are not served: documents never leave the gateway
by URL (501; read `text_content` instead).
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from ..audit.leaves import read_leaf
from ..context import RequestContext
from ..errors import InvalidRequest, NotFound, SouverainError
from ..library.document_service import too_large
from ..library.service import LibraryService
from ..protocol.libraries import DocumentUpdate
from .http import JSON, MAX_PAGE_NUMBER, app_state, parse_body, query_int, query_optional_int

MULTIPART_OVERHEAD = 64 * 1024  # headers and boundaries around the file


class NotImplementedHere(SouverainError):
    status_code = 501
    error_type = "invalid_request_error"
    default_code = "not_implemented"


async def open_libraries(request: Request) -> tuple[LibraryService, RequestContext]:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "libraries")
    if state.libraries is None:
        raise NotFound(
            "document libraries are off on this gateway (libraries.enabled)", code="unknown_url"
        )
    return state.libraries, ctx


def _ids(request: Request) -> tuple[str, str]:
    return request.path_params["library_id"], request.path_params["document_id"]


async def upload(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    limit = service.config.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise too_large(limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("send the document as multipart/form-data, in a field named file")
    try:
        form = await request.form(max_files=1, max_fields=20)
    except SouverainError:
        raise
    except Exception as exc:  # a malformed multipart body
        raise InvalidRequest(f"the multipart body cannot be read: {exc}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("the multipart body needs a file in a field named file",
                                 param="file")  # fmt: skip
        if upload.size is not None and upload.size > limit:
            raise too_large(limit)
        data = await upload.read(limit + 1)
        name = upload.filename or "document"
    finally:
        await form.close()
    document = await service.documents.upload(ctx, request.path_params["library_id"], name, data)
    return JSON(document, status_code=201)


async def list_documents(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    params = request.query_params
    listed = await service.documents.list_documents(
        ctx,
        request.path_params["library_id"],
        search=params.get("search") or None,
        page=query_int(request, "page", 0, maximum=MAX_PAGE_NUMBER),
        page_size=query_int(request, "page_size", 100, minimum=1),
        sort_by=params.get("sort_by") or "created_at",
        sort_order=params.get("sort_order") or "desc",
    )
    return JSON(listed)


async def get_document(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    return JSON(await service.documents.get(ctx, *_ids(request)))


async def status(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    return JSON(await service.documents.status(ctx, *_ids(request)))


async def text_content(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    start = query_optional_int(request, "page_start")
    end = query_optional_int(request, "page_end")
    library_id, document_id = _ids(request)
    content = await service.documents.text_content(ctx, library_id, document_id, start, end)
    audit = service.pipeline.audit
    if audit is not None:  # who read which document's text: durable before it goes out
        target = {"library": library_id, "document": document_id, "pages": [start, end],
                  "chars": len(content["text"])}  # fmt: skip
        await audit.append(read_leaf(ctx, "library.document.read_text", target))
    return JSON(content)


async def update_document(request: Request) -> Response:
    """A rename or new attributes. The leaf names the fields changed, not their values
    (a file name can name a person), and is written once the change is allowed."""
    service, ctx = await open_libraries(request)
    library_id, document_id = _ids(request)
    body = await parse_body(request, DocumentUpdate)
    await service.access(ctx, library_id, "editor")
    await service.documents.get(ctx, library_id, document_id)  # 404 before the leaf too
    changed = ["attributes"] if "attributes" in body.model_fields_set else []
    changed += ["name"] if body.name is not None else []
    if changed and body.expires_at is None:  # with expires_at the update is refused
        target = {"library": library_id, "document": document_id, "fields": changed}
        await service.record(ctx, "library.document.update", target)
    return JSON(await service.documents.update(ctx, library_id, document_id, body))


async def delete_document(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    await service.documents.delete(ctx, *_ids(request))
    return Response(status_code=204)


async def reprocess(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    library_id, document_id = _ids(request)
    await service.access(ctx, library_id, "editor")
    await service.documents.get(ctx, library_id, document_id)  # 404 before the leaf
    target = {"library": library_id, "document": document_id}
    await service.record(ctx, "library.document.reprocess", target)
    await service.documents.reprocess(ctx, library_id, document_id)
    return Response(status_code=204)


async def signed_url(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    await service.documents.get(ctx, *_ids(request))  # 404 first, as for any read
    raise NotImplementedHere(
        "signed URLs are not served: documents do not leave this gateway by URL; read the "
        "extracted text with GET .../text_content",
    )
