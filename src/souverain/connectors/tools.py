"""`connector_tools`: an agent's connector entry turned into tools the runtime can run.

The entry is Mistral's `CustomConnector`::

    {"type": "connector", "connector_id": "<name or id>",
     "tool_configuration": {"include": [...], "exclude": [...],
                            "requires_confirmation": [...]}}

`include` is an allow-list (absent: every tool the server lists), `exclude` removes from
it, and a tool in `requires_confirmation` pauses the turn for a person's approval. Tool
names in the lists are the server's own. The connector is looked up in the caller's
tenant: another tenant's is not found (404). Credentials live on the connector, never in
an agent (an `authorization` in the entry is refused: an agent's tools are returned to
everyone who may read the agent).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

from mcp_types import Tool

from ..agents.tools import BoundTool, ToolInvocation, ToolOutcome, ToolSpec
from ..errors import InvalidRequest, NotFound, SouverainError
from . import client
from .service import connector_service
from .store import Connector

if TYPE_CHECKING:
    from ..context import Principal
    from ..state import AppState

_LISTS = ("include", "exclude", "requires_confirmation")
_FUNCTION_NAME = re.compile(r"[^A-Za-z0-9_-]")


async def connector_tools(
    state: AppState, principal: Principal, entry: dict[str, Any]
) -> list[BoundTool]:
    ref, lists = _read_entry(entry)
    service = connector_service(state)
    connector = await asyncio.to_thread(service.store.get, principal.tenant, ref)
    if connector is None:
        raise NotFound(f"no such connector {ref[:64]!r}", param="tools")
    tools = await service.tools(connector)
    names = {tool.name for tool in tools}
    for key in _LISTS:
        unknown = sorted(set(lists[key] or ()) - names)
        if unknown:
            raise InvalidRequest(
                f"connector {connector.name!r} has no tool {', '.join(map(repr, unknown[:5]))} "
                f"(tool_configuration.{key})",
                param="tools",
            )
    include, exclude = lists["include"], set(lists["exclude"] or ())
    confirm = set(lists["requires_confirmation"] or ())
    chosen = [
        tool
        for tool in tools
        if (include is None or tool.name in include) and tool.name not in exclude
    ]
    taken: set[str] = set()
    return [
        _bind(connector, tool, tool.name in confirm, _function_name(tool, taken)) for tool in chosen
    ]


def _function_name(tool: Tool, taken: set[str]) -> str:
    """The name the model calls it by: the server's, with `_` for characters a function
    name cannot hold, made unique if two names meet after that."""
    base = _FUNCTION_NAME.sub("_", tool.name)[:60] or "tool"
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}_{number}"
    taken.add(name)
    return name


def _read_entry(entry: dict[str, Any]) -> tuple[str, dict[str, list[str] | None]]:
    ref = entry.get("connector_id")
    if not isinstance(ref, str) or not 0 < len(ref) <= 64:
        raise InvalidRequest("a connector tool names its connector_id", param="tools")
    if entry.get("authorization") is not None:
        raise InvalidRequest(
            "credentials belong to the connector (souverain connectors add --header), "
            "not to the agent: remove authorization",
            param="tools",
        )
    config = entry.get("tool_configuration") or {}
    if not isinstance(config, dict):
        raise InvalidRequest("tool_configuration must be an object", param="tools")
    unknown = sorted(set(config) - set(_LISTS))
    if unknown:
        raise InvalidRequest(f"unknown tool_configuration field {unknown[0][:40]!r}", param="tools")
    lists: dict[str, list[str] | None] = {}
    for key in _LISTS:
        value = config.get(key)
        if value is not None and not (
            isinstance(value, list)
            and len(value) <= 500
            and all(isinstance(item, str) and len(item) <= 200 for item in value)
        ):
            raise InvalidRequest(
                f"tool_configuration.{key} must be a list of tool names", param="tools"
            )
        lists[key] = value
    return ref, lists


def _bind(connector: Connector, tool: Tool, requires_approval: bool, name: str) -> BoundTool:
    spec = ToolSpec(
        name=name,
        description=tool.description,
        parameters=tool.input_schema or {"type": "object", "properties": {}},
        requires_approval=requires_approval,
    )

    async def run(invocation: ToolInvocation) -> ToolOutcome:
        started = time.perf_counter()
        audit: dict[str, Any] = {"connector": connector.name, "connector_id": connector.id}
        audit["tool"] = tool.name
        try:
            result = await client.call_tool(connector, tool.name, invocation.arguments)
        except SouverainError as exc:
            audit |= {"latency_ms": _ms(started), "outcome": exc.code or "error"}
            return ToolOutcome(output=exc.message, ok=False, audit=audit)
        text = client.result_text(result)
        audit |= {"latency_ms": _ms(started), "outcome": "error" if result.is_error else "ok"}
        if result.is_error:
            return ToolOutcome(output=f"the tool failed: {text}", ok=False, audit=audit)
        return ToolOutcome(output=text, audit=audit)

    return BoundTool(spec=spec, kind="connector", run=run)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
