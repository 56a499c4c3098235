"""`/admin/v1/tenants`, `/teams`, `/users`, `/roles`: the directory, behind RBAC.

Objects of another tenant answer 404, exactly like objects that do not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NotFound, PermissionDenied
from ..identity.rbac import GRANTS, ROLES, may_grant
from ..library.ownership import library_choice
from ..protocol.admin import (
    LimitsUpdate,
    MemberAdd,
    TeamCreate,
    TenantCreate,
    UserCreate,
    UserUpdate,
)
from ..state import AppState
from .admin_access import admin_call, path_id
from .http import JSON, parse_body


def _list(data: Sequence[Mapping[str, object]]) -> JSON:
    return JSON({"object": "list", "data": data})


# ---- tenants (the platform owner) ----------------------------------------------------------


async def create_tenant(request: Request) -> Response:
    call = await admin_call(request, "tenants.manage")
    body = await parse_body(request, TenantCreate)
    await call.record("tenant.create", {"name": body.name})
    tenant = await asyncio.to_thread(
        call.state.directory.create_tenant, body.name, body.limits.values()
    )
    return JSON(tenant, status_code=201)


async def list_tenants(request: Request) -> Response:
    call = await admin_call(request, "directory.read")
    return _list(await asyncio.to_thread(call.state.directory.tenants, call.scope))


async def get_tenant(request: Request) -> Response:
    call = await admin_call(request, "directory.read")
    tenant_id = path_id(request, "tenant_id")
    return JSON(await asyncio.to_thread(call.state.directory.tenant, tenant_id, call.scope))


async def update_tenant(request: Request) -> Response:
    call = await admin_call(request, "tenants.manage")
    tenant_id = path_id(request, "tenant_id")
    body = await parse_body(request, LimitsUpdate)
    await call.record("tenant.update", {"id": tenant_id, "limits": body.limits.values()})
    directory = call.state.directory
    tenant = await asyncio.to_thread(directory.update_tenant, tenant_id, None, body.limits.values())
    await call.state.keys.invalidate()
    return JSON(tenant)


async def delete_tenant(request: Request) -> Response:
    """`?libraries=delete` deletes the tenant's libraries with it; without it, a tenant
    that has libraries is not deleted (409)."""
    call = await admin_call(request, "tenants.manage")
    tenant_id = path_id(request, "tenant_id")
    choice = library_choice(request.query_params.get("libraries"))
    await asyncio.to_thread(call.state.directory.tenant, tenant_id, None)  # 404 first
    await call.record("tenant.delete", {"id": tenant_id, "libraries": choice})
    deleted = await asyncio.to_thread(call.state.directory.delete_tenant, tenant_id, choice)
    _forget_libraries(call.state, deleted)
    return JSON(
        {"object": "tenant", "id": tenant_id, "deleted": True, "libraries_deleted": deleted}
    )


# ---- teams ---------------------------------------------------------------------------------


async def create_team(request: Request) -> Response:
    call = await admin_call(request, "directory.manage")
    body = await parse_body(request, TeamCreate)
    tenant_id = await call.tenant_for(body.tenant)
    await call.record("team.create", {"tenant_id": tenant_id, "name": body.name})
    team = await asyncio.to_thread(
        call.state.directory.create_team, tenant_id, body.name, body.limits.values()
    )
    return JSON(team, status_code=201)


async def list_teams(request: Request) -> Response:
    call = await admin_call(request, "directory.read")
    return _list(await asyncio.to_thread(call.state.directory.teams, call.scope))


async def get_team(request: Request) -> Response:
    call = await admin_call(request, "directory.read")
    team_id = path_id(request, "team_id")
    return JSON(await asyncio.to_thread(call.state.directory.team, team_id, call.scope))


async def update_team(request: Request) -> Response:
    call = await admin_call(request, "directory.manage")
    team_id = path_id(request, "team_id")
    body = await parse_body(request, LimitsUpdate)
    await asyncio.to_thread(call.state.directory.team, team_id, call.scope)
    await call.record("team.update", {"id": team_id, "limits": body.limits.values()})
    team = await asyncio.to_thread(
        call.state.directory.update_team, team_id, call.scope, body.limits.values()
    )
    await call.state.keys.invalidate()
    return JSON(team)


async def delete_team(request: Request) -> Response:
    call = await admin_call(request, "directory.manage")
    team_id = path_id(request, "team_id")
    await asyncio.to_thread(call.state.directory.team, team_id, call.scope)
    await call.record("team.delete", {"id": team_id})
    await asyncio.to_thread(call.state.directory.delete_team, team_id, call.scope)
    await call.state.keys.invalidate()
    return JSON({"object": "team", "id": team_id, "deleted": True})


async def add_member(request: Request) -> Response:
    call = await admin_call(request, "directory.manage")
    team_id = path_id(request, "team_id")
    body = await parse_body(request, MemberAdd)
    await asyncio.to_thread(call.state.directory.team, team_id, call.scope)
    await asyncio.to_thread(call.state.directory.user, body.user_id, call.scope)
    await call.record("team.add_member", {"id": team_id, "user_id": body.user_id})
    await asyncio.to_thread(call.state.directory.add_member, team_id, body.user_id, call.scope)
    await call.state.keys.invalidate()
    return JSON(await asyncio.to_thread(call.state.directory.team, team_id, call.scope))


async def remove_member(request: Request) -> Response:
    call = await admin_call(request, "directory.manage")
    team_id, user_id = path_id(request, "team_id"), path_id(request, "user_id")
    team = await asyncio.to_thread(call.state.directory.team, team_id, call.scope)
    if user_id not in team["members"]:  # refused before its leaf: nothing is removed
        raise NotFound(f"user {user_id} is not a member of team {team_id}")
    await call.record("team.remove_member", {"id": team_id, "user_id": user_id})
    await asyncio.to_thread(call.state.directory.remove_member, team_id, user_id, call.scope)
    await call.state.keys.invalidate()
    return JSON(await asyncio.to_thread(call.state.directory.team, team_id, call.scope))


# ---- users and service accounts ------------------------------------------------------------


async def create_user(request: Request) -> Response:
    call = await admin_call(request, "directory.manage")
    body = await parse_body(request, UserCreate)
    if not may_grant(call.principal, body.role):
        raise PermissionDenied(f"the {call.principal.role} role may not grant {body.role}")
    tenant_id = await call.tenant_for(body.tenant)
    directory = call.state.directory
    for team_id in body.teams:  # every team must be visible to the caller, in that tenant
        team = await asyncio.to_thread(directory.team, team_id, call.scope)
        if team["tenant_id"] != tenant_id:
            raise PermissionDenied("a user's teams belong to the user's tenant")
    await call.record("user.create", {"tenant_id": tenant_id, "name": body.name, "role": body.role})
    user = await asyncio.to_thread(
        directory.create_user, tenant_id, body.kind, body.name, body.role, body.limits.values()
    )
    for team_id in body.teams:
        await asyncio.to_thread(directory.add_member, team_id, user["id"], call.scope)
    return JSON(await asyncio.to_thread(directory.user, user["id"], None), status_code=201)


async def list_users(request: Request) -> Response:
    call = await admin_call(request, "directory.read")
    return _list(await asyncio.to_thread(call.state.directory.users, call.scope))


async def get_user(request: Request) -> Response:
    call = await admin_call(request, "directory.read")
    user_id = path_id(request, "user_id")
    return JSON(await asyncio.to_thread(call.state.directory.user, user_id, call.scope))


async def update_user(request: Request) -> Response:
    call = await admin_call(request, "directory.manage")
    user_id = path_id(request, "user_id")
    body = await parse_body(request, UserUpdate)
    current = await asyncio.to_thread(call.state.directory.user, user_id, call.scope)
    if not may_grant(call.principal, current["role"]):
        raise PermissionDenied(f"the {call.principal.role} role may not change a {current['role']}")
    values = body.limits.values() if body.limits else {}
    if body.role is not None:
        if not may_grant(call.principal, body.role):
            raise PermissionDenied(f"the {call.principal.role} role may not grant {body.role}")
        values["role"] = body.role
    if body.disabled is not None:
        values["disabled"] = body.disabled
    await call.record("user.update", {"id": user_id, **values})
    user = await asyncio.to_thread(call.state.directory.update_user, user_id, call.scope, values)
    await call.state.keys.invalidate()  # a demotion or a suspension applies at once
    return JSON(user)


async def delete_user(request: Request) -> Response:
    """The libraries the user created stay with the tenant (`?libraries=keep`, the
    default) or are deleted with them (`?libraries=delete`)."""
    call = await admin_call(request, "directory.manage")
    user_id = path_id(request, "user_id")
    choice = library_choice(request.query_params.get("libraries")) or "keep"
    current = await asyncio.to_thread(call.state.directory.user, user_id, call.scope)
    if not may_grant(call.principal, current["role"]):
        raise PermissionDenied(f"the {call.principal.role} role may not remove a {current['role']}")
    await call.record("user.delete", {"id": user_id, "libraries": choice})
    deleted = await asyncio.to_thread(call.state.directory.delete_user, user_id, call.scope, choice)
    _forget_libraries(call.state, deleted)
    await call.state.keys.invalidate()
    return JSON(
        {"object": current["object"], "id": user_id, "deleted": True, "libraries_deleted": deleted}
    )


def _forget_libraries(state: AppState, library_ids: list[str]) -> None:
    """Drop what this process caches of libraries deleted with their user or tenant."""
    if state.libraries is not None:
        for library_id in library_ids:
            state.libraries.vectors.forget(library_id)


# ---- roles ---------------------------------------------------------------------------------


async def list_roles(request: Request) -> Response:
    await admin_call(request, "directory.read")
    roles = [
        {"role": role, "permissions": sorted(p for p, who in GRANTS.items() if role in who)}
        for role in ROLES
    ]
    return _list(roles)
