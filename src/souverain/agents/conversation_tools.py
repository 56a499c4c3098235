"""The tools one model step of a conversation is offered, and running the server-side ones.

Three kinds, told apart by name when the model calls them:
- function tools: the client runs them; the turn stops with `function.call` entries;
- server-side tools, bound for the caller by their kind's binder (agents/tools.py
  `ToolBinder`: `document_library` in agents/library_tool.py, `connector` in
  connectors/tools.py); a call runs here, unless its spec `requires_approval`;
- handoff tools, one per agent the current agent lists in `handoffs` (same tenant: the
  registry resolves them in the caller's tenant only).

Every server-side execution leaves an audit leaf (kind `tool`: agent, tool, its kind,
connector, outcome, latency, approval, approver), never its arguments or result: those
stay in the conversation, which is the caller's data.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..context import RequestContext
from ..errors import InvalidRequest, SouverainError
from .tools import BoundTool, ToolBinder, ToolInvocation, ToolOutcome

if TYPE_CHECKING:
    from ..state import AppState
    from .registry import AgentVersion

MAX_OUTPUT_CHARS = 200_000  # what one tool's output may add to the next model step
# Binders by tool type, imported when first needed (module, attribute).
BINDERS: dict[str, tuple[str, str]] = {
    "document_library": ("souverain.agents.library_tool", "library_tools"),
    "connector": ("souverain.connectors.tools", "connector_tools"),
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(slots=True)
class Toolbox:
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)  # client-run
    bound: dict[str, BoundTool] = field(default_factory=dict)
    handoffs: dict[str, AgentVersion] = field(default_factory=dict)

    def specs(self) -> list[dict[str, Any]]:
        """The tools as a chat request offers them."""
        specs = [{"type": "function", "function": spec} for spec in self.functions.values()]
        for tool in self.bound.values():
            function: dict[str, Any] = {"name": tool.spec.name, "parameters": tool.spec.parameters}
            if tool.spec.description:
                function["description"] = tool.spec.description
            specs.append({"type": "function", "function": function})
        for name, agent in self.handoffs.items():
            about = agent.description or f"the agent {agent.name}"
            specs.append(
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": f"Hand the conversation over to {about[:500]}",
                        # No arguments, and none other allowed: an open object let a
                        # constrained model write properties until max_tokens.
                        "parameters": {
                            "type": "object",
                            "properties": {},
                            "additionalProperties": False,
                        },
                    },
                }
            )
        return specs


async def bind(
    state: AppState,
    ctx: RequestContext,
    tools: list[dict[str, Any]],
    handoffs: list[AgentVersion],
) -> Toolbox:
    """Bind every tool entry for this caller (400 or 404 before any model step)."""
    box = Toolbox()
    for index, tool in enumerate(tools):
        kind = tool.get("type")
        if kind == "function":
            spec = tool.get("function") or {}
            _claim(box, str(spec.get("name")), f"tools[{index}]")
            box.functions[spec["name"]] = spec
            continue
        binder = _binder(kind, index)
        for bound in await binder(state, ctx.principal, tool):
            _claim(box, bound.spec.name, f"tools[{index}]")
            box.bound[bound.spec.name] = bound
    for agent in handoffs:
        name = "handoff_to_" + (_UNSAFE.sub("_", agent.name).strip("_") or "agent")[:40]
        while name in box.functions or name in box.bound or name in box.handoffs:
            name = name[:60] + "_" + str(len(box.handoffs))
        box.handoffs[name] = agent
    return box


def _binder(kind: Any, index: int) -> ToolBinder:
    where = f"tools[{index}].type"
    if not isinstance(kind, str) or kind not in BINDERS:
        shown = repr(kind[:40]) if isinstance(kind, str) else "missing"
        raise InvalidRequest(f"tool type {shown} is not supported here", param=where)
    module, attribute = BINDERS[kind]
    binder: ToolBinder = getattr(importlib.import_module(module), attribute)
    return binder


def _claim(box: Toolbox, name: str, where: str) -> None:
    if name in box.functions or name in box.bound:
        raise InvalidRequest(f"{where}: two tools are named {name[:64]!r}", param=where)


def arguments_of(raw: Any) -> dict[str, Any] | None:
    """A call's arguments as an object; None when they are not one."""
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class Execution:
    outcome: ToolOutcome
    latency_ms: float


async def execute(
    state: AppState,
    ctx: RequestContext,
    tool: BoundTool,
    call_id: str,
    raw_arguments: Any,
    *,
    conversation_id: str,
    agent_id: str | None,
    approval: str | None = None,
    approver: str | None = None,
) -> Execution:
    """Run one server-side call; a failure is an outcome the model reads, not an error."""
    started = time.perf_counter()
    arguments = arguments_of(raw_arguments)
    if arguments is None:
        outcome = ToolOutcome(output="the arguments were not a JSON object", ok=False)
    else:
        try:
            outcome = await tool.run(ToolInvocation(call_id, tool.spec.name, arguments))
        except SouverainError as exc:
            outcome = ToolOutcome(output=f"the tool failed: {exc.message}", ok=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tool's bug is the model's information, not a 500
            outcome = ToolOutcome(output=f"the tool failed ({type(exc).__name__})", ok=False)
    if len(outcome.output) > MAX_OUTPUT_CHARS:
        cut = outcome.output[:MAX_OUTPUT_CHARS] + "\n[output truncated]"
        outcome = ToolOutcome(
            cut, outcome.ok, outcome.classification, outcome.citations, outcome.audit
        )
    latency = (time.perf_counter() - started) * 1000
    await audit_tool(
        state,
        ctx,
        tool=tool.spec.name,
        kind=tool.kind,
        conversation_id=conversation_id,
        agent_id=agent_id,
        outcome="ok" if outcome.ok else "tool_error",
        latency_ms=latency,
        approval=approval,
        approver=approver,
        extra=outcome.audit,
    )
    return Execution(outcome, latency)


async def audit_tool(
    state: AppState,
    ctx: RequestContext,
    *,
    tool: str,
    kind: str,
    conversation_id: str,
    agent_id: str | None,
    outcome: str,
    latency_ms: float | None,
    approval: str | None,
    approver: str | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """The leaf of one tool execution or refusal: never its arguments or result."""
    if state.audit is None:
        return
    leaf: dict[str, Any] = {
        "kind": "tool",
        "tenant": ctx.principal.tenant,
        "principal": ctx.principal.label,
        "endpoint": "conversations",
        "conversation": conversation_id,
        "agent": agent_id,
        "tool": tool,
        "tool_kind": kind,
        "connector": (extra or {}).get("connector"),
        "outcome": outcome,
        "latency_ms": None if latency_ms is None else round(latency_ms, 3),
        "approval": approval,
        "approver": approver,
        "request_id": ctx.request_id,
    }
    for key, value in (extra or {}).items():  # the binder's own fields (never payloads)
        leaf.setdefault(key, value)
    await state.audit.append(leaf)
