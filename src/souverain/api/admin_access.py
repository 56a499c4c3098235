"""What every admin route does first: authenticate, check the role, find the tenant scope,
and write the audit leaf of a change before making it."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from ..audit.leaves import admin_leaf
from ..context import Principal, RequestContext
from ..errors import NotFound, PermissionDenied
from ..identity.rbac import Permission, require, tenant_scope
from ..state import AppState
from .http import MAX_QUERY_INT, app_state


class AdminCall:
    """One admin request: who calls, in which tenant scope, with what permission."""

    def __init__(self, state: AppState, ctx: RequestContext, scope: int | None) -> None:
        self.state = state
        self.ctx = ctx
        self.scope = scope  # the caller's tenant id; None for the platform owner

    @property
    def principal(self) -> Principal:
        return self.ctx.principal

    async def record(self, action: str, target: dict[str, Any]) -> None:
        """The admin leaf, durable before the action: what cannot be logged is not done."""
        if self.state.audit is not None:
            await self.state.audit.append(admin_leaf(self.ctx, action, target))

    async def tenant_for(self, requested: str | None) -> int:
        """The tenant a new object goes in: the caller's own, or any for the owner."""
        if requested is not None and self.scope is None:
            return await asyncio.to_thread(self.state.directory.tenant_id, requested)
        if requested is not None and requested != self.principal.tenant:
            raise PermissionDenied("only the platform owner acts in other tenants")
        return await asyncio.to_thread(self.state.directory.tenant_id, self.principal.tenant)


async def admin_call(request: Request, permission: Permission) -> AdminCall:
    state = app_state(request)
    ctx = await state.pipeline.open(request.headers, "admin")
    require(ctx.principal, permission)
    scope_name = tenant_scope(ctx.principal)
    scope = None
    if scope_name is not None:
        scope = await asyncio.to_thread(state.directory.tenant_id, scope_name)
    return AdminCall(state, ctx, scope)


def path_id(request: Request, name: str) -> int:
    """The numeric id in the path; 404 for anything no id column can hold (ASCII digits
    only: `int()` fails on some that `str.isdigit` accepts, like `²`; and 32 bits, the
    width of PostgreSQL's integer columns)."""
    raw = request.path_params[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) > MAX_QUERY_INT:
        raise NotFound(f"no such {name.removesuffix('_id')} {raw[:40]!r}")
    return int(raw)
