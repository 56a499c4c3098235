"""A Responses turn on the conversation runtime: a response chain is a conversation.

The first response (no `previous_response_id`) starts a conversation; a response that
continues the conversation's latest one appends to it; one that continues an earlier
response (Responses chains may branch) starts a new conversation from a copy of the
entries up to that response, as `/v1/conversations/{id}/restart` does, so both branches
are kept. The turn itself is a conversation turn (agents/conversation_loop.py): every
model step a pipeline call as the owner, the conversation's sticky classification
claimed, the tenant's limits, entries stored with the conversation. Function tools are
run by the client: the turn stops with `function_call` items, as before.

`instructions` hold for their turn only (OpenAI does not carry them into the next);
`store: false` runs the turn on a conversation that is never saved, and continues a
stored chain without adding to it. A stored response is indexed in agents/store.py:
its conversation, the entries it made, and the response object without its items.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..context import RequestContext
from ..errors import EngineError, InvalidRequest, NotFound, SouverainError
from ..protocol.responses import ResponsesRequest, response_object, usage_object
from .conversation_entries import PREFIXES
from .conversation_limits import TurnLimits
from .conversation_loop import ConversationLoop
from .conversation_runtime import Profile, Turn
from .conversation_store import Conversation, ConversationStore
from .conversation_tools import bind
from .events import Event, ResponseEvents
from .items import item_id
from .response_items import finish_status, input_entries, output_items
from .store import RESPONSE_TAG, Owner, ResponseStore

if TYPE_CHECKING:
    from ..state import AppState


@dataclass(slots=True)
class ResponseTurn:
    request: ResponsesRequest
    turn: Turn  # the conversation turn that runs it
    owner: Owner
    subject: str
    own: list[dict[str, Any]]  # this response's input entries (a branch's copies excluded)
    id: str
    model: str  # the model's id (an alias resolved)
    created_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def ctx(self) -> RequestContext:
        """The last model step's context (where it went, at which level), else the turn's."""
        return self.turn.step_ctx or self.turn.ctx

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
            model=self.model, status=status, output=output, usage=usage,
            error=error, incomplete_reason=incomplete_reason,
        )  # fmt: skip

    def final(self) -> dict[str, Any]:
        """The response once its turn ran: the output from the entries the turn made."""
        status, reason = finish_status(self.turn.finish_reason)
        usage = usage_object(self.turn.prompt_tokens, self.turn.completion_tokens)
        return self.render(status, output_items(self.turn.outputs, status), usage, None, reason)


class ResponsesRuntime:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.responses = ResponseStore(state.database)
        self.conversations = ConversationStore(state.database, state.conversation_history)
        self.loop = ConversationLoop(state)

    async def begin(self, ctx: RequestContext, request: ResponsesRequest) -> ResponseTurn:
        """Check the request, find the conversation it continues, set the turn up."""
        request.unsupported()
        model = self.state.pipeline.visible_model(ctx, request.model)  # 404 before all else
        owner = Owner.of(ctx.principal)
        metadata = request.metadata or {}
        subject = str(request.user or metadata.get("subject") or ctx.principal.label)
        response_id = item_id("resp")
        own = input_entries(request.input, response_id)
        conversation, history, copies = await self._conversation(ctx, request, owner, subject)
        if not history and not copies and not own:
            raise InvalidRequest("input: give at least one input item", param="input")
        tools = _function_tools(request)
        profile = Profile(
            agent=None, model=request.model, instructions=request.instructions, tools=tools,
            completion_args=_completion_args(request), handoffs=[], limits={},
        )  # fmt: skip
        turn = Turn(
            ctx=ctx,
            conversation=conversation,
            history=history,
            inputs=[*copies, *own],
            profile=profile,
            toolbox=await bind(self.state, ctx, tools, []),
            limits=TurnLimits.of(self.state.settings.agents, ctx.principal.tenant),
            stream=request.stream,
            store=request.stored,
            completion_args={},
            chat_fields={
                "user": request.user or request.safety_identifier,
                "metadata": request.metadata,
                "parallel_tool_calls": request.parallel_tool_calls,
            },
        )
        conversation.model = request.model
        return ResponseTurn(request, turn, owner, subject, own, response_id, model.id)

    async def complete(self, rt: ResponseTurn) -> dict[str, Any]:
        await self.loop.complete(rt.turn)
        body = rt.final()
        await self._keep(rt, body)
        return body

    async def stream(self, rt: ResponseTurn) -> AsyncIterator[Event]:
        """The turn's events. Errors before the first step answered are raised here (a
        plain HTTP error); later ones end the stream with `response.failed`."""
        steps = self.loop.run(rt.turn)
        first = await anext(steps)
        return self._events(rt, first, steps)

    async def _events(
        self, rt: ResponseTurn, first: Event, steps: AsyncIterator[Event]
    ) -> AsyncIterator[Event]:
        events = ResponseEvents(rt.render)
        try:  # from here on the loop is closed whatever happens (a disconnect)
            for event in events.start():
                yield event
            for event in events.step(first):
                yield event
            async for step in steps:
                for event in events.step(step):
                    yield event
            body = rt.final()
            closing = events.finish(body)
            await self._keep(rt, body)
        except SouverainError as exc:
            closing = events.fail(exc)
        except Exception as exc:  # never a stream that stops without a word
            closing = events.fail(EngineError(f"the stream failed: {type(exc).__name__}"))
        finally:
            await steps.aclose()  # type: ignore[attr-defined]
        for event in closing:
            yield event

    # ---- parts --------------------------------------------------------------------------

    async def _conversation(
        self, ctx: RequestContext, request: ResponsesRequest, owner: Owner, subject: str
    ) -> tuple[Conversation, list[dict[str, Any]], list[dict[str, Any]]]:
        """The conversation this turn runs in, its history, and the entries to copy into
        it (a branch). Another owner's response reads as missing (404)."""
        previous = request.previous_response_id
        if previous is None:
            return _new_conversation(owner, subject, request, None), [], []
        stored = await asyncio.to_thread(self.responses.get, owner, previous)
        found = None
        if stored is not None:
            found = await asyncio.to_thread(self.conversations.get, owner, stored.conversation_id)
        if stored is None or found is None:
            raise NotFound(f"no response {previous[:80]!r} was found", param="previous_response_id")
        # A key is cleared for data up to its ceiling: it neither reads nor continues more.
        policy = self.state.pipeline.router.policy
        policy.check_readable(found.classification, ctx.principal.max_classification)
        entries = await asyncio.to_thread(self.conversations.entries, found.id)
        ids = [value["id"] for value in entries]
        last = stored.entry_ids[-1] if stored.entry_ids else None
        if last is None or last not in ids:
            raise NotFound(f"no response {previous[:80]!r} was found", param="previous_response_id")
        if ids[-1] == last:  # its conversation's latest: append
            return found, entries, []
        # A branch: copies of the entries up to that response, each tagged with the
        # response that made it, so that deleting or erasing that response reaches the copy.
        made_by = await asyncio.to_thread(self.responses.entry_owners, found.id)
        copies = []
        for value in entries[: ids.index(last) + 1]:
            copy = {**value, "id": item_id(PREFIXES[value["type"]])}
            if value["id"] in made_by:
                copy[RESPONSE_TAG] = made_by[value["id"]]
            copies.append(copy)
        branch = _new_conversation(owner, subject, request, found.classification)
        return branch, [], copies

    async def _keep(self, rt: ResponseTurn, body: dict[str, Any]) -> None:
        if not rt.turn.store:
            return
        await asyncio.to_thread(
            self.responses.save,
            rt.owner,
            subject=rt.subject,
            conversation_id=rt.turn.conversation.id,
            entry_ids=[value["id"] for value in [*rt.own, *rt.turn.outputs]],
            classification=rt.turn.conversation.classification,
            body=body,
        )


def _new_conversation(
    owner: Owner, subject: str, request: ResponsesRequest, classification: str | None
) -> Conversation:
    """A conversation for a response chain (or a branch of one: its level carries over)."""
    return Conversation(
        id=item_id("conv"),
        owner=owner,
        subject=subject,
        agent_id=None,
        agent_version=None,
        model=request.model,
        settings={
            "metadata": request.metadata,
            "tools": _function_tools(request),
            "completion_args": {},
        },
        classification=classification,
    )


def _function_tools(request: ResponsesRequest) -> list[dict[str, Any]]:
    """The request's function tools as a conversation holds them (chat's shape)."""
    return [
        {"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}
        for tool in request.tools or ()
    ]


def _completion_args(request: ResponsesRequest) -> dict[str, Any]:
    """The request's generation settings as a conversation turn's completion arguments."""
    args: dict[str, Any] = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_output_tokens,
    }
    if request.tool_choice is not None:
        args["tool_choice"] = _tool_choice(request.tool_choice)
    fmt = request.text.format if request.text else None
    if fmt is not None and fmt.type != "text":
        args["response_format"] = {"type": fmt.type}
        if fmt.type == "json_schema":
            args["response_format"]["json_schema"] = fmt.model_dump(
                by_alias=True, exclude={"type"}, exclude_none=True
            )
    return {key: value for key, value in args.items() if value is not None}


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
