"""`/admin/v1/audit/...`: query the log, get proofs and checkpoints (auditors and admins).

The log is one Merkle tree for the whole gateway; what a caller sees of it depends on
its scope (docs/audit.md, "What a tenant sees"):

- the platform owner sees everything;
- a tenant's admin or auditor reads its own tenant's leaves only, each checked against
  its hash and hashed data on the way out (a leaf whose columns were rewritten is never
  served); gets inclusion proofs only for its own leaves, and inclusion and consistency
  proofs only against sizes of signed checkpoints (the size it learns is the one the
  signed checkpoint states, nothing finer); and hears from `verify` whether the whole
  log verifies, without where another tenant's leaf failed.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from sqlalchemy import Engine, select
from starlette.requests import Request
from starlette.responses import Response

from ..agents.conversation_store import ConversationStore
from ..agents.store import ResponseStore
from ..audit.checkpoint import Verifier
from ..audit.verify import (
    LeafTampered,
    checked_leaf,
    latest_checkpoint,
    prove_consistency,
    prove_inclusion,
    verify_log,
)
from ..context import RequestContext
from ..errors import AuditUnavailable, InvalidRequest, NotFound
from ..files.store import FileStore
from ..identity.rbac import require, tenant_scope
from ..protocol.admin import ErasureRequest
from ..state import AppState
from ..store.tables import audit_checkpoints, audit_leaves
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
                {"index": r.seq, "leaf": _served(r), "leaf_hash": _b64(r.leaf_hash)}
                for r in conn.execute(query)
            ]

    return JSON({"data": await asyncio.to_thread(read)})


def _served(row: Any) -> dict[str, Any]:
    """The leaf as hashed, once its columns (which the query filtered on) agree with it:
    a row moved to another tenant by its column alone is refused, never handed over."""
    try:
        return checked_leaf(row)
    except LeafTampered as exc:
        raise AuditUnavailable(
            f"the audit log does not verify at leaf {exc.index}: {exc.problem}; no leaf is "
            "served past it until an operator has looked (souverain audit verify)"
        ) from None


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
    state, ctx = await _reader(request)
    index, size = query_int(request, "index"), query_int(request, "size")
    if not index < size:
        raise InvalidRequest("index must be smaller than size", param="index")
    scope = tenant_scope(ctx.principal)
    if scope is not None:
        await asyncio.to_thread(_own_leaf, state.database, index, scope)
        await asyncio.to_thread(_signed_sizes, state.database, size)
    proof = await asyncio.to_thread(_proof_or_400, prove_inclusion, state, index, size)
    return JSON({"index": index, "tree_size": size, "proof": [_b64(h) for h in proof]})


async def consistency(request: Request) -> Response:
    state, ctx = await _reader(request)
    old, new = query_int(request, "old_size"), query_int(request, "new_size")
    if not 0 < old <= new:
        raise InvalidRequest("need 0 < old_size <= new_size", param="old_size")
    if tenant_scope(ctx.principal) is not None:
        await asyncio.to_thread(_signed_sizes, state.database, old, new)
    proof = await asyncio.to_thread(_proof_or_400, prove_consistency, state, old, new)
    return JSON({"old_size": old, "new_size": new, "proof": [_b64(h) for h in proof]})


def _own_leaf(database: Engine, index: int, tenant: str) -> None:
    """404 unless leaf `index` is the tenant's, by its hashed data (a leaf of another
    tenant and no leaf at all answer alike)."""
    with database.connect() as conn:
        row = conn.execute(select(audit_leaves).where(audit_leaves.c.seq == index)).first()
    if row is None or row.tenant != tenant or _served(row).get("tenant") != tenant:
        raise NotFound(f"no leaf {index} in your tenant's log", param="index")


def _signed_sizes(database: Engine, *sizes: int) -> None:
    """400 unless every size is that of a signed checkpoint: a tenant proves against the
    trees the log signed, and learns no size the checkpoints do not state."""
    with database.connect() as conn:
        signed = set(
            conn.scalars(
                select(audit_checkpoints.c.size).where(audit_checkpoints.c.size.in_(sizes))
            )
        )
    for size in sizes:
        if size not in signed:
            raise InvalidRequest(
                f"{size} is not the size of a signed checkpoint; prove against one "
                "(GET /admin/v1/audit/checkpoint)",
                param="size",
                code="not_a_checkpoint",
            )


def _proof_or_400(prove: Any, state: AppState, first: int, second: int) -> list[bytes]:
    try:
        return list(prove(state.database, first, second))
    except ValueError as exc:
        raise InvalidRequest(f"no such proof: {exc}") from None


async def verify(request: Request) -> Response:
    state, ctx = await _reader(request)
    assert state.audit is not None
    verifier = Verifier.from_vkey(state.audit.signer.verifier_key())
    report = await asyncio.to_thread(verify_log, state.database, verifier, state.audit.origin)
    if tenant_scope(ctx.principal) is None:
        return JSON(report.as_dict())
    # A tenant hears whether the log it relies on verifies, and up to which signed
    # size; where it failed may be another tenant's leaf: the operator has the details.
    row = await asyncio.to_thread(latest_checkpoint, state.database)
    return JSON(
        {
            "ok": report.ok,
            "size": row.size if row else 0,
            "checkpoints": report.checkpoints,
            "first_bad_index": None,
            "problem": None
            if report.ok
            else "the log does not verify; the platform operator can see where",
        }
    )


async def erase(request: Request) -> Response:
    """Crypto-shred one data subject's retained bodies (admins only): a tenant's admin
    in its own tenant, the platform owner in every tenant. A tombstone leaf goes into
    each tenant affected."""
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "admin")
    require(ctx.principal, "audit.erase")
    if state.audit is None:
        raise NotFound("the audit log is disabled on this server", code="audit_disabled")
    body = await parse_body(request, ErasureRequest)
    principal = ctx.principal
    result = await state.audit.erase(
        body.subject, principal.label, tenant=tenant_scope(principal), home=principal.tenant
    )
    # Stored responses (/v1/responses, store=true) hold the subject's data in clear: gone too.
    stored = ResponseStore(state.database)
    deleted = await asyncio.to_thread(stored.erase_subject, body.subject, tenant_scope(principal))
    # Conversations (/v1/conversations) hold it in clear as well (issue 14).
    talks = ConversationStore(state.database)
    gone = await asyncio.to_thread(talks.erase_subject, body.subject, tenant_scope(principal))
    # Files (/v1/files) uploaded by the subject: their bytes are theirs (issue 15).
    files = FileStore(state.database, state.settings.files)
    removed = await asyncio.to_thread(files.erase_subject, body.subject, tenant_scope(principal))
    return JSON({**result, "stored_responses_deleted": deleted, "conversations_deleted": gone,
                 "files_deleted": removed})  # fmt: skip
