"""Mistral's conversation events, as a streamed turn sends them (`event:` lines).

The names are those of the SDK's `ConversationEvents`: conversation.response.started,
message.output.delta, function.call.delta, tool.execution.started / .done,
agent.handoff.started / .done, conversation.response.done and
conversation.response.error. `output_index` is the entry's place in this turn's
`outputs`, so a client can rebuild them from the events alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..errors import SouverainError
from .conversation_entries import now_iso

Event = dict[str, Any]


def event(kind: str, **fields: Any) -> Event:
    return {"type": kind, "created_at": now_iso(), **fields}


def started(conversation_id: str) -> Event:
    return event("conversation.response.started", conversation_id=conversation_id)


def message_delta(entry: dict[str, Any], index: int, text: str) -> Event:
    return event(
        "message.output.delta",
        id=entry["id"],
        output_index=index,
        content_index=0,
        content=text,
        model=entry.get("model"),
        agent_id=entry.get("agent_id"),
        role="assistant",
    )


def function_call(entry: dict[str, Any], index: int) -> Event:
    arguments = entry["arguments"]
    return event(
        "function.call.delta",
        id=entry["id"],
        output_index=index,
        name=entry["name"],
        tool_call_id=entry["tool_call_id"],
        arguments=arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
        model=entry.get("model"),
        agent_id=entry.get("agent_id"),
        confirmation_status=entry.get("confirmation_status"),
    )


def tool_started(entry: dict[str, Any], index: int) -> Event:
    return event(
        "tool.execution.started",
        id=entry["id"],
        output_index=index,
        name=entry["name"],
        arguments=entry["arguments"],
        model=entry.get("model"),
        agent_id=entry.get("agent_id"),
    )


def tool_done(entry: dict[str, Any], index: int) -> Event:
    return event(
        "tool.execution.done",
        id=entry["id"],
        output_index=index,
        name=entry["name"],
        info=entry.get("info") or {},
    )


def handoff_events(entry: dict[str, Any], index: int) -> list[Event]:
    return [
        event(
            "agent.handoff.started",
            id=entry["id"],
            output_index=index,
            previous_agent_id=entry["previous_agent_id"],
            previous_agent_name=entry["previous_agent_name"],
        ),
        event(
            "agent.handoff.done",
            id=entry["id"],
            output_index=index,
            next_agent_id=entry["next_agent_id"],
            next_agent_name=entry["next_agent_name"],
        ),
    ]


def done(usage: dict[str, int]) -> Event:
    return event("conversation.response.done", usage=usage)


def error(exc: SouverainError) -> Event:
    return event("conversation.response.error", message=exc.message, code=exc.status_code)


async def frames(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """Server-sent events with `event:` lines; a late error ends the stream as an event."""
    try:
        async for item in events:
            yield _frame(item)
    except SouverainError as exc:
        yield _frame(error(exc))
    except Exception as exc:  # never a stream that stops without a word, nor a trace
        failed = SouverainError(f"the turn failed ({type(exc).__name__})")
        yield _frame(error(failed))


def _frame(item: Event) -> bytes:
    kind: str = item["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(item) + b"\n\n"
