"""`POST /v1/embeddings`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..protocol import token_ids
from ..protocol.embeddings import EmbeddingRequest, render_embeddings
from .completions import decision_headers
from .http import JSON, app_state, parse_body


async def embeddings(request: Request) -> Response:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "embeddings")
    await token_ids.load_off_the_loop()  # inputs may be token ids (langchain's default)
    body = await parse_body(request, EmbeddingRequest)
    call = await state.pipeline.prepare(ctx, "embeddings", body)
    result = await state.pipeline.embed(ctx, call)
    rendered = render_embeddings(
        result.vectors,
        model=call.model.id,
        usage=result.usage,
        encoding_format=body.encoding_format,
    )
    return JSON(rendered, headers=decision_headers(ctx))
