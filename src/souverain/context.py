"""What travels with one request through the pipeline's stages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .policy.engine import PolicyDecision
from .protocol.common import Usage, new_id


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. Tenants, teams and scopes arrive with the identity issue."""

    key_id: int
    name: str
    role: str
    tenant: str = "default"
    default_classification: str | None = None  # assumed for every request of this key
    max_classification: str | None = None  # the most sensitive level it may send at all


@dataclass(slots=True)
class RequestContext:
    endpoint: str
    principal: Principal
    request_id: str = field(default_factory=lambda: new_id("req"))
    started: float = field(default_factory=time.perf_counter)
    model: str | None = None
    deployment: str | None = None
    # Levels claimed for this request (header, metadata; data-loss prevention adds its
    # finding); the policy stage turns them into `classification`.
    claims: list[str | None] = field(default_factory=list)
    classification: str | None = None
    decision: PolicyDecision | None = None
    jurisdiction: str | None = None
    usage: Usage | None = None
    outcome: str = "ok"
    status: int = 200
    first_token_at: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
