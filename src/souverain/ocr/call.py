"""One OCR call as `POST /v1/ocr` makes it, for the route and for batch lines alike.

The call is classified, checked against the policy and admitted by the quotas like a
model call, then the OCR runs in this process: the document goes nowhere else. The
pipeline accounts for it (usage row, metrics, audit leaf). A
`document_annotation_format` adds a chat call, which goes through the pipeline like any
other (its DLP scans what it sends). One `OcrCalls` per app, so that the route and the
batch lines share one engine and one bounded queue (`ocr.workers`, `ocr.max_queue`).
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..context import RequestContext
from ..errors import InvalidRequest, NotFound, UnsupportedByModel
from ..identity.rbac import require
from ..pipeline import Pipeline
from ..protocol.ocr import DocumentURLChunk, FileChunk, OCRRequest, render_ocr
from .annotation import annotate, annotation_model, build_request
from .documents import load_document
from .service import OcrOptions, OcrService


class OcrCalls:
    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.service = OcrService(settings.ocr)

    def check_model(self, ctx: RequestContext, name: str | None) -> str:
        """The OCR model's id if `name` is one of its names and the caller may use it;
        else the 404 (or 403 for a role without `models.use`)."""
        require(ctx.principal, "models.use")
        model_id = self.service.resolve(name)
        scopes = ctx.principal.models
        if scopes is not None and model_id not in scopes:
            raise NotFound(
                f"the model {name or model_id!r} does not exist or you do not have access to it",
                param="model",
                code="model_not_found",
            )
        return model_id

    async def run(self, ctx: RequestContext, body: OCRRequest) -> dict[str, Any]:
        """The OCR answer in Mistral's shape; a refusal raises the endpoint's error."""
        pipeline, service = self.pipeline, self.service
        async with pipeline.accounted(ctx):
            ctx.model = service.resolve(body.model)
            _refuse_unsupported(body)
            self._authorize(ctx, body)
            annotator = self._annotation_model(ctx, body)
            await pipeline.admit(ctx)  # rate limits and concurrency count OCR calls too
            url, param = _document_url(body)
            data = await load_document(url, self.settings.ocr, param=param)
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
                context_length=pipeline.catalog.get(annotator).context_length(),
                max_tokens=self.settings.ocr.annotation_max_tokens,
            )
            annotation = await annotate(pipeline, ctx, chat)
        return render_ocr(
            pages,
            model=service.model_id,
            doc_size_bytes=len(data),
            include_blocks=bool(body.include_blocks),
            granularity=body.confidence_scores_granularity,
            document_annotation=annotation,
        )

    def _authorize(self, ctx: RequestContext, body: OCRRequest) -> None:
        """The role, scope, classification and policy checks every model call gets."""
        service = self.service
        self.check_model(ctx, body.model)
        policy = self.pipeline.router.policy
        ctx.claims.append(policy.claimed_in(getattr(body, "metadata", None)))
        ctx.classification = policy.classify(ctx.principal.default_classification, *ctx.claims)
        policy.check_ceiling(ctx.classification, ctx.principal.max_classification)
        decision = policy.decide(ctx.classification, ctx.principal.tenant, [service])
        ctx.decision = decision
        policy.enforce(decision, service.model_id)
        ctx.deployment = service.name
        ctx.jurisdiction = service.facts.jurisdiction

    def _annotation_model(self, ctx: RequestContext, body: OCRRequest) -> str | None:
        """Checked before the OCR runs, so a bad model is a quick 404 or 400."""
        if body.document_annotation_format is None:
            return None
        name = annotation_model(self.settings)
        try:
            model = self.pipeline.visible_model(ctx, name)
        except NotFound:
            raise NotFound(
                f"ocr.annotation_model {name!r} is not served here",
                param="document_annotation_format",
            ) from None
        if not model.capabilities().completion_chat:
            raise UnsupportedByModel(
                f"ocr.annotation_model {name!r} is not a chat model",
                param="document_annotation_format",
            )
        return model.id


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


def _document_url(body: OCRRequest) -> tuple[str, str]:
    document = body.document
    if isinstance(document, DocumentURLChunk):
        return document.document_url, "document.document_url"
    assert not isinstance(document, FileChunk)
    return document.url, "document.image_url"
