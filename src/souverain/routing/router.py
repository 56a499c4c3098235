"""The routing stage: the ordered deployments a call may go to."""

from __future__ import annotations

from ..backends.base import Backend
from ..context import RequestContext
from ..errors import EngineUnavailable
from ..policy.engine import PolicyEngine
from .models import ServedModel


class Router:
    """Policy first, then priority order, skipping deployments that are not ready.

    Circuit breakers and the kill switch will narrow this list further; the dispatcher
    only ever sends to what `candidates` returns.
    """

    def __init__(self, policy: PolicyEngine) -> None:
        self.policy = policy

    def candidates(self, ctx: RequestContext, model: ServedModel) -> list[Backend]:
        assert ctx.classification is not None, "the pipeline classifies before routing"
        decision = self.policy.decide(ctx.classification, ctx.principal.tenant, model.backends)
        ctx.decision = decision
        self.policy.enforce(decision, model.id)
        allowed = set(decision.allowed)
        ready = [b for b in model.backends if b.name in allowed and b.ready()]
        if not ready:
            raise EngineUnavailable(
                f"no allowed deployment of model {model.id!r} is available right now",
                retry_after=5,
            )
        return ready
