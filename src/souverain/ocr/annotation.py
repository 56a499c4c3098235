"""`document_annotation_format`: structured extraction by a chat model, through the pipeline.

Mistral sends page images to a vision model. Here the OCR'd markdown goes to a chat
model (`ocr.annotation_model`, default: the first chat model configured) with the
caller's JSON schema as a constrained-decoding `response_format`, as one ordinary
`chat` call: data-loss prevention, the policy, quotas and the audit log apply to it as
to any other, under the caller's identity. Its audit leaf is its own (endpoint `ocr`,
the same request id as the OCR leaf).

The document is cut to what fits the model's context: about 2.2 characters per token
of what is left after the schema, the instructions and `ocr.annotation_max_tokens`.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import OcrConfig, Settings
from ..context import RequestContext
from ..errors import EngineError, InvalidRequest
from ..pipeline import Pipeline
from ..protocol.chat import ChatCompletionRequest
from ..protocol.ocr import OCRRequest, PageResult

CHARS_PER_TOKEN = 2.2
INSTRUCTIONS = (
    "You extract information from a document. Answer with one JSON object that follows "
    "this JSON schema, using only what the document says; leave out or leave empty what "
    "it does not say."
)


def annotation_model(settings: Settings) -> str:
    config: OcrConfig = settings.ocr
    if config.annotation_model:
        return config.annotation_model
    for model in settings.models:
        if model.type == "chat":
            return model.id
    return settings.models[0].id  # no chat model: the pipeline says why it cannot serve


def build_request(
    model: str,
    body: OCRRequest,
    pages: list[PageResult],
    *,
    context_length: int,
    max_tokens: int,
) -> ChatCompletionRequest:
    schema = body.annotation_schema() or {}
    fmt = body.document_annotation_format
    name = fmt.json_schema.name if fmt is not None and fmt.json_schema is not None else "document"
    system = INSTRUCTIONS + "\nSchema: " + json.dumps(schema, ensure_ascii=False)
    if body.document_annotation_prompt:
        system += "\n" + body.document_annotation_prompt
    budget = int((context_length - max_tokens - 64) * CHARS_PER_TOKEN) - len(system)
    document = "\n\n".join(page.markdown for page in pages if page.markdown)
    document = document[: max(budget, 256)]
    return ChatCompletionRequest.model_validate(
        {
            "model": model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": document or "(the document has no text)"},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            },
            "temperature": 0,
            "max_tokens": max_tokens,
        }
    )


async def annotate(pipeline: Pipeline, ctx: RequestContext, request: ChatCompletionRequest) -> str:
    """The model's JSON, as a string (Mistral returns `document_annotation` that way)."""
    sub = RequestContext(endpoint="ocr", principal=ctx.principal, request_id=ctx.request_id)
    sub.claims.extend(ctx.claims)
    try:
        call = await pipeline.prepare(sub, "chat", request)
        completion = await pipeline.complete(sub, call)
    except InvalidRequest as exc:
        raise _as_annotation_error(exc) from None
    content = completion.content.strip()
    try:
        parsed: Any = json.loads(content)
    except ValueError:
        raise EngineError(
            f"the annotation model {call.model.id!r} returned no valid JSON "
            f"(finish_reason {completion.finish_reason!r}); raise ocr.annotation_max_tokens "
            "or simplify the schema"
        ) from None
    return json.dumps(parsed, ensure_ascii=False)


def _as_annotation_error(exc: InvalidRequest) -> InvalidRequest:
    """The chat call's `response_format` is the caller's `document_annotation_format`:
    an error about it names the field the caller sent (same class, same code)."""
    prefix = "response_format"
    if exc.param is None or not exc.param.startswith(prefix):
        return exc
    exc.param = "document_annotation_format" + exc.param[len(prefix) :]
    exc.message = exc.message.replace(prefix, "document_annotation_format", 1)
    exc.args = (exc.message,)
    return exc
