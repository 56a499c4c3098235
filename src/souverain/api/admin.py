"""`/admin/v1/providers`: the kill switch (platform owner) and the deployments' health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..audit.leaves import admin_leaf
from ..context import RequestContext
from ..identity.rbac import Permission, require
from ..protocol.admin import ProviderTarget
from ..state import AppState
from .http import JSON, app_state, parse_body


async def _admin(request: Request, permission: Permission) -> tuple[AppState, RequestContext]:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "admin")
    require(ctx.principal, permission)
    return state, ctx


async def list_providers(request: Request) -> Response:
    state, _ = await _admin(request, "providers.read")
    router = state.pipeline.router
    deployments = []
    for model in state.catalog.models:
        for backend in model.backends:
            health = router.health(backend)
            cut = router.killswitch.blocking(backend)
            deployments.append(
                {
                    "model": model.id,
                    "deployment": backend.name,
                    "engine": backend.kind,
                    "operator": backend.facts.operator,
                    "jurisdiction": backend.facts.jurisdiction,
                    "cut": cut.as_dict() if cut else None,
                    "breaker": health.state.value,
                    "in_flight": health.in_flight,
                    "latency_ms": None if health.latency_s is None else health.latency_s * 1000,
                    "failures": health.failures_total,
                }
            )
    cuts = [cut.as_dict() for cut in router.killswitch.cuts]
    return JSON({"cuts": cuts, "deployments": deployments})


async def cut_provider(request: Request) -> Response:
    state, actor, target = await _logged_action(request, "provider.cut")
    cut = await state.pipeline.router.killswitch.cut(target.kind, target.value, actor)
    return JSON({"cut": cut.as_dict()})


async def restore_provider(request: Request) -> Response:
    state, actor, target = await _logged_action(request, "provider.restore")
    existed = await state.pipeline.router.killswitch.restore(target.kind, target.value, actor)
    return JSON({"restored": existed, "kind": target.kind, "value": target.value})


async def _logged_action(request: Request, action: str) -> tuple[AppState, str, ProviderTarget]:
    """Admin check, body, and the audit leaf, which is written before the action is taken:
    an action that cannot be recorded is not carried out."""
    state, ctx = await _admin(request, "providers.manage")
    target = await parse_body(request, ProviderTarget)
    if state.audit is not None:
        await state.audit.append(admin_leaf(ctx, action, {target.kind: target.value}))
    return state, f"{ctx.principal.label} ({ctx.principal.name})", target
