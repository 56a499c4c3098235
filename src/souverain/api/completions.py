"""`POST /v1/chat/completions` and `POST /v1/fim/completions`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..context import RequestContext
from ..library.grounding import ground
from ..pipeline import ModelCall
from ..protocol.chat import ChatCompletionRequest, ChunkRenderer, render_completion
from ..protocol.fim import FIMCompletionRequest
from ..state import AppState
from .http import JSON, app_state, parse_body
from .streaming import primed, sse_response


async def chat_completions(request: Request) -> Response:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "chat")
    body = await parse_body(request, ChatCompletionRequest)
    body, citations = await ground(state, ctx, body)  # document libraries, if named
    call = await state.pipeline.prepare(ctx, "chat", body)
    return await _respond(
        state,
        ctx,
        call,
        stream=body.stream,
        usage_chunk=body.include_usage_chunk,
        citations=citations,
    )


async def fim_completions(request: Request) -> Response:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "fim")
    body = await parse_body(request, FIMCompletionRequest)
    call = await state.pipeline.prepare(ctx, "fim", body)
    return await _respond(state, ctx, call, stream=body.stream, usage_chunk=False)


async def _respond(
    state: AppState,
    ctx: RequestContext,
    call: ModelCall,
    *,
    stream: bool,
    usage_chunk: bool,
    citations: list[dict[str, Any]] | None = None,
) -> Response:
    if not stream:
        completion = await state.pipeline.complete(ctx, call)
        body = render_completion(
            completion, model=call.model.id, request_id=ctx.request_id, citations=citations
        )
        return JSON(body, headers=decision_headers(ctx))
    deltas = await primed(state.pipeline.stream(ctx, call))
    renderer = ChunkRenderer(
        model=call.model.id,
        include_usage_chunk=usage_chunk,
        request_id=ctx.request_id,
        citations=citations,
    )
    return sse_response(deltas, renderer, headers=decision_headers(ctx))


def decision_headers(ctx: RequestContext) -> dict[str, str]:
    """Where the call went and under which policy: explained, never the data's content."""
    headers = {"x-request-id": ctx.request_id}
    if ctx.deployment:
        headers["x-souverain-deployment"] = ctx.deployment
    if ctx.jurisdiction:
        headers["x-souverain-jurisdiction"] = ctx.jurisdiction
    if ctx.decision:
        headers["x-souverain-policy"] = ctx.decision.policy_version
        headers["x-souverain-classification"] = ctx.decision.classification
    return headers
