"""The agent loop of one conversation turn: model steps and tool calls until an answer.

Each model step is a chat request built from the whole conversation (instructions, every
entry so far, this turn's inputs and outputs) and goes through the pipeline
(`prepare`, then `complete` or `stream`) as the conversation's owner, in a context of its
own: quotas, data-loss prevention (tool results are `tool` messages of the next step, so
they are scanned like user text), policy routing, accounting and an audit leaf per step.
Each step claims the conversation's classification, and what the step was classified at
(and every tool outcome's level) raises it: the level is sticky, it never falls.

A step's tool calls: a function tool's call ends the turn (`function.call` entries: the
client runs it and appends the result); a server-side tool runs here (`tool.execution`),
or pauses the turn when it requires approval; a handoff tool moves the conversation to
that agent (`agent.handoff`), which answers next in the same turn. The turn ends when a
step calls no tool, or at a limit (conversation_limits.py); once the turn has made its
`max_tool_calls`, the next step is offered no tool call (`tool_choice: none`) and answers
with what it has, rather than the turn failing there. A forced `tool_choice`
(`any`, `required`) holds for the turn's first step only; later steps choose (`auto`),
or a forced choice would call tools until the limit.

`run` yields the turn's events (conversation_events.py); the whole answer is
`Turn.response()` once they are consumed. Nothing is yielded before the first step has
answered, so a refusal there (policy, quota, DLP) is a plain HTTP error even when
streamed. The conversation is stored when the turn ends, and also when a later error
(a limit) ends it after some outputs, so that nothing already done is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..context import RequestContext
from ..errors import SouverainError
from ..protocol.tool_call_stream import new_tool_call_id, whole_tool_calls
from . import conversation_events as events
from .conversation_entries import entry
from .conversation_limits import LimitReached
from .conversation_runtime import Turn, TurnSetup
from .conversation_store import ConversationStore
from .conversation_tools import audit_tool, bind, execute

if TYPE_CHECKING:
    from ..state import AppState

DENIED = "The user denied this tool call; it was not run."


class ConversationLoop:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.pipeline = state.pipeline
        self.store = ConversationStore(state.database, state.conversation_history)

    async def run(self, turn: Turn) -> AsyncIterator[events.Event]:
        first = True
        async for item in self._work(turn):
            if first:
                yield events.started(turn.conversation.id)
                first = False
            yield item
        if first:
            yield events.started(turn.conversation.id)
        yield events.done(turn.usage())

    async def complete(self, turn: Turn) -> dict[str, Any]:
        async for _ in self.run(turn):
            pass
        return turn.response()

    # ---- the loop -----------------------------------------------------------------------

    async def _work(self, turn: Turn) -> AsyncIterator[events.Event]:
        deadline = time.monotonic() + turn.limits.max_seconds
        counts = {"steps": 0, "tools": 0}
        try:
            async for item in self._decide(turn, counts):
                yield item
            while turn.run_model:
                if counts["steps"] >= turn.limits.max_steps:
                    raise LimitReached("max_steps", turn.limits.max_steps)
                counts["steps"] += 1
                calls: list[dict[str, Any]] = []
                # Tool calls spent: the step is offered none and answers with what it has.
                spent = 0 < turn.limits.max_tool_calls <= counts["tools"]
                async for item in _bounded(
                    self._step(turn, calls, counts["steps"], spent), deadline, turn
                ):
                    yield item
                if not calls:
                    break
                go_on = True
                async for item in _bounded(self._calls(turn, calls, counts), deadline, turn):
                    if item is _STOP:
                        go_on = False
                    else:
                        yield item
                if not go_on:
                    break
        except SouverainError as exc:
            if turn.outputs and turn.store:
                await self._save(turn)
                # Without it a client whose first turn failed midway could not find them.
                exc.message += f" (conversation {turn.conversation.id} keeps this turn's entries)"
            raise
        await self._save(turn)

    async def _step(
        self, turn: Turn, calls: list[dict[str, Any]], number: int, tools_spent: bool
    ) -> AsyncIterator[events.Event]:
        conversation = turn.conversation
        ctx = RequestContext(
            endpoint=turn.ctx.endpoint,  # conversations, or responses: usage and audit say so
            principal=turn.ctx.principal,
            request_id=turn.ctx.request_id,
            claims=[*turn.ctx.claims, conversation.classification],
        )
        chat = turn.chat_request(number, tools_spent=tools_spent)
        call = await self.pipeline.prepare(ctx, "chat", chat)
        turn.step_ctx = ctx
        profile = turn.profile
        owner = {"agent_id": profile.agent.id if profile.agent else None, "model": profile.model}
        content = ""
        if turn.stream:
            message = entry("message.output", content="", role="assistant", **owner)
            index = len(turn.outputs)
            deltas = whole_tool_calls(self.pipeline.stream(ctx, call))
            try:
                async for delta in deltas:
                    if delta.content:
                        content += delta.content
                        yield events.message_delta(message, index, delta.content)
                    calls.extend(delta.tool_calls or [])
                    turn.finish_reason = delta.finish_reason or turn.finish_reason
            finally:
                await deltas.aclose()  # type: ignore[attr-defined]
            message["content"] = content
        else:
            completion = await self.pipeline.complete(ctx, call)
            content = completion.content
            calls.extend(completion.tool_calls)
            turn.finish_reason = completion.finish_reason
            message = entry("message.output", content=content, role="assistant", **owner)
        if ctx.usage is not None:
            turn.prompt_tokens += ctx.usage.prompt_tokens
            turn.completion_tokens += ctx.usage.completion_tokens
        self._raise(turn, ctx.classification)
        if content or not calls:
            turn.outputs.append(message)
            if not turn.stream:
                yield events.message_delta(message, len(turn.outputs) - 1, content)

    async def _calls(
        self, turn: Turn, calls: list[dict[str, Any]], counts: dict[str, int]
    ) -> AsyncIterator[Any]:
        """Act on one step's tool calls; yields `_STOP` when the turn must end after them."""
        box, profile = turn.toolbox, turn.profile
        owner = {"agent_id": profile.agent.id if profile.agent else None, "model": profile.model}
        stop = False
        for call in calls:
            function = call.get("function") or {}
            name, arguments = str(function.get("name") or ""), function.get("arguments") or "{}"
            call_id = call.get("id") or new_tool_call_id()
            if name in box.functions:
                made = entry(
                    "function.call", tool_call_id=call_id, name=name, arguments=arguments, **owner
                )
                turn.outputs.append(made)
                yield events.function_call(made, len(turn.outputs) - 1)
                stop = True
                continue
            if counts["tools"] >= turn.limits.max_tool_calls:
                raise LimitReached("max_tool_calls", turn.limits.max_tool_calls)
            counts["tools"] += 1
            if name in box.handoffs:
                for item in await self._handoff(turn, name, call_id):
                    yield item
                profile = turn.profile
                owner = {
                    "agent_id": profile.agent.id if profile.agent else None,
                    "model": profile.model,
                }
                continue
            tool = box.bound.get(name)
            if tool is not None and tool.spec.requires_approval:
                made = entry(
                    "function.call",
                    tool_call_id=call_id,
                    name=name,
                    arguments=arguments,
                    confirmation_status="pending",
                    **owner,
                )
                turn.outputs.append(made)
                turn.conversation.pending.append(
                    {
                        "tool_call_id": call_id,
                        "name": name,
                        "arguments": arguments,
                        "entry_id": made["id"],
                        "agent_id": owner["agent_id"],
                    }
                )
                yield events.function_call(made, len(turn.outputs) - 1)
                stop = True
                continue
            for item in await self._execute(turn, name, call_id, arguments, None):
                yield item
        if stop:
            yield _STOP

    async def _execute(
        self, turn: Turn, name: str, call_id: str, arguments: Any, approval: str | None
    ) -> list[events.Event]:
        profile = turn.profile
        agent_id = profile.agent.id if profile.agent else None
        tool = turn.toolbox.bound.get(name)
        info: dict[str, Any] = {}
        if tool is None:
            output, info["error"] = f"there is no tool named {name[:64]!r}", "unknown_tool"
        else:
            done = await execute(
                self.state,
                turn.ctx,
                tool,
                call_id,
                arguments,
                conversation_id=turn.conversation.id,
                agent_id=agent_id,
                approval=approval,
                approver=turn.ctx.principal.label if approval else None,
            )
            outcome = done.outcome
            self._raise(turn, outcome.classification)
            output = outcome.output
            info = {"ok": outcome.ok, "latency_ms": round(done.latency_ms, 3), "kind": tool.kind}
            if outcome.citations:
                info["citations"] = list(outcome.citations)
            if approval:
                info["confirmation"] = approval
        made = entry(
            "tool.execution",
            name=name,
            arguments=_text(arguments),
            info=info,
            agent_id=agent_id,
            model=profile.model,
            _tool_call_id=call_id,
            _output=output,
        )
        turn.outputs.append(made)
        index = len(turn.outputs) - 1
        return [events.tool_started(made, index), events.tool_done(made, index)]

    async def _decide(self, turn: Turn, counts: dict[str, int]) -> AsyncIterator[events.Event]:
        """Act on the decisions of `tool_confirmations`: run what was allowed, tell the
        model what was denied; both are audited with the approver."""
        conversation = turn.conversation
        if not turn.confirmations:
            return
        stored = {value["id"]: value for value in turn.history}
        decided = list(conversation.pending)  # each has its decision (TurnSetup.append)
        # Claimed before any runs: of two requests deciding on one call, one runs it and
        # the other is a 409. Calls another turn paused meanwhile stay pending.
        await asyncio.to_thread(self.store.claim_decisions, conversation, set(turn.confirmations))
        for pending in decided:
            decision = turn.confirmations[pending["tool_call_id"]]
            call_entry = stored.get(pending.get("entry_id", ""))
            status = "allowed" if decision == "allow" else "denied"
            counts["tools"] += 1  # a decided call is one of this turn's, run or not
            if call_entry is not None:
                call_entry["confirmation_status"] = status
                turn.changed.append(call_entry)
            if decision == "allow":
                for item in await self._execute(
                    turn, pending["name"], pending["tool_call_id"], pending["arguments"], "allowed"
                ):
                    yield item
                continue
            tool = turn.toolbox.bound.get(pending["name"])
            await audit_tool(
                self.state,
                turn.ctx,
                tool=pending["name"],
                kind=tool.kind if tool else "unknown",
                conversation_id=conversation.id,
                agent_id=pending.get("agent_id"),
                outcome="denied",
                latency_ms=None,
                approval="denied",
                approver=turn.ctx.principal.label,
            )
            made = entry(
                "tool.execution",
                name=pending["name"],
                arguments=_text(pending["arguments"]),
                info={"confirmation": "denied"},
                agent_id=pending.get("agent_id"),
                model=turn.profile.model,
                _tool_call_id=pending["tool_call_id"],
                _output=DENIED,
            )
            turn.outputs.append(made)
            index = len(turn.outputs) - 1
            yield events.tool_started(made, index)
            yield events.tool_done(made, index)

    async def _handoff(self, turn: Turn, name: str, call_id: str) -> list[events.Event]:
        previous, target = turn.profile.agent, turn.toolbox.handoffs[name]
        assert previous is not None  # only agents have handoffs
        made = entry(
            "agent.handoff",
            previous_agent_id=previous.id,
            previous_agent_name=previous.name,
            next_agent_id=target.id,
            next_agent_name=target.name,
            _tool_call_id=call_id,
            _tool_name=name,
            _output=f"The conversation is now handled by the agent {target.name}.",
        )
        turn.outputs.append(made)
        conversation = turn.conversation
        conversation.agent_id, conversation.agent_version = target.id, None
        setup = TurnSetup(self.state)
        turn.profile = await setup.profile(turn.ctx, conversation)
        turn.toolbox = await bind(self.state, turn.ctx, turn.profile.tools, turn.profile.handoffs)
        return events.handoff_events(made, len(turn.outputs) - 1)

    # ---- parts --------------------------------------------------------------------------

    def _raise(self, turn: Turn, level: str | None) -> None:
        if level is None:
            return
        policy = self.pipeline.router.policy
        turn.conversation.classification = policy.classify(turn.conversation.classification, level)

    async def _save(self, turn: Turn) -> None:
        if not turn.store:
            return
        policy = self.pipeline.router.policy

        def highest(stored: str | None, ours: str | None) -> str | None:
            return policy.classify(stored, ours) if stored or ours else None

        await asyncio.to_thread(
            self.store.save,
            turn.conversation,
            [*turn.inputs, *turn.outputs],
            turn.changed,
            highest,
        )


_STOP = object()


async def _bounded(items: AsyncIterator[Any], deadline: float, turn: Turn) -> AsyncIterator[Any]:
    """The items, until the turn's wall-time limit (then `LimitReached`)."""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LimitReached("max_seconds", turn.limits.max_seconds)
            try:
                async with asyncio.timeout(left):
                    item = await anext(items)
            except TimeoutError:
                raise LimitReached("max_seconds", turn.limits.max_seconds) from None
            except StopAsyncIteration:
                return
            yield item
    finally:
        await items.aclose()  # type: ignore[attr-defined]


def _text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    import orjson

    return orjson.dumps(arguments).decode()
