"""`/v1/conversations`: Mistral's Conversations API (`client.beta.conversations.*`).

Thin: turns are set up by agents/conversation_runtime.py and run by
agents/conversation_loop.py, every model step through the pipeline; conversations are
read within the caller's scope (agents/conversation_store.py: another owner's or
tenant's is a 404). Key scopes name this surface `conversations`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..agents.conversation_entries import messages_of, public
from ..agents.conversation_events import frames
from ..agents.conversation_loop import ConversationLoop
from ..agents.conversation_runtime import Turn, TurnSetup, missing
from ..agents.conversation_store import Conversation, ConversationStore
from ..agents.store import Owner
from ..context import RequestContext
from ..errors import InvalidRequest
from ..identity.rbac import require
from ..jsonsafe import check_depth
from ..protocol.conversations import ConversationAppend, ConversationRestart, ConversationStart
from .completions import decision_headers
from .http import JSON, MAX_PAGE_NUMBER, app_state, parse_body, query_int
from .streaming import SSE_HEADERS

ENDPOINT = "conversations"
# mistralai 3.x serializes an unset `metadata` query parameter as this JSON string.
SDK_UNSET = "~?~unset~?~sentinel~?~"


def conversation_routes() -> list[Route]:
    base = "/v1/conversations"
    one = base + "/{conversation_id}"
    return [
        Route(base, start, methods=["POST"]),
        Route(base, list_conversations, methods=["GET"]),
        Route(one, get_conversation, methods=["GET"]),
        Route(one, append, methods=["POST"]),
        Route(one, delete_conversation, methods=["DELETE"]),
        Route(one + "/history", history, methods=["GET"]),
        Route(one + "/messages", messages, methods=["GET"]),
        Route(one + "/restart", restart, methods=["POST"]),
    ]


async def start(request: Request) -> Response:
    ctx = await _open(request)
    body = await parse_body(request, ConversationStart)
    body.check()
    turn = await TurnSetup(app_state(request)).start(ctx, body)
    return await _answer(request, ctx, turn)


async def append(request: Request) -> Response:
    ctx = await _open(request)
    body = await parse_body(request, ConversationAppend)
    body.check()
    conversation_id = request.path_params["conversation_id"]
    turn = await TurnSetup(app_state(request)).append(ctx, conversation_id, body)
    return await _answer(request, ctx, turn)


async def restart(request: Request) -> Response:
    ctx = await _open(request)
    body = await parse_body(request, ConversationRestart)
    conversation_id = request.path_params["conversation_id"]
    turn = await TurnSetup(app_state(request)).restart(ctx, conversation_id, body)
    return await _answer(request, ctx, turn)


async def _answer(request: Request, ctx: RequestContext, turn: Turn) -> Response:
    loop = ConversationLoop(app_state(request))
    if not turn.stream:
        return JSON(await loop.complete(turn), headers=decision_headers(ctx))
    events = loop.run(turn)
    first = await anext(events)  # errors before the first step answered: plain HTTP errors

    async def all_events() -> Any:
        yield first
        async for item in events:
            yield item

    return StreamingResponse(
        frames(all_events()),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **decision_headers(ctx)},
    )


async def list_conversations(request: Request) -> Response:
    state = app_state(request)
    ctx = await _open(request)
    page = query_int(request, "page", 0, minimum=0, maximum=MAX_PAGE_NUMBER)
    page_size = query_int(request, "page_size", 100, minimum=1, maximum=100)
    metadata = _metadata_filter(request.query_params.get("metadata"))
    store = ConversationStore(state.database)
    found = await asyncio.to_thread(
        store.list, Owner.of(ctx.principal), page=page, page_size=page_size, metadata=metadata
    )
    return JSON([conversation_json(c) for c in found])


async def get_conversation(request: Request) -> Response:
    _, conversation = await _stored(request)
    return JSON(conversation_json(conversation))


async def delete_conversation(request: Request) -> Response:
    state = app_state(request)
    ctx = await _open(request)
    conversation_id = request.path_params["conversation_id"]
    store = ConversationStore(state.database)
    if not await asyncio.to_thread(store.delete, Owner.of(ctx.principal), conversation_id):
        raise missing(conversation_id)
    return Response(status_code=204)


async def history(request: Request) -> Response:
    store, conversation = await _stored(request)
    entries = await asyncio.to_thread(store.entries, conversation.id)
    return JSON(
        {
            "object": "conversation.history",
            "conversation_id": conversation.id,
            "entries": [public(value) for value in entries],
        }
    )


async def messages(request: Request) -> Response:
    store, conversation = await _stored(request)
    entries = await asyncio.to_thread(store.entries, conversation.id)
    return JSON(
        {
            "object": "conversation.messages",
            "conversation_id": conversation.id,
            "messages": messages_of(entries),
        }
    )


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    """Mistral's `AgentConversation` or `ModelConversation`."""
    settings = conversation.settings
    body: dict[str, Any] = {
        "object": "conversation",
        "id": conversation.id,
        "created_at": _iso(conversation.created_at),
        "updated_at": _iso(conversation.updated_at),
        "name": settings.get("name"),
        "description": settings.get("description"),
        "metadata": settings.get("metadata"),
    }
    if conversation.agent_id is not None:
        body |= {"agent_id": conversation.agent_id, "agent_version": conversation.agent_version}
    else:
        body |= {
            "model": conversation.model,
            "instructions": settings.get("instructions"),
            "tools": settings.get("tools") or [],
            "completion_args": settings.get("completion_args") or {},
            "guardrails": settings.get("guardrails"),
        }
    return body


async def _open(request: Request) -> RequestContext:
    ctx = await app_state(request).pipeline.open(request.headers, ENDPOINT)
    require(ctx.principal, "models.use")
    return ctx


async def _stored(request: Request) -> tuple[ConversationStore, Conversation]:
    state = app_state(request)
    ctx = await _open(request)
    conversation_id = request.path_params["conversation_id"]
    store = ConversationStore(state.database)
    found = await asyncio.to_thread(store.get, Owner.of(ctx.principal), conversation_id)
    if found is None:
        raise missing(conversation_id)
    state.pipeline.router.policy.check_readable(
        found.classification, ctx.principal.max_classification
    )
    return store, found


def _metadata_filter(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if value is None or value == SDK_UNSET:  # what the mistralai SDK sends when unset
        return None
    if not isinstance(value, dict) or len(raw) > 4096:
        raise InvalidRequest("metadata: a JSON object (at most 4 KiB)", param="metadata")
    check_depth(value, 8, param="metadata")
    return value


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
