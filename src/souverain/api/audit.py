"""`/admin/v1/audit/...`: query the log, get proofs and checkpoints (auditors and admins)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from ..audit.verify import latest_checkpoint, prove_consistency, prove_inclusion, verify_log
from ..context import RequestContext
from ..errors import InvalidRequest, NotFound
from ..identity.rbac import require, tenant_scope
from ..protocol.admin import ErasureRequest
from ..state import AppState
from ..store.tables import audit_leaves
from .http import JSON, app_state, parse_body, query_int, query_timestamp

MAX_PAGE = 1000


async def _reader(request: Request) -> tuple[AppState, RequestContext]:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "audit")
    require(ctx.principal, "audit.read")
    if state.audit is None:
        raise NotFound("the audit log is disabled on this server", code="audit_disabled")
    return state, ctx


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def leaves(request: Request) -> Response:
    """Leaves of the caller's tenant (the owner: any, `?tenant=`), filtered by time,
    principal, model, outcome."""
    state, ctx = await _reader(request)
    params = request.query_params
    tenant = tenant_scope(ctx.principal) or params.get("tenant")
    query = select(audit_leaves)
    if tenant is not None:
        query = query.where(audit_leaves.c.tenant == tenant)
    since, until = query_timestamp(request, "since"), query_timestamp(request, "until")
    if since is not None:
        query = query.where(audit_leaves.c.at >= since)
    if until is not None:
        query = query.where(audit_leaves.c.at < until)
    for name in ("principal", "model", "outcome", "kind"):
        if name in params:
            query = query.where(getattr(audit_leaves.c, name) == params[name])
    after = query_int(request, "after", 0)
    limit = min(query_int(request, "limit", 100), MAX_PAGE)
    query = query.where(audit_leaves.c.seq >= after).order_by(audit_leaves.c.seq).limit(limit)

    def read() -> list[dict[str, Any]]:
        with state.database.connect() as conn:
            return [
                {"index": r.seq, "leaf": json.loads(r.data), "leaf_hash": _b64(r.leaf_hash)}
                for r in conn.execute(query)
            ]

    return JSON({"data": await asyncio.to_thread(read)})


async def checkpoint(request: Request) -> Response:
    state, _ = await _reader(request)
    assert state.audit is not None
    row = await asyncio.to_thread(latest_checkpoint, state.database)
    return JSON(
        {
            "origin": state.audit.origin,
            "verifier_key": state.audit.signer.verifier_key(),
            "size": row.size if row else 0,
            "note": row.note if row else None,
        }
    )


async def inclusion(request: Request) -> Response:
    state, _ = await _reader(request)
    index, size = query_int(request, "index"), query_int(request, "size")
    if not index < size:
        raise InvalidRequest("index must be smaller than size", param="index")
    proof = await asyncio.to_thread(_proof_or_400, prove_inclusion, state, index, size)
    return JSON({"index": index, "tree_size": size, "proof": [_b64(h) for h in proof]})


async def consistency(request: Request) -> Response:
    state, _ = await _reader(request)
    old, new = query_int(request, "old_size"), query_int(request, "new_size")
    if not 0 < old <= new:
        raise InvalidRequest("need 0 < old_size <= new_size", param="old_size")
    proof = await asyncio.to_thread(_proof_or_400, prove_consistency, state, old, new)
    return JSON({"old_size": old, "new_size": new, "proof": [_b64(h) for h in proof]})


def _proof_or_400(prove: Any, state: AppState, first: int, second: int) -> list[bytes]:
    try:
        return list(prove(state.database, first, second))
    except ValueError as exc:
        raise InvalidRequest(f"no such proof: {exc}") from None


async def verify(request: Request) -> Response:
    state, _ = await _reader(request)
    assert state.audit is not None
    from ..audit.checkpoint import Verifier

    verifier = Verifier.from_vkey(state.audit.signer.verifier_key())
    report = await asyncio.to_thread(verify_log, state.database, verifier, state.audit.origin)
    return JSON(report.as_dict())


async def erase(request: Request) -> Response:
    """Crypto-shred one data subject's retained bodies (admins only)."""
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "admin")
    require(ctx.principal, "audit.erase")
    if state.audit is None:
        raise NotFound("the audit log is disabled on this server", code="audit_disabled")
    body = await parse_body(request, ErasureRequest)
    result = await state.audit.erase(body.subject, ctx.principal.label)
    return JSON(result)
