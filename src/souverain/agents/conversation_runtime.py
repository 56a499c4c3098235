"""Conversations: how a turn is set up (start, append, restart) before the loop runs it.

A turn belongs to the conversation's owner: its model steps are pipeline calls as that
caller (agents/conversation_loop.py). Setting up checks everything that can be refused
before any model step: the conversation is the caller's (another owner's or tenant's is
a 404), the key is cleared for its sticky classification, the agent exists in the
caller's tenant, every tool binds for the caller, pending approvals are answered and
function calls have their results.

Approvals: a call of a tool whose spec `requires_approval` pauses the turn with a
`function.call` entry in `confirmation_status: "pending"`. The next append must carry a
`tool_confirmations` decision for each; the owner may give it, and so may an admin of
the conversation's tenant. Model steps only ever run as the owner: after an admin's
decision the approved call runs and the turn stops there; the owner's next append goes on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..api.http import validation_error
from ..context import RequestContext
from ..errors import InvalidRequest, NotFound
from ..protocol.agents import check_tools
from ..protocol.chat import ChatCompletionRequest, ChatMessage
from ..protocol.conversations import ConversationAppend, ConversationRestart, ConversationStart
from .conversation_entries import input_entries, public, to_messages
from .conversation_limits import TurnLimits
from .conversation_store import Conversation, ConversationStore
from .conversation_tools import Toolbox, bind
from .items import item_id
from .store import Owner

if TYPE_CHECKING:
    from ..state import AppState
    from .registry import AgentRegistry, AgentVersion

FORCED = ("any", "required")  # tool_choice values that force a call
APPROVERS = ("owner", "admin")  # roles that may decide on a call in their tenant


@dataclass(slots=True)
class Profile:
    """Who answers now: an agent's version, or a model with its own settings."""

    agent: AgentVersion | None
    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    completion_args: dict[str, Any]
    handoffs: list[AgentVersion]
    limits: dict[str, int | float]


@dataclass(slots=True)
class Turn:
    ctx: RequestContext
    conversation: Conversation
    history: list[dict[str, Any]]  # entries before this turn
    inputs: list[dict[str, Any]]
    profile: Profile
    toolbox: Toolbox
    limits: TurnLimits
    stream: bool
    store: bool
    completion_args: dict[str, Any]  # this turn's overrides
    confirmations: dict[str, str] = field(default_factory=dict)
    run_model: bool = True  # False: an approver's decision only
    outputs: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  # stored entries updated
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Chat fields a surface sets beyond the profile's (the Responses API: user, metadata,
    # parallel_tool_calls); they override the conversation's.
    chat_fields: dict[str, Any] = field(default_factory=dict)
    finish_reason: str = "stop"  # the last model step's
    step_ctx: RequestContext | None = None  # the last model step's (its route decision)

    def usage(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }

    def chat_request(self, number: int, *, tools_spent: bool = False) -> ChatCompletionRequest:
        """The chat call of this turn's model step `number` (from 1): every text sent is in it,
        for the guards. A forced tool_choice holds for the first step only. `tools_spent`:
        the turn made its max_tool_calls, so this step may call none and must answer."""
        turn = self
        profile = turn.profile
        args = {**profile.completion_args, **turn.completion_args}
        messages = to_messages([*turn.history, *turn.inputs, *turn.outputs])
        if profile.instructions:
            messages.insert(0, ChatMessage(role="system", content=profile.instructions))
        tools = turn.toolbox.specs()
        choice = args.get("tool_choice")
        if choice in FORCED and number > 1:
            choice = "auto"
        if tools_spent:
            choice = "none"
        data: dict[str, Any] = {
            "model": profile.model,
            "messages": messages,
            "stream": turn.stream,
            "tools": tools or None,
            "tool_choice": choice if tools else None,
            "metadata": turn.conversation.settings.get("metadata"),
        }
        for key in (
            "temperature",
            "top_p",
            "max_tokens",
            "stop",
            "presence_penalty",
            "frequency_penalty",
            "random_seed",
            "response_format",
        ):
            if args.get(key) is not None:
                data[key] = args[key]
        if turn.toolbox.handoffs:
            # A handoff ends this agent's part and the conversation moves once: a step that
            # may hand off asks for one call at a time (allowed parallel calls, the embedded
            # model repeated its forced handoff until max_tokens, and the cut call was lost).
            data["parallel_tool_calls"] = False
        data.update(turn.chat_fields)
        try:
            return ChatCompletionRequest.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc) from None

    def response(self) -> dict[str, Any]:
        return {
            "object": "conversation.response",
            "conversation_id": self.conversation.id,
            "outputs": [public(value) for value in self.outputs],
            "usage": self.usage(),
        }


class TurnSetup:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.store = ConversationStore(state.database, state.conversation_history)

    @property
    def registry(self) -> AgentRegistry:
        from .registry import AgentRegistry

        return AgentRegistry(self.state.database)

    async def start(self, ctx: RequestContext, body: ConversationStart) -> Turn:
        owner = Owner.of(ctx.principal)
        metadata = dict(body.metadata or {})
        settings: dict[str, Any] = {
            "name": body.name,
            "description": body.description,
            "metadata": body.metadata,
            "guardrails": body.guardrails,
            "completion_args": _args(body.completion_args),
        }
        if body.model is not None:
            self.state.pipeline.visible_model(ctx, body.model)  # 404 before anything is kept
            settings |= {"instructions": body.instructions, "tools": check_tools(body.tools or [])}
        conversation = Conversation(
            id=item_id("conv"),
            owner=owner,
            subject=str(metadata.get("subject") or ctx.principal.label),
            agent_id=None,
            agent_version=None,
            model=body.model,
            settings=settings,
        )
        if body.agent_id is not None:
            agent = await self._agent(ctx, body.agent_id, body.agent_version, param="agent_id")
            conversation.agent_id = agent.id
            conversation.agent_version = agent.version if body.agent_version is not None else None
        turn = await self._turn(ctx, conversation, [], body.inputs, body, {})
        _check_results([], turn.inputs)
        return turn

    async def append(
        self, ctx: RequestContext, conversation_id: str, body: ConversationAppend
    ) -> Turn:
        principal = ctx.principal
        approver_only = not body.inputs and principal.role in APPROVERS
        conversation, history = await self._conversation(
            ctx, conversation_id, any_owner=approver_only
        )
        own = conversation.owner == Owner.of(principal)
        confirmations: dict[str, str] = {
            c.tool_call_id: c.confirmation for c in body.tool_confirmations or []
        }
        waiting = {p["tool_call_id"] for p in conversation.pending}
        if confirmations.keys() - waiting:
            unknown = sorted(confirmations.keys() - waiting)[0]
            raise InvalidRequest(
                f"no tool call {unknown[:80]!r} awaits a confirmation in this conversation",
                param="tool_confirmations",
            )
        if waiting - confirmations.keys():
            missing = ", ".join(sorted(waiting - confirmations.keys())[:5])
            raise InvalidRequest(
                f"this conversation waits for a decision on tool calls {missing}: give "
                "tool_confirmations (allow or deny) for each",
                param="tool_confirmations",
                code="confirmation_required",
            )
        turn = await self._turn(ctx, conversation, history, body.inputs, body, confirmations)
        turn.run_model = own
        if own:
            _check_results(history, turn.inputs)
        return turn

    async def restart(
        self, ctx: RequestContext, conversation_id: str, body: ConversationRestart
    ) -> Turn:
        """A new conversation: this one's entries up to `from_entry_id` (included), then
        the new inputs. Its classification carries over: the level only rises."""
        source, entries = await self._conversation(ctx, conversation_id, any_owner=False)
        ids = [value["id"] for value in entries]
        if body.from_entry_id not in ids:
            raise NotFound(
                f"no entry {body.from_entry_id[:80]!r} in this conversation", param="from_entry_id"
            )
        kept = entries[: ids.index(body.from_entry_id) + 1]
        settings = dict(source.settings)
        if body.metadata is not None:
            settings["metadata"] = body.metadata
        conversation = Conversation(
            id=item_id("conv"),
            owner=source.owner,
            subject=str((settings.get("metadata") or {}).get("subject") or ctx.principal.label),
            agent_id=source.agent_id,
            agent_version=source.agent_version,
            model=source.model,
            settings=settings,
            classification=source.classification,
        )
        if body.agent_version is not None:
            if source.agent_id is None:
                raise InvalidRequest(
                    "agent_version: this conversation has no agent", param="agent_version"
                )
            agent = await self._agent(
                ctx, source.agent_id, body.agent_version, param="agent_version"
            )
            conversation.agent_version = agent.version
        copies = [{**value, "id": item_id(value["id"].split("_")[0] or "e")} for value in kept]
        turn = await self._turn(ctx, conversation, [], body.inputs, body, {}, rerun=True)
        turn.inputs = [*copies, *turn.inputs]  # all stored with the new conversation
        _check_results([], turn.inputs)
        return turn

    # ---- parts --------------------------------------------------------------------------

    async def _turn(
        self,
        ctx: RequestContext,
        conversation: Conversation,
        history: list[dict[str, Any]],
        inputs: Any,
        body: ConversationStart | ConversationAppend | ConversationRestart,
        confirmations: dict[str, str],
        *,
        rerun: bool = False,
    ) -> Turn:
        profile = await self.profile(ctx, conversation)
        toolbox = await bind(self.state, ctx, profile.tools, profile.handoffs)
        limits = TurnLimits.of(self.state.settings.agents, ctx.principal.tenant, profile.limits)
        new = input_entries(inputs) if inputs else []
        if not new and not confirmations and not rerun:
            raise InvalidRequest("inputs: give at least one entry", param="inputs")
        return Turn(
            ctx=ctx,
            conversation=conversation,
            history=history,
            inputs=new,
            profile=profile,
            toolbox=toolbox,
            limits=limits,
            stream=body.stream,
            store=body.store is not False,
            completion_args=_args(body.completion_args),
            confirmations=confirmations,
        )

    async def profile(self, ctx: RequestContext, conversation: Conversation) -> Profile:
        settings = conversation.settings
        if conversation.agent_id is None:
            return Profile(
                agent=None,
                model=str(conversation.model),
                instructions=settings.get("instructions"),
                tools=settings.get("tools") or [],
                completion_args=settings.get("completion_args") or {},
                handoffs=[],
                limits={},
            )
        agent = await self._agent(
            ctx, conversation.agent_id, conversation.agent_version, param="agent_id"
        )
        handoffs = []
        for target in agent.handoffs[:32]:
            found = await asyncio.to_thread(self.registry.resolve, ctx.principal.tenant, target)
            if found is not None and found.id != agent.id:  # a deleted target offers nothing
                handoffs.append(found)
        return Profile(
            agent=agent,
            model=agent.model,
            instructions=agent.instructions,
            tools=agent.tools,
            completion_args={**agent.completion_args, **(settings.get("completion_args") or {})},
            handoffs=handoffs,
            limits=agent.limits,
        )

    async def _agent(
        self, ctx: RequestContext, agent_id: str, version: int | str | None, *, param: str
    ) -> AgentVersion:
        found = await asyncio.to_thread(
            self.registry.resolve, ctx.principal.tenant, agent_id, version
        )
        if found is None:
            shown = agent_id[:80] + ("" if version is None else f" version {str(version)[:40]}")
            raise NotFound(f"no agent {shown!r} was found", param=param)
        return found

    async def _conversation(
        self, ctx: RequestContext, conversation_id: str, *, any_owner: bool
    ) -> tuple[Conversation, list[dict[str, Any]]]:
        """The conversation in the caller's scope and its entries, read together."""
        loaded = await asyncio.to_thread(
            self.store.load, Owner.of(ctx.principal), conversation_id, any_owner=any_owner
        )
        if loaded is None:
            raise missing(conversation_id)
        found, history = loaded
        # A key is cleared for data up to its ceiling: it neither reads nor continues more.
        policy = self.state.pipeline.router.policy
        policy.check_ceiling(
            policy.classify(found.classification), ctx.principal.max_classification
        )
        return found, history


def missing(conversation_id: str) -> NotFound:
    return NotFound(f"no conversation {conversation_id[:80]!r} was found", param="conversation_id")


def _args(args: Any) -> dict[str, Any]:
    return {} if args is None else args.model_dump(exclude_none=True)


def _check_results(history: list[dict[str, Any]], inputs: list[dict[str, Any]]) -> None:
    """Every function call the client was asked to run needs its result before the model
    reads the conversation again (engines refuse a call without one)."""
    calls = [
        value["tool_call_id"]
        for value in history
        if value.get("type") == "function.call" and value.get("confirmation_status") is None
    ]
    answered = {
        value["tool_call_id"]
        for value in [*history, *inputs]
        if value.get("type") == "function.result"
    }
    waiting = [call for call in calls if call not in answered]
    if waiting:
        raise InvalidRequest(
            f"the conversation waits for the result of function call {waiting[0][:80]!r}: "
            "append a function.result entry for it",
            param="inputs",
            code="function_result_required",
        )
    known = set(calls)
    for value in inputs:
        if value.get("type") == "function.result" and value["tool_call_id"] not in known:
            raise InvalidRequest(
                f"function.result for {value['tool_call_id'][:80]!r}: no such function call "
                "in this conversation",
                param="inputs",
            )
