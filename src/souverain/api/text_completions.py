"""`POST /v1/completions`: legacy text completions, through the one pipeline."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..protocol import token_ids
from ..protocol.text_completions import (
    TextChunkRenderer,
    TextCompletionRequest,
    render_text_completion,
)
from .completions import decision_headers
from .http import JSON, app_state, parse_body
from .streaming import primed, sse_response


async def text_completions(request: Request) -> Response:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "completions")
    await token_ids.load_off_the_loop()  # a prompt may be token ids
    body = await parse_body(request, TextCompletionRequest)
    call = await state.pipeline.prepare(ctx, "text", body)
    # The client's own prompt is echoed, never the pseudonymized one an engine may have seen.
    echo = body.prompt_text if body.echo else None
    with_logprobs = body.logprobs is not None
    if not body.stream:
        completion = await state.pipeline.complete(ctx, call)
        rendered = render_text_completion(
            completion,
            model=call.model.id,
            request_id=ctx.request_id,
            echo=echo,
            with_logprobs=with_logprobs,
        )
        return JSON(rendered, headers=decision_headers(ctx))
    deltas = await primed(state.pipeline.stream(ctx, call))
    renderer = TextChunkRenderer(
        model=call.model.id,
        include_usage_chunk=body.include_usage_chunk,
        request_id=ctx.request_id,
        echo=echo,
        with_logprobs=with_logprobs,
    )
    return sse_response(deltas, renderer, headers=decision_headers(ctx))
