"""One turn of a conversation: items in, one pipeline model call, items out, stored.

The turn is built as a chat completion request (`ChatCompletionRequest`) and goes through
the pipeline like any chat call, so identity, quotas, data-loss prevention, policy routing,
failover and the audit log apply unchanged, and the guards see exactly what is sent: the
instructions, the history of the chain and the new input, all as chat messages.

A continued response (`previous_response_id`) is read from the store within the caller's
scope (another owner's id is a 404, like a missing one); its classification is a claim
on the new call, so a conversation's level only rises.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..api.http import validation_error
from ..api.streaming import primed
from ..context import RequestContext
from ..errors import EngineError, InvalidRequest, NotFound, SouverainError
from ..pipeline import ModelCall, Pipeline
from ..protocol.chat import ChatCompletionRequest, ChatMessage
from ..protocol.responses import ResponsesRequest, response_object, usage_object
from ..protocol.tool_call_stream import whole_tool_calls
from .events import Event, ResponseEvents
from .items import finish_status, input_items, item_id, output_items, to_messages
from .store import Owner, ResponseStore


@dataclass(slots=True)
class Turn:
    ctx: RequestContext
    request: ResponsesRequest
    call: ModelCall
    owner: Owner
    items: list[dict[str, Any]]  # this turn's input, as stored
    id: str = field(default_factory=lambda: item_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def render(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        incomplete_reason: str | None = None,
    ) -> dict[str, Any]:
        return response_object(
            self.request, response_id=self.id, created_at=self.created_at,
            model=self.call.model.id, status=status, output=output, usage=usage,
            error=error, incomplete_reason=incomplete_reason,
        )  # fmt: skip


class ResponsesRuntime:
    def __init__(self, pipeline: Pipeline, store: ResponseStore) -> None:
        self.pipeline = pipeline
        self.store = store

    async def begin(self, ctx: RequestContext, request: ResponsesRequest) -> Turn:
        """Check the request, read the chain it continues, and prepare the model call."""
        request.unsupported()
        owner = Owner.of(ctx.principal)
        history: list[ChatMessage] = []
        if request.previous_response_id is not None:
            chain = await asyncio.to_thread(self.store.chain, owner, request.previous_response_id)
            if chain is None:
                raise NotFound(
                    f"no response {request.previous_response_id[:80]!r} was found",
                    param="previous_response_id",
                )
            ctx.claims.append(chain[-1].classification)  # the level only rises
            for stored in chain:
                history += to_messages(stored.input_items)
                history += to_messages(stored.body.get("output") or [], where="output")
        items = input_items(request.input)
        messages = [*history, *to_messages(items)]
        if request.instructions:
            messages.insert(0, ChatMessage(role="system", content=request.instructions))
        if not messages:
            raise InvalidRequest("input: give at least one input item", param="input")
        chat = _chat_request(request, messages)
        call = await self.pipeline.prepare(ctx, "chat", chat)
        return Turn(ctx=ctx, request=request, call=call, owner=owner, items=items)

    async def complete(self, turn: Turn) -> dict[str, Any]:
        completion = await self.pipeline.complete(turn.ctx, turn.call)
        status, reason = finish_status(completion.finish_reason)
        usage = usage_object(completion.usage.prompt_tokens, completion.usage.completion_tokens)
        body = turn.render(status, output_items(completion, status), usage, None, reason)
        await self._keep(turn, body)
        return body

    async def stream(self, turn: Turn) -> AsyncIterator[Event]:
        """The turn's events. Errors before the first delta are raised here (a plain HTTP
        error); later ones end the stream with `response.failed`."""
        deltas = await primed(self.pipeline.stream(turn.ctx, turn.call))
        return self._events(turn, deltas)

    async def _events(self, turn: Turn, deltas: AsyncIterator[Any]) -> AsyncIterator[Event]:
        events = ResponseEvents(turn.render)
        whole = whole_tool_calls(deltas)
        try:  # from here on the engine's stream is closed whatever happens (a disconnect)
            for event in events.start():
                yield event
            async for delta in whole:
                for event in events.delta(delta):
                    yield event
            closing = events.finish()
            await self._keep(turn, closing[-1]["response"])
        except SouverainError as exc:
            closing = events.fail(exc)
        except Exception as exc:  # never a stream that stops without a word
            closing = events.fail(EngineError(f"the stream failed: {type(exc).__name__}"))
        finally:
            await whole.aclose()  # type: ignore[attr-defined]
        for event in closing:
            yield event

    async def _keep(self, turn: Turn, body: dict[str, Any]) -> None:
        if not turn.request.stored:
            return
        chat = turn.call.request
        metadata = getattr(chat, "metadata", None) or {}
        subject = getattr(chat, "user", None) or metadata.get("subject")
        await asyncio.to_thread(
            self.store.save,
            turn.owner,
            subject=str(subject or turn.ctx.principal.label),
            classification=turn.ctx.classification,
            input_items=turn.items,
            body=body,
        )


def _chat_request(request: ResponsesRequest, messages: list[ChatMessage]) -> ChatCompletionRequest:
    """The chat call for this turn: every text sent is inside it, for the guards."""
    fmt = request.text.format if request.text else None
    data: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_completion_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "parallel_tool_calls": request.parallel_tool_calls,
        "user": request.user or request.safety_identifier,
        "metadata": request.metadata,
        "stream": request.stream,
    }
    if request.tools:
        data["tools"] = [
            {"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}
            for tool in request.tools
        ]
    if request.tool_choice is not None:
        data["tool_choice"] = _tool_choice(request.tool_choice)
    if fmt is not None and fmt.type != "text":
        data["response_format"] = {"type": fmt.type}
        if fmt.type == "json_schema":
            data["response_format"]["json_schema"] = fmt.model_dump(
                by_alias=True, exclude={"type"}, exclude_none=True
            )
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequest(
                "tool_choice must be auto, none, required or a function", param="tool_choice"
            )
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest(
        f"tool_choice of type {str(choice.get('type'))[:40]!r} is not supported; "
        "only auto, none, required or a function",
        param="tool_choice",
    )
