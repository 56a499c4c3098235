"""What a leaf says. Never the prompt or the answer: who, what, where, how it ended."""

from __future__ import annotations

from typing import Any

from ..context import RequestContext


def request_leaf(ctx: RequestContext) -> dict[str, Any]:
    usage = ctx.usage
    decision = ctx.decision
    return {
        "kind": "request",
        "tenant": ctx.principal.tenant,
        "principal": ctx.principal.label,  # pseudonymous: no name, no secret
        "endpoint": ctx.endpoint,
        "model": ctx.model,
        "deployment": ctx.deployment,
        "jurisdiction": ctx.jurisdiction,
        "classification": ctx.classification,
        "policy": decision.policy_version if decision else None,
        "policy_denied": dict(decision.denied) if decision and not decision.allowed else None,
        "dlp": ctx.notes.get("dlp"),  # categories and counts only (data-loss prevention)
        "outcome": ctx.outcome,
        "status": ctx.status,
        "tokens": {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
        if usage
        else None,
        "latency_ms": round(ctx.elapsed() * 1000, 3),
        "request_id": ctx.request_id,
    }


def admin_leaf(ctx: RequestContext, action: str, target: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "admin",
        "tenant": ctx.principal.tenant,
        "principal": ctx.principal.label,
        "action": action,
        "target": target,
        "request_id": ctx.request_id,
    }


def read_leaf(ctx: RequestContext, action: str, target: dict[str, Any]) -> dict[str, Any]:
    """A read of stored content (a document's text): who read what, never the content."""
    return {**admin_leaf(ctx, action, target), "kind": "read", "outcome": "ok"}
