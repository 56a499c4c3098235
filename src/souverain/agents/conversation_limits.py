"""How much one conversation turn may do: model steps, tool calls and wall time.

An agent loop that calls tools can go on for as long as the model keeps asking: a limit
ends it. The tenant's defaults (config `agents:`) are a ceiling; an agent's own `limits`
may only lower them. Once the turn has made its `max_tool_calls`, the next model step is
offered no tool and answers (conversation_loop.py); otherwise a reached limit ends the
turn with 400 `agent_limit_reached` naming the limit (not 429: an SDK would retry the
same turn and hit it again); the entries produced until then are kept in the conversation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidRequest


class TenantAgentLimits(BaseModel):
    """One tenant's ceilings; unset values fall back to the global defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int | None = Field(default=None, ge=1, le=1000)
    max_tool_calls: int | None = Field(default=None, ge=0, le=10000)
    max_seconds: float | None = Field(default=None, gt=0, le=86400)


class AgentsConfig(BaseModel):
    """`agents:` in the configuration: per-turn limits of the agent runtime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int = Field(default=8, ge=1, le=1000, description="Model steps per turn.")
    max_tool_calls: int = Field(
        default=16, ge=0, le=10000, description="Server-side tool calls per turn."
    )
    max_seconds: float = Field(default=120.0, gt=0, le=86400, description="Wall time per turn.")
    tenants: dict[str, TenantAgentLimits] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TurnLimits:
    max_steps: int
    max_tool_calls: int
    max_seconds: float

    @classmethod
    def of(
        cls, config: AgentsConfig, tenant: str, agent: Mapping[str, int | float] | None = None
    ) -> TurnLimits:
        """The tenant's ceilings, lowered by the agent's own limits where it sets them."""
        own = config.tenants.get(tenant) or TenantAgentLimits()
        steps = own.max_steps or config.max_steps
        calls = own.max_tool_calls if own.max_tool_calls is not None else config.max_tool_calls
        seconds = own.max_seconds or config.max_seconds
        agent = agent or {}
        if isinstance(agent.get("max_steps"), int | float):
            steps = min(steps, max(1, int(agent["max_steps"])))
        if isinstance(agent.get("max_tool_calls"), int | float):
            calls = min(calls, max(0, int(agent["max_tool_calls"])))
        if isinstance(agent.get("max_seconds"), int | float) and agent["max_seconds"] > 0:
            seconds = min(seconds, float(agent["max_seconds"]))
        return cls(steps, calls, seconds)


class LimitReached(InvalidRequest):
    """A turn reached one of its limits (400, code `agent_limit_reached`)."""

    def __init__(self, name: str, value: int | float) -> None:
        super().__init__(
            f"this turn reached its limit {name}={value:g}; the entries produced so far are "
            "kept in the conversation: append to go on",
            param=name,
            code="agent_limit_reached",
        )
