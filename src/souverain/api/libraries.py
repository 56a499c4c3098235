"""`/v1/libraries`: Mistral's Libraries API, and Souverain's search over libraries.

Every route authenticates as an endpoint of kind `libraries` (a key's endpoint scopes
may leave it out). docs/libraries.md lists the routes and what each level may do.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..protocol.libraries import (
    LibraryCreate,
    LibraryUpdate,
    SearchRequest,
    ShareDelete,
    ShareRequest,
)
from . import library_documents as documents
from .http import JSON, MAX_PAGE_NUMBER, parse_body, query_int
from .library_documents import open_libraries


async def list_libraries(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    params = request.query_params
    listed = await service.list_libraries(
        ctx,
        page=query_int(request, "page", 0, maximum=MAX_PAGE_NUMBER),
        page_size=query_int(request, "page_size", 100, minimum=1),
        page_token=params.get("page_token") or None,
        search=params.get("search") or None,
    )
    return JSON(listed)


async def create_library(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    body = await parse_body(request, LibraryCreate)
    return JSON(await service.create(ctx, body), status_code=201)


async def get_library(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    return JSON(await service.get(ctx, request.path_params["library_id"]))


async def update_library(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    body = await parse_body(request, LibraryUpdate)
    return JSON(await service.update(ctx, request.path_params["library_id"], body))


async def delete_library(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    return JSON(await service.delete(ctx, request.path_params["library_id"]))


async def list_shares(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    return JSON(await service.shares(ctx, request.path_params["library_id"]))


async def share(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    body = await parse_body(request, ShareRequest)
    return JSON(await service.share(ctx, request.path_params["library_id"], body))


async def unshare(request: Request) -> Response:
    service, ctx = await open_libraries(request)
    body = await parse_body(request, ShareDelete)
    return JSON(await service.unshare(ctx, request.path_params["library_id"], body))


async def search(request: Request) -> Response:
    """Souverain's extension: `POST /v1/libraries/search` {query, library_ids, top_k}, or
    `POST /v1/libraries/{library_id}/search` {query, top_k}."""
    service, ctx = await open_libraries(request)
    body = await parse_body(request, SearchRequest)
    library_ids = body.library_ids
    if "library_id" in request.path_params:
        library_ids = [request.path_params["library_id"]]
    hits = await service.search(ctx, body.query, library_ids=library_ids, top_k=body.top_k)
    return JSON({"object": "list", "query": body.query, "data": [hit.to_json() for hit in hits]})


def library_routes() -> list[Route]:
    base = "/v1/libraries"
    one = base + "/{library_id}"
    doc = one + "/documents/{document_id}"
    return [
        Route(f"{base}/search", search, methods=["POST"]),
        Route(base, list_libraries, methods=["GET"]),
        Route(base, create_library, methods=["POST"]),
        Route(one, get_library, methods=["GET"]),
        Route(one, update_library, methods=["PATCH", "PUT"]),
        Route(one, delete_library, methods=["DELETE"]),
        Route(f"{one}/search", search, methods=["POST"]),
        Route(f"{one}/share", list_shares, methods=["GET"]),
        Route(f"{one}/share", share, methods=["PUT"]),
        Route(f"{one}/share", unshare, methods=["DELETE"]),
        Route(f"{one}/documents", documents.list_documents, methods=["GET"]),
        Route(f"{one}/documents", documents.upload, methods=["POST"]),
        Route(doc, documents.get_document, methods=["GET"]),
        Route(doc, documents.update_document, methods=["PATCH", "PUT"]),
        Route(doc, documents.delete_document, methods=["DELETE"]),
        Route(f"{doc}/text_content", documents.text_content, methods=["GET"]),
        Route(f"{doc}/status", documents.status, methods=["GET"]),
        Route(f"{doc}/reprocess", documents.reprocess, methods=["POST"]),
        Route(f"{doc}/signed-url", documents.signed_url, methods=["GET"]),
        Route(f"{doc}/extracted-text-signed-url", documents.signed_url, methods=["GET"]),
    ]
