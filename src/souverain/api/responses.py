"""`/v1/responses`: create (whole or streamed), retrieve, delete, list input items.

Thin: the turn runs on the conversation runtime (agents/runtime.py: a response chain is
a conversation, every model step a pipeline call); stored responses are read within the
caller's scope from their index and their conversation's entries (agents/store.py). Key
scopes name this surface `responses`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..agents.events import Event
from ..agents.response_items import listed_items, output_items
from ..agents.runtime import ResponsesRuntime
from ..agents.store import Owner, ResponseStore, StoredResponse
from ..context import RequestContext
from ..errors import InvalidRequest, NotFound
from ..identity.rbac import require
from ..protocol.responses import ResponsesRequest
from .completions import decision_headers
from .http import JSON, app_state, dumps, parse_body, query_int
from .streaming import SSE_HEADERS

ENDPOINT = "responses"


async def create_response(request: Request) -> Response:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, ENDPOINT)
    body = await parse_body(request, ResponsesRequest)
    runtime = ResponsesRuntime(state)
    turn = await runtime.begin(ctx, body)
    if not body.stream:
        answer = await runtime.complete(turn)
        return JSON(answer, headers=decision_headers(turn.ctx))
    events = await runtime.stream(turn)
    return StreamingResponse(
        _frames(events),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **decision_headers(turn.ctx)},
    )


async def _frames(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    # Typed events, as OpenAI sends them: `event:` names the type; no `[DONE]` at the end.
    async for event in events:
        yield b"event: " + event["type"].encode() + b"\ndata: " + dumps(event) + b"\n\n"


async def get_response(request: Request) -> Response:
    stored, entries = await _stored(request)
    outputs = [value for value in entries if "_item" not in value]
    body = {**stored.body, "output": output_items(outputs, stored.body["status"])}
    return JSON(body)


async def delete_response(request: Request) -> Response:
    state = app_state(request)
    ctx = await _open(request)
    response_id = request.path_params["response_id"]
    store = ResponseStore(state.database)
    if not await asyncio.to_thread(store.delete, Owner.of(ctx.principal), response_id):
        raise _missing(response_id)
    return JSON({"id": response_id, "object": "response.deleted", "deleted": True})


async def list_input_items(request: Request) -> Response:
    """This response's own input items (not those of the responses it continues)."""
    _, entries = await _stored(request)
    limit = query_int(request, "limit", 20, minimum=1, maximum=100)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc", param="order")
    items: list[dict[str, Any]] = listed_items(entries)
    if order == "desc":
        items.reverse()
    after = request.query_params.get("after")
    if after:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return JSON(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )


async def _open(request: Request) -> RequestContext:
    ctx = await app_state(request).pipeline.open(request.headers, ENDPOINT)
    require(ctx.principal, "models.use")
    return ctx


async def _stored(request: Request) -> tuple[StoredResponse, list[dict[str, Any]]]:
    """The caller's stored response and the entries it made (its input, then its output)."""
    state = app_state(request)
    ctx = await _open(request)
    response_id = request.path_params["response_id"]
    store = ResponseStore(state.database)
    stored = await asyncio.to_thread(store.get, Owner.of(ctx.principal), response_id)
    if stored is None:
        raise _missing(response_id)
    state.pipeline.router.policy.check_readable(
        stored.classification, ctx.principal.max_classification
    )
    return stored, await asyncio.to_thread(store.entries, stored)


def _missing(response_id: str) -> NotFound:
    return NotFound(f"no response {response_id[:80]!r} was found", param="response_id")
