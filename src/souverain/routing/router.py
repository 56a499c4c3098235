"""The routing stage: the ordered deployments a call may go to.

    allowed by policy  →  not cut by the kill switch  →  ready  →  breaker closed
                       →  ordered by the model's strategy

The dispatcher only ever sends to what `candidates` returns, and reports back how each
attempt went (`health`), which drives the circuit breakers and the strategies.
"""

from __future__ import annotations

from ..backends.base import Backend
from ..config import RoutingConfig
from ..context import RequestContext
from ..errors import EngineUnavailable
from ..policy.engine import PolicyEngine
from .health import DeploymentHealth
from .killswitch import KillSwitch
from .models import ServedModel


class Router:
    def __init__(
        self,
        policy: PolicyEngine,
        killswitch: KillSwitch,
        config: RoutingConfig | None = None,
    ) -> None:
        self.policy = policy
        self.killswitch = killswitch
        self.config = config or RoutingConfig()
        self._health: dict[Backend, DeploymentHealth] = {}

    def health(self, backend: Backend) -> DeploymentHealth:
        health = self._health.get(backend)
        if health is None:
            health = DeploymentHealth(self.config.failure_threshold, self.config.open_seconds)
            self._health[backend] = health
        return health

    def candidates(self, ctx: RequestContext, model: ServedModel) -> list[Backend]:
        assert ctx.classification is not None, "the pipeline classifies before routing"
        decision = self.policy.decide(ctx.classification, ctx.principal.tenant, model.backends)
        ctx.decision = decision
        self.policy.enforce(decision, model.id)
        allowed = [b for b in model.backends if b.name in decision.allowed]
        live = [b for b in allowed if self.killswitch.blocking(b) is None]
        if not live:
            raise EngineUnavailable(
                f"every deployment of model {model.id!r} allowed for this data is cut off",
                retry_after=30,
            )
        healthy = [b for b in live if b.ready() and self.health(b).allows()]
        if not healthy:
            raise EngineUnavailable(
                f"no deployment of model {model.id!r} is healthy right now", retry_after=5
            )
        return self._order(model.config.strategy, healthy)

    def _order(self, strategy: str, backends: list[Backend]) -> list[Backend]:
        if strategy == "least-latency":
            return sorted(backends, key=lambda b: self.health(b).latency_s or 0.0)
        if strategy == "least-busy":
            return sorted(backends, key=lambda b: self.health(b).in_flight)
        return backends  # priority: as configured (sorted() keeps ties in that order too)
