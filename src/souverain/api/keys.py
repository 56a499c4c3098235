"""`/admin/v1/keys`: create (shown once), list, get and revoke API keys.

Admins manage every key of their tenant; developers create, list and revoke their own.
A new key never carries more than its creator: its role, models, endpoints and
classification ceiling are at most the creator's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import InvalidRequest, NotFound, PermissionDenied
from ..identity.rbac import GRANTABLE, allowed, may_grant
from ..protocol.admin import KeyCreate
from .admin_access import AdminCall, admin_call, path_id
from .http import JSON, parse_body


async def create_key(request: Request) -> Response:
    call = await admin_call(request, "keys.own")
    body = await parse_body(request, KeyCreate)
    manager = allowed(call.principal, "keys.manage")
    user_id = body.user_id if manager else call.principal.user_id
    if not manager and body.user_id not in (None, call.principal.user_id):
        raise PermissionDenied("developers create keys for themselves only")
    user = None
    if user_id is not None:  # visible to the caller (404 otherwise); its tenant is the key's
        user = await asyncio.to_thread(call.state.directory.user, user_id, call.scope)
    tenant_id = user["tenant_id"] if user and body.tenant is None else None
    tenant_id = tenant_id or await call.tenant_for(body.tenant)
    if user is not None and user["tenant_id"] != tenant_id:
        raise InvalidRequest("the key's user belongs to another tenant", param="user_id")
    role = body.role or (user["role"] if user else "user")
    if not may_grant(call.principal, role):
        raise PermissionDenied(f"the {call.principal.role} role may not grant {role}")
    if user is not None and role not in GRANTABLE[user["role"]]:
        raise InvalidRequest(f"user {user_id} is a {user['role']}, not {role}", param="role")
    team_id = await _team(call, body.team, tenant_id, manager)
    models = _narrowed(body.models, call.principal.models, "models")
    endpoints = _narrowed(body.endpoints, call.principal.endpoints, "endpoints")
    ceiling = _ceiling(call, body.max_classification)
    expires_at = body.expiry(time.time())
    await call.record(
        "key.create",
        {"name": body.name, "role": role, "tenant_id": tenant_id, "user_id": user_id},
    )
    key_id, secret = await asyncio.to_thread(
        lambda: call.state.keys.create(
            name=body.name,
            role=role,
            tenant_id=tenant_id,
            user_id=user_id,
            team_id=team_id,
            expires_at=expires_at,
            models=models,
            endpoints=endpoints,
            default_classification=body.default_classification,
            max_classification=ceiling,
            limits=body.limits.values(),
        )
    )
    described = (await asyncio.to_thread(call.state.keys.describe, tenant_id=None, key_id=key_id))[
        0
    ]
    return JSON({**described, "key": secret}, status_code=201)


async def list_keys(request: Request) -> Response:
    call = await admin_call(request, "keys.own")
    return JSON({"object": "list", "data": await _visible(call)})


async def get_key(request: Request) -> Response:
    call = await admin_call(request, "keys.own")
    return JSON(await _one(call, path_id(request, "key_id")))


async def revoke_key(request: Request) -> Response:
    call = await admin_call(request, "keys.own")
    key = await _one(call, path_id(request, "key_id"))
    await call.record("key.revoke", {"id": key["id"]})
    await asyncio.to_thread(call.state.keys.revoke, key["id"])
    await call.state.keys.invalidate()  # every replica, before we answer
    return JSON({**key, "revoked": True})


async def _visible(call: AdminCall, key_id: int | None = None) -> list[dict[str, Any]]:
    keys = call.state.keys
    principal = call.principal
    if allowed(principal, "keys.manage"):
        return await asyncio.to_thread(lambda: keys.describe(tenant_id=call.scope, key_id=key_id))
    if principal.user_id is not None:  # a developer: the keys of their user
        return await asyncio.to_thread(
            lambda: keys.describe(tenant_id=call.scope, user_id=principal.user_id, key_id=key_id)
        )
    if key_id not in (None, principal.key_id):  # a developer key without a user: itself
        return []
    return await asyncio.to_thread(
        lambda: keys.describe(tenant_id=call.scope, key_id=principal.key_id)
    )


async def _one(call: AdminCall, key_id: int) -> dict[str, Any]:
    found = await _visible(call, key_id)
    if not found:
        raise NotFound(f"no key {key_id}")
    return found[0]


async def _team(call: AdminCall, name: str | None, tenant_id: int, manager: bool) -> int | None:
    if name is None:
        return None
    teams = await asyncio.to_thread(call.state.directory.teams, tenant_id)
    team = next((t for t in teams if t["name"] == name), None)
    if team is None:
        raise NotFound(f"no team {name!r} in this tenant", param="team")
    if not manager and name not in call.principal.teams:
        raise PermissionDenied(f"you are not a member of team {name!r}")
    return int(team["id"])


def _narrowed(asked: list[Any] | None, held: frozenset[str] | None, what: str) -> Any:
    """A key's scopes are the creator's or narrower."""
    if held is None:
        return asked
    if asked is None:
        return sorted(held)
    beyond = sorted(set(asked) - held)
    if beyond:
        raise PermissionDenied(f"your key may not grant {what} {', '.join(beyond)}")
    return asked


def _ceiling(call: AdminCall, asked: str | None) -> str | None:
    policy = call.state.pipeline.router.policy
    held = call.principal.max_classification
    if asked is not None:
        policy.classify(asked)  # 400 naming the levels when unknown
    if held is None:
        return asked
    if asked is None:
        return held
    if policy.classify(asked, held) != held:
        raise PermissionDenied(f"your key may not send {asked} data, so it cannot grant it")
    return asked
