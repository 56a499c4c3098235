"""`souverain policy explain`: where a call would go, and why, without sending anything."""

from __future__ import annotations

from ..backends.base import Backend
from ..errors import SouverainError
from ..routing.models import ServedModel
from .engine import PolicyEngine


def explain(engine: PolicyEngine, model: ServedModel, classification: str, tenant: str) -> str:
    level = engine.classify(classification)
    rule_name, rule = engine.rule(level, tenant)
    decision = engine.decide(level, tenant, model.backends)
    lines = [
        f"model {model.id!r}, data classified {level!r}, tenant {tenant!r}",
        f"policy {engine.version}, rule {rule_name!r}: {rule.model_dump(exclude_defaults=True)}",
        "",
    ]
    for order, backend in enumerate(model.backends, start=1):
        verdict = "allowed" if backend.name in decision.allowed else (
            f"denied by {decision.denied[backend.name]}"
        )  # fmt: skip
        lines.append(f"  {order}. {backend.name:<28} {_facts(backend):<60} {verdict}")
    lines.append("")
    try:
        engine.enforce(decision, model.id)
    except SouverainError as exc:
        lines.append(f"result: refused with {exc.status_code}: {exc.message}")
    else:
        lines.append(f"result: routed to {decision.allowed[0]} (failover: {decision.allowed[1:]})")
    return "\n".join(lines)


def _facts(backend: Backend) -> str:
    f = backend.facts
    retention = "unknown" if f.retention_days is None else f"{f.retention_days}d"
    return (
        f"{backend.kind}, {f.operator}, {f.jurisdiction}, retention {retention}, "
        f"{'trains' if f.trains_on_data else 'no training'}"
    )
