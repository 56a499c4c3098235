"""Router pieces without servers: breaker states, strategies, kill-switch matching."""

from __future__ import annotations

import pytest

from souverain.config import DeploymentConfig, ModelConfig, PolicyConfig, RoutingConfig
from souverain.context import Principal, RequestContext
from souverain.errors import EngineUnavailable
from souverain.plugins import load_engine_registry
from souverain.policy.engine import PolicyEngine
from souverain.routing.health import BreakerState, DeploymentHealth
from souverain.routing.killswitch import Cut, KillSwitch
from souverain.routing.models import ServedModel
from souverain.routing.router import Router
from souverain.store.database import open_database, upgrade


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_then_probes_then_closes() -> None:
    clock = Clock()
    health = DeploymentHealth(failure_threshold=2, open_seconds=5, clock=clock)
    for _ in range(2):
        assert health.allows()
        health.started()
        health.failed()
    assert health.state is BreakerState.OPEN and not health.allows()
    clock.now += 5
    assert health.allows()  # half-open: one probe
    health.started()
    assert not health.allows()  # only one at a time
    health.failed()
    assert health.state is BreakerState.OPEN  # the probe failed: open again
    clock.now += 5
    assert health.allows()
    health.started()
    health.succeeded(0.01)
    assert health.state is BreakerState.CLOSED and health.allows()
    assert health.in_flight == 0


def make_model(strategy: str) -> ServedModel:
    model = ModelConfig(
        id="m",
        strategy=strategy,  # type: ignore[arg-type]
        deployments=tuple(
            DeploymentConfig(
                name=n, engine="openai", base_url=f"http://{n}/v1", jurisdiction=j, operator=o
            )
            for n, j, o in (
                ("a", "FR", "OVHcloud"),
                ("b", "DE", "Scaleway"),
                ("c", "US", "Hyperscaler"),
            )
        ),
    )
    registry = load_engine_registry(include_installed=False)
    return ServedModel(model, [registry.build(model, d, "t") for d in model.deployments])


def route(router: Router, model: ServedModel) -> list[str]:
    ctx = RequestContext(
        endpoint="chat", principal=Principal(1, "t", "user"), classification="public"
    )
    return [backend.name for backend in router.candidates(ctx, model)]


@pytest.fixture
def killswitch() -> KillSwitch:
    database = open_database("sqlite://")
    upgrade(database)
    return KillSwitch(database)


def test_strategies_order_the_allowed_deployments(killswitch: KillSwitch) -> None:
    router = Router(PolicyEngine(PolicyConfig()), killswitch, RoutingConfig())
    priority, fastest, idlest = (
        make_model("priority"),
        make_model("least-latency"),
        make_model("least-busy"),
    )
    assert route(router, priority) == ["a", "b", "c"]
    for backend, latency in zip(fastest.backends, (0.30, 0.05, 0.10), strict=True):
        health = router.health(backend)
        health.started()
        health.succeeded(latency)
    assert route(router, fastest) == ["b", "c", "a"]
    for backend, busy in zip(idlest.backends, (3, 0, 1), strict=True):
        router.health(backend).in_flight = busy
    assert route(router, idlest) == ["b", "c", "a"]


def test_cuts_match_deployment_operator_or_jurisdiction(killswitch: KillSwitch) -> None:
    router = Router(PolicyEngine(PolicyConfig()), killswitch, RoutingConfig())
    model = make_model("priority")
    for cut, expected in (
        (Cut("deployment", "a", "t", 0), ["b", "c"]),
        (Cut("operator", "scaleway", "t", 0), ["a", "c"]),
        (Cut("jurisdiction", "us", "t", 0), ["a", "b"]),
    ):
        killswitch.cuts = [cut]
        assert route(router, model) == expected
    killswitch.cuts = [Cut("jurisdiction", j, "t", 0) for j in ("FR", "DE", "US")]
    with pytest.raises(EngineUnavailable):
        route(router, model)
