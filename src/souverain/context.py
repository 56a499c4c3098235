"""What travels with one request through the pipeline's stages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .policy.engine import PolicyDecision
from .protocol.common import Usage, new_id

if TYPE_CHECKING:
    from .quotas.limits import Demand


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key or an identity provider's token, resolved.

    `subject` names it in usage records and the audit log ("key:12", "oidc:corp:alice").
    """

    key_id: int | None
    name: str
    role: str
    tenant: str = "default"
    subject: str = ""
    tenant_id: int | None = None
    user_id: int | None = None
    team: str | None = None  # the team its usage is billed to
    team_id: int | None = None
    teams: tuple[str, ...] = ()  # every team it belongs to (library sharing, quotas)
    models: frozenset[str] | None = None  # scopes; None: every model
    endpoints: frozenset[str] | None = None  # scopes; None: every endpoint kind
    default_classification: str | None = None  # assumed for every request of this key
    max_classification: str | None = None  # the most sensitive level it may send at all
    quotas: tuple[Demand, ...] = ()  # the limits of its key, user, team and tenant
    expires_at: float | None = None  # epoch seconds; a cached principal expires too

    @property
    def label(self) -> str:
        return self.subject or f"key:{self.key_id}"


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
