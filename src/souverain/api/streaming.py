"""Server-sent events, built in one place for every streaming endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from ..errors import EngineError, SouverainError, sse_error_event
from ..protocol.chat import ChatDelta, ChunkRenderer
from ..protocol.tool_call_stream import whole_tool_calls
from .http import dumps

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def primed(deltas: AsyncIterator[ChatDelta]) -> AsyncIterator[ChatDelta]:
    """Pull the first delta now, so that errors before it become a plain HTTP error."""
    first = await anext(deltas)

    async def rest() -> AsyncIterator[ChatDelta]:
        yield first
        async for delta in deltas:
            yield delta

    return rest()


def sse_response(
    deltas: AsyncIterator[ChatDelta], renderer: ChunkRenderer, headers: dict[str, str]
) -> StreamingResponse:
    # Whole tool calls whatever the engine: a client never sees a fragment without a name
    # and id (the HTTP engines and the DLP restorer already join them; this holds for all).
    return StreamingResponse(
        _frames(whole_tool_calls(deltas), renderer),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **headers},
    )


async def _frames(
    deltas: AsyncIterator[ChatDelta], renderer: ChunkRenderer
) -> AsyncIterator[bytes]:
    try:
        async for delta in deltas:
            for chunk in renderer.delta(delta):
                yield b"data: " + dumps(chunk) + b"\n\n"
    except SouverainError as exc:
        yield _error_end(renderer, exc)
        return
    except Exception as exc:  # never a truncated stream without a word
        yield _error_end(renderer, EngineError(f"the stream failed: {type(exc).__name__}"))
        return
    finally:
        await deltas.aclose()  # type: ignore[attr-defined]
    yield b"data: [DONE]\n\n"


def _error_end(renderer: ChunkRenderer, error: SouverainError) -> bytes:
    closing = b"".join(
        b"data: " + dumps(chunk) + b"\n\n"
        for chunk in renderer.delta(ChatDelta(finish_reason="error"))
    )
    return closing + sse_error_event(error)
