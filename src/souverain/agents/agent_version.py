"""One version of an agent as the runtime reads it, and as Mistral's `Agent` object.

A version is stored as one JSON `body` (agents/registry.py); `version_of` reads it back
and `agent_json` renders it for the API. Kept apart from the registry so that the shape
the conversation runtime codes against does not depend on how it is stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.agents import iso

# The fields a version keeps (its `body`), in the order Mistral's Agent lists them.
FIELDS = (
    "model",
    "name",
    "instructions",
    "tools",
    "completion_args",
    "guardrails",
    "description",
    "handoffs",
    "metadata",
    "version_message",
    "deployment_chat",
    "limits",
)


@dataclass(frozen=True, slots=True)
class AgentVersion:
    """One version of an agent, as the runtime uses it."""

    id: str
    version: int
    name: str
    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    completion_args: dict[str, Any]
    handoffs: list[str]
    description: str | None
    guardrails: list[dict[str, Any]] | None
    metadata: dict[str, Any]
    limits: dict[str, int | float]  # max_steps, max_tool_calls, max_seconds (only those set)
    # For rendering the Agent object (not needed to run it).
    version_message: str | None = None
    deployment_chat: bool = False
    created_at: float = 0.0  # the agent's creation
    updated_at: float = 0.0  # this version's creation
    tenant: str = field(default="", repr=False)

    def body(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def version_of(
    agent_id: str, tenant: str, created: float, version: int, raw: str, at: float
) -> AgentVersion:
    body: dict[str, Any] = json.loads(raw)
    return AgentVersion(
        id=agent_id,
        version=int(version),
        name=body["name"],
        model=body["model"],
        instructions=body.get("instructions"),
        tools=body.get("tools") or [],
        completion_args=body.get("completion_args") or {},
        handoffs=body.get("handoffs") or [],
        description=body.get("description"),
        guardrails=body.get("guardrails"),
        metadata=body.get("metadata") or {},
        limits=body.get("limits") or {},
        version_message=body.get("version_message"),
        deployment_chat=bool(body.get("deployment_chat")),
        created_at=float(created),
        updated_at=float(at),
        tenant=tenant,
    )


def dump_body(body: dict[str, Any]) -> str:
    return json.dumps({name: body.get(name) for name in FIELDS}, ensure_ascii=False)


def agent_json(agent: AgentVersion, versions: Sequence[int]) -> dict[str, Any]:
    """Mistral's `Agent` object, plus Souverain's `limits`."""
    return {
        "object": "agent",
        "id": agent.id,
        "name": agent.name,
        "model": agent.model,
        "version": agent.version,
        "versions": list(versions),
        "instructions": agent.instructions,
        "tools": agent.tools,
        "completion_args": agent.completion_args,
        "guardrails": agent.guardrails,
        "description": agent.description,
        "handoffs": agent.handoffs or None,
        "metadata": agent.metadata or None,
        "version_message": agent.version_message,
        "deployment_chat": agent.deployment_chat,
        "source": "api",
        "created_at": iso(agent.created_at),
        "updated_at": iso(agent.updated_at),
        "limits": agent.limits,
    }
