"""What each route takes and answers: the table `/openapi.json` is generated from.

Declaring a route's documentation is one line here, next to its peers, keyed by the
method and the path exactly as `Route(...)` spells it in app.py (or library_routes):

    "POST /v1/completions": op("Legacy text completion", "models.use", body=CompletionRequest,
                               ok=ChatCompletion, stream=True, call=True, tag="openai"),

The arguments are explained in api/openapi_spec.py: the body is the protocol model the
handler validates with, `ok` the answer's model (api/openapi_schemas.py), the second
argument the permission (identity/rbac.py) or "key", "public", "scrape". Admin routes'
lines are in api/openapi_admin_routes.py.

tests/test_openapi.py fails when a route of the app has no line here, method by method.
"""

from __future__ import annotations

from ..protocol.chat import ChatCompletionRequest
from ..protocol.embeddings import EmbeddingRequest
from ..protocol.fim import FIMCompletionRequest
from ..protocol.libraries import (
    DocumentUpdate,
    LibraryCreate,
    LibraryUpdate,
    SearchRequest,
    ShareDelete,
    ShareRequest,
)
from ..protocol.ocr import OCRRequest
from ..protocol.responses import ResponsesRequest
from ..protocol.text_completions import TextCompletionRequest
from .openapi_admin_routes import ADMIN_OPERATIONS
from .openapi_agent_routes import AGENT_OPERATIONS
from .openapi_batch_routes import BATCH_OPERATIONS
from .openapi_conversation_routes import CONVERSATION_OPERATIONS
from .openapi_file_routes import FILE_OPERATIONS
from .openapi_schemas import (
    AnyObject,
    ChatCompletion,
    Document,
    EmbeddingList,
    Health,
    Library,
    ModelList,
    ModelObject,
    ObjectList,
    OCRResponse,
    Paged,
    Readiness,
    ResponseEvent,
    ResponseObject,
    TextCompletion,
    TextCompletionChunk,
)
from .openapi_spec import PAGE, PAGE_SIZE, Operation, Param, op
from .openapi_spec import int_param as _int
from .openapi_spec import text_param as _text

V1 = "/v1"
LIB = "/v1/libraries/{library_id}"
DOC = LIB + "/documents/{document_id}"

OPERATIONS: dict[str, Operation] = {
    # ---- model calls (OpenAI and Mistral) ---------------------------------------------------
    f"POST {V1}/chat/completions": op(
        "Chat completion",
        "models.use",
        tag="models",
        body=ChatCompletionRequest,
        ok=ChatCompletion,
        stream=True,
        call=True,
    ),
    f"POST {V1}/fim/completions": op(
        "Fill-in-the-middle completion (Mistral)",
        "models.use",
        tag="models",
        body=FIMCompletionRequest,
        ok=ChatCompletion,
        stream=True,
        call=True,
    ),
    f"POST {V1}/completions": op(
        "Legacy text completion (OpenAI)",
        "models.use",
        tag="models",
        body=TextCompletionRequest,
        ok=TextCompletion,
        stream=True,
        events=TextCompletionChunk,
        call=True,
    ),
    f"POST {V1}/embeddings": op(
        "Embeddings", "models.use", tag="models", body=EmbeddingRequest, ok=EmbeddingList, call=True
    ),
    f"POST {V1}/ocr": op(
        "OCR of a PDF or an image (Mistral)",
        "models.use",
        tag="models",
        body=OCRRequest,
        ok=OCRResponse,
        call=True,
    ),
    f"GET {V1}/models": op("Models the caller may use", "models.use", tag="models", ok=ModelList),
    f"GET {V1}/models/{{model_id:path}}": op(
        "One model, by id or alias", "models.use", tag="models", ok=ModelObject
    ),
    f"POST {V1}/responses": op(
        "Create a response (OpenAI's Responses API)",
        "models.use",
        tag="models",
        body=ResponsesRequest,
        ok=ResponseObject,
        stream=True,
        events=ResponseEvent,
        call=True,
    ),
    f"GET {V1}/responses/{{response_id}}": op(
        "A stored response", "models.use", tag="models", ok=ResponseObject
    ),
    f"DELETE {V1}/responses/{{response_id}}": op(
        "Delete a stored response", "models.use", tag="models", ok=AnyObject
    ),
    f"GET {V1}/responses/{{response_id}}/input_items": op(
        "A stored response's input items",
        "models.use",
        tag="models",
        ok=ObjectList,
        query=(
            _int("limit", "At most 100.", minimum=1, maximum=100),
            Param("order", {"type": "string", "enum": ["asc", "desc"]}),
            _text("after", "An item id."),
        ),
    ),
    # ---- document libraries (Mistral's Libraries API) ---------------------------------------
    f"POST {V1}/libraries/search": op(
        "Search the libraries the caller may read (Souverain)",
        "key",
        tag="libraries",
        body=SearchRequest,
        ok=ObjectList,
        call=True,
    ),
    f"GET {V1}/libraries": op(
        "List libraries",
        "key",
        tag="libraries",
        ok=Paged,
        query=(
            PAGE,
            PAGE_SIZE,
            _text("page_token", "From next_page_token."),
            _text("search", "Words in the name or description."),
        ),
        errors=(404,),
    ),
    f"POST {V1}/libraries": op(
        "Create a library",
        "key",
        tag="libraries",
        body=LibraryCreate,
        ok=Library,
        status=201,
        errors=(404,),
    ),
    f"GET {LIB}": op("A library", "key", tag="libraries", ok=Library),
    f"PATCH {LIB}": op(
        "Rename or describe a library", "key", tag="libraries", body=LibraryUpdate, ok=Library
    ),
    f"PUT {LIB}": op(
        "Rename or describe a library", "key", tag="libraries", body=LibraryUpdate, ok=Library
    ),
    f"DELETE {LIB}": op("Delete a library and its documents", "key", tag="libraries", ok=Library),
    f"POST {LIB}/search": op(
        "Search one library (Souverain)",
        "key",
        tag="libraries",
        body=SearchRequest,
        ok=ObjectList,
        call=True,
    ),
    f"GET {LIB}/share": op("Who the library is shared with", "key", tag="libraries", ok=AnyObject),
    f"PUT {LIB}/share": op(
        "Share a library", "key", tag="libraries", body=ShareRequest, ok=AnyObject, errors=(409,)
    ),
    f"DELETE {LIB}/share": op(
        "Stop sharing a library", "key", tag="libraries", body=ShareDelete, ok=AnyObject
    ),
    f"GET {LIB}/documents": op(
        "List documents",
        "key",
        tag="libraries",
        ok=Paged,
        query=(
            _text("search", "Words in the name."),
            PAGE,
            PAGE_SIZE,
            _text("sort_by", "created_at (default), name, size, last_processed_at..."),
            Param("sort_order", {"type": "string", "enum": ["asc", "desc"]}),
        ),
    ),
    f"POST {LIB}/documents": op(
        "Upload a document (processed in the background)",
        "key",
        tag="libraries",
        body="multipart",
        ok=Document,
        status=201,
        errors=(409,),
    ),
    f"GET {DOC}": op("A document", "key", tag="libraries", ok=Document),
    f"PATCH {DOC}": op(
        "Rename a document or set its attributes",
        "key",
        tag="libraries",
        body=DocumentUpdate,
        ok=Document,
    ),
    f"PUT {DOC}": op(
        "Rename a document or set its attributes",
        "key",
        tag="libraries",
        body=DocumentUpdate,
        ok=Document,
    ),
    f"DELETE {DOC}": op("Delete a document", "key", tag="libraries", status=204),
    f"GET {DOC}/text_content": op(
        "The document's extracted text",
        "key",
        tag="libraries",
        ok=AnyObject,
        query=(
            _int("page_start", "First page, from 0."),
            _int("page_end", "Last page (exclusive)."),
        ),
        errors=(409,),
    ),
    f"GET {DOC}/status": op(
        "The document's processing status", "key", tag="libraries", ok=AnyObject
    ),
    f"POST {DOC}/reprocess": op(
        "Process the document again", "key", tag="libraries", status=204, errors=(409,)
    ),
    f"GET {DOC}/signed-url": op(
        "Not served: documents do not leave the gateway by URL",
        "key",
        tag="libraries",
        ok=AnyObject,
        errors=(501,),
    ),
    f"GET {DOC}/extracted-text-signed-url": op(
        "Not served (use text_content)", "key", tag="libraries", ok=AnyObject, errors=(501,)
    ),
    # ---- operations -------------------------------------------------------------------------
    "GET /healthz": op("Liveness", "public", tag="operations", ok=Health),
    "GET /readyz": op(
        "Readiness: models loaded, store reachable",
        "public",
        tag="operations",
        ok=Readiness,
        errors=(503,),
    ),
    "GET /metrics": op("Prometheus metrics (loopback or scrape token)", "scrape", tag="operations"),
    "GET /openapi.json": op(
        "This document (OpenAPI 3.1)", "public", tag="operations", ok=AnyObject
    ),
    "GET /docs": op(
        "This document, for people (served from the package)", "public", tag="operations"
    ),
    "GET /docs/{asset}": op("The reference page's script and style", "public", tag="operations"),
    **ADMIN_OPERATIONS,
    **AGENT_OPERATIONS,
    **BATCH_OPERATIONS,
    **CONVERSATION_OPERATIONS,
    **FILE_OPERATIONS,
}
