"""`POST /v1/ocr`: Mistral's OCR endpoint, served by the local OCR engine (docs/ocr.md).

The call is authenticated, classified, checked against the policy and admitted by the
quotas like a model call, then the OCR runs in this process: the document goes nowhere
else. The pipeline accounts for it (usage row, metrics, audit leaf; endpoint `ocr`). A
`document_annotation_format` adds a chat call, which goes through the pipeline like any
other.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..context import RequestContext
from ..errors import InvalidRequest, NotFound, UnsupportedByModel
from ..identity.rbac import require
from ..ocr.annotation import annotate, annotation_model, build_request
from ..ocr.documents import load_document
from ..ocr.service import OcrOptions, OcrService
from ..protocol.ocr import DocumentURLChunk, FileChunk, OCRRequest, render_ocr
from ..state import AppState
from .completions import decision_headers
from .http import JSON, app_state, parse_body


async def ocr(request: Request) -> Response:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "ocr")
    body = await parse_body(request, OCRRequest)
    service = ocr_service(request)
    async with state.pipeline.accounted(ctx):
        ctx.model = service.resolve(body.model)
        _refuse_unsupported(body)
        _authorize(state, ctx, service, body)
        annotator = _annotation_model(state, ctx, body)
        await state.pipeline.admit(ctx)  # rate limits and concurrency count OCR calls too
        url, param = _document_url(body)
        data = await load_document(url, state.settings.ocr, param=param)
        pages = await service.run(
            data,
            OcrOptions(
                pages=body.page_indexes(),
                include_image_base64=bool(body.include_image_base64),
                image_limit=body.image_limit,
                image_min_size=body.image_min_size,
            ),
        )
    annotation = None
    if annotator is not None:
        chat = build_request(
            annotator,
            body,
            pages,
            context_length=state.catalog.get(annotator).context_length(),
            max_tokens=state.settings.ocr.annotation_max_tokens,
        )
        annotation = await annotate(state.pipeline, ctx, chat)
    rendered = render_ocr(
        pages,
        model=service.model_id,
        doc_size_bytes=len(data),
        include_blocks=bool(body.include_blocks),
        granularity=body.confidence_scores_granularity,
        document_annotation=annotation,
    )
    return JSON(rendered, headers=decision_headers(ctx))


def ocr_service(request: Request) -> OcrService:
    """The app's OCR service, made on first use (the engine loads on the first page)."""
    service: OcrService | None = getattr(request.app.state, "souverain_ocr", None)
    if service is None:
        service = OcrService(app_state(request).settings.ocr)
        request.app.state.souverain_ocr = service
    return service


def _refuse_unsupported(body: OCRRequest) -> None:
    if body.bbox_annotation_format is not None:
        raise UnsupportedByModel(
            "bbox_annotation_format needs a vision model to describe each image; the local "
            "OCR has none: leave it out",
            param="bbox_annotation_format",
        )
    if body.confidence_scores_granularity == "word":
        raise UnsupportedByModel(
            'the local OCR scores lines, not words: use confidence_scores_granularity "page" '
            'or "block"',
            param="confidence_scores_granularity",
        )
    if isinstance(body.document, FileChunk):
        raise InvalidRequest(
            "file chunks refer to Mistral's Files API, which this gateway does not have; "
            "send the document as a data: URL in a document_url chunk",
            param="document.file_id",
        )


def _authorize(state: AppState, ctx: RequestContext, service: OcrService, body: OCRRequest) -> None:
    """The role, scope, classification and policy checks every model call gets."""
    require(ctx.principal, "models.use")
    scopes = ctx.principal.models
    if scopes is not None and service.model_id not in scopes:
        raise NotFound(
            f"the model {body.model or service.model_id!r} does not exist or you do not "
            "have access to it",
            param="model",
            code="model_not_found",
        )
    policy = state.pipeline.router.policy
    ctx.claims.append(policy.claimed_in(getattr(body, "metadata", None)))
    ctx.classification = policy.classify(ctx.principal.default_classification, *ctx.claims)
    policy.check_ceiling(ctx.classification, ctx.principal.max_classification)
    decision = policy.decide(ctx.classification, ctx.principal.tenant, [service])
    ctx.decision = decision
    policy.enforce(decision, service.model_id)
    ctx.deployment = service.name
    ctx.jurisdiction = service.facts.jurisdiction


def _annotation_model(state: AppState, ctx: RequestContext, body: OCRRequest) -> str | None:
    """Checked before the OCR runs, so a bad model is a quick 404 or 400."""
    if body.document_annotation_format is None:
        return None
    name = annotation_model(state.settings)
    try:
        model = state.pipeline.visible_model(ctx, name)
    except NotFound:
        raise NotFound(
            f"ocr.annotation_model {name!r} is not served here", param="document_annotation_format"
        ) from None
    if not model.capabilities().completion_chat:
        raise UnsupportedByModel(
            f"ocr.annotation_model {name!r} is not a chat model", param="document_annotation_format"
        )
    return model.id


def _document_url(body: OCRRequest) -> tuple[str, str]:
    document = body.document
    if isinstance(document, DocumentURLChunk):
        return document.document_url, "document.document_url"
    assert not isinstance(document, FileChunk)
    return document.url, "document.image_url"
