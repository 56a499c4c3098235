"""`/admin/v1/keys`: create (shown once), list, get and revoke API keys.

Admins manage every key of their tenant; developers create, list and revoke their own.
A new key never carries more than its creator: its role, models, endpoints and
classification ceiling are at most the creator's. A key minted by a non-admin is held
against the key or token minting it, field by field (identity/minting.py): what the
request leaves out is inherited, what it asks looser is refused (403
`privilege_escalation`), and every such refusal leaves an audit leaf. A key minted with
a token belongs to the signed-in person's directory user (identity/token_users.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..audit.leaves import admin_leaf
from ..errors import InvalidRequest, NotFound, PermissionDenied
from ..identity import token_users
from ..identity.keys import MAX_GENERATIONS
from ..identity.minting import Bounds, EscalationRefused, bound_expiry, bounded, narrowed
from ..identity.rbac import GRANTABLE, allowed, may_grant
from ..protocol.admin import KeyCreate
from .admin_access import AdminCall, admin_call, path_id
from .http import JSON, parse_body


async def create_key(request: Request) -> Response:
    call = await admin_call(request, "keys.own")
    body = await parse_body(request, KeyCreate)
    try:
        return await _create(call, body)
    except PermissionDenied as refused:  # an escalation: leave a leaf saying it was refused
        await _record_refusal(call, body, refused)
        raise


async def _create(call: AdminCall, body: KeyCreate) -> Response:
    principal = call.principal
    manager = allowed(principal, "keys.manage")
    if not manager and body.user_id not in (None, principal.user_id):
        raise EscalationRefused("developers create keys for themselves only", param="user_id")
    by_token = principal.key_id is None  # an identity provider's token, not a key
    token_self = by_token and (not manager or body.user_id in (None, principal.user_id))
    user: dict[str, Any] | None = None
    user_id: int | None = None
    if token_self:  # for the signed-in person's directory user, bound once all is checked
        tenant_id = await call.tenant_for(body.tenant)
        user_role: str | None = principal.role  # that user's role, once bound
    else:
        user_id = body.user_id if manager else principal.user_id
        if user_id is not None:  # visible to the caller (404 otherwise); its tenant: the key's
            user = await asyncio.to_thread(call.state.directory.user, user_id, call.scope)
        users_tenant = user["tenant_id"] if user and body.tenant is None else None
        tenant_id = users_tenant or await call.tenant_for(body.tenant)
        if user is not None and user["tenant_id"] != tenant_id:
            raise InvalidRequest("the key's user belongs to another tenant", param="user_id")
        user_role = user["role"] if user else None
    role = body.role or user_role or "user"
    if not may_grant(principal, role):
        raise EscalationRefused(f"the {principal.role} role may not grant {role}", param="role")
    if user_role is not None and role not in GRANTABLE[user_role]:
        raise InvalidRequest(f"the key's user is a {user_role}, not {role}", param="role")
    bounds = await _bounds(call, body, manager, token_self)
    team_id = await _team(call, bounds.team, tenant_id, manager)
    given = body.model_fields_set
    models = narrowed(body.models, "models" in given, principal.models, "models")
    endpoints = narrowed(body.endpoints, "endpoints" in given, principal.endpoints, "endpoints")
    parent_id = None if manager or by_token else principal.key_id
    if token_self:
        user_id = await _bind_token_user(call)
    await call.record(
        "key.create",
        {"name": body.name, "role": role, "tenant_id": tenant_id, "user_id": user_id,
         "parent_id": parent_id},
    )  # fmt: skip
    key_id, secret = await asyncio.to_thread(
        lambda: call.state.keys.create(
            name=body.name,
            role=role,
            tenant_id=tenant_id,
            user_id=user_id,
            team_id=team_id,
            expires_at=bounds.expires_at,
            models=models,
            endpoints=endpoints,
            default_classification=bounds.default_classification,
            max_classification=bounds.max_classification,
            limits=bounds.limits,
            parent_id=parent_id,
        )
    )
    described = (await asyncio.to_thread(call.state.keys.describe, tenant_id=None, key_id=key_id))[
        0
    ]
    return JSON({**described, "key": secret}, status_code=201)


async def _bounds(call: AdminCall, body: KeyCreate, manager: bool, token_self: bool) -> Bounds:
    """The new key's expiry, classification, limits and team: as asked for an admin
    (with a token's maximum lifetime on its own keys), held against the minter else."""
    state = call.state
    now = time.time()
    policy = state.pipeline.router.policy
    for level in (body.default_classification, body.max_classification):
        if level is not None:
            policy.classify(level)  # 400 naming the levels when unknown
    lifetime = now + state.settings.identity.token_key_max_lifetime_s if token_self else None
    if manager:
        asked = body.limits.values()
        return Bounds(
            expires_at=bound_expiry(body, now, lifetime, "your sign-in's maximum key lifetime")
            if token_self
            else body.expiry(now),
            default_classification=body.default_classification,
            max_classification=_ceiling(call, body.max_classification),
            limits=asked,
            team=body.team,
        )
    principal = call.principal
    if principal.key_id is not None:
        generations = await asyncio.to_thread(state.keys.generation, principal.key_id)
        if generations >= MAX_GENERATIONS:
            raise EscalationRefused(
                f"keys mint keys at most {MAX_GENERATIONS} generations deep; "
                "ask an admin for this key",
                param="name",
            )
    expiry_bound = principal.expires_at if principal.key_id is not None else lifetime
    return bounded(principal, body, policy.config.levels, now=now, expiry_bound=expiry_bound)


async def _bind_token_user(call: AdminCall) -> int:
    """The signed-in person's directory user (token_users.py): created, or its role set
    to the token's, each with its leaf first."""
    principal = call.principal
    existing = await asyncio.to_thread(token_users.existing, call.state.database, principal)
    if existing is None:
        await call.record("user.create", {"tenant_id": principal.tenant_id, "role": principal.role,
                                          "name": token_users.user_name(principal.subject),
                                          "from": "token"})  # fmt: skip
    elif existing["role"] != principal.role:
        await call.record("user.update", {"id": existing["id"], "role": principal.role,
                                          "from": "token"})  # fmt: skip
    user_id, changed = await asyncio.to_thread(token_users.bind, call.state.database, principal)
    if changed:  # the person's tokens act as the user, its keys with the new role, at once
        await call.state.keys.invalidate()
    return user_id


async def _record_refusal(call: AdminCall, body: KeyCreate, refused: PermissionDenied) -> None:
    """A leaf for a refused key creation, with what was asked and why it was refused
    (never a secret: the request carries none)."""
    if call.state.audit is None:
        return
    target = {"name": body.name, "role": body.role, "user_id": body.user_id,
              "team": body.team, "field": refused.param}  # fmt: skip
    leaf = admin_leaf(call.ctx, "key.create", target)
    leaf.update(outcome=refused.error_type, code=refused.code, status=refused.status_code,
                reason=refused.message[:300])  # fmt: skip
    await call.state.audit.append(leaf)


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
    if principal.user_id is not None:  # a developer, by key or token: the keys of their user
        return await asyncio.to_thread(
            lambda: keys.describe(tenant_id=call.scope, user_id=principal.user_id, key_id=key_id)
        )
    if principal.key_id is None:  # a token whose person has minted no key yet: none
        return []
    # A developer key without a user: itself and the keys it minted.
    return await asyncio.to_thread(
        lambda: keys.describe(tenant_id=call.scope, key_id=key_id, minted_by=principal.key_id)
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
        raise EscalationRefused(f"you are not a member of team {name!r}", param="team")
    return int(team["id"])


def _ceiling(call: AdminCall, asked: str | None) -> str | None:
    """An admin's key hands out no higher classification ceiling than its own."""
    policy = call.state.pipeline.router.policy
    held = call.principal.max_classification
    if held is None:
        return asked
    if asked is None:
        return held
    if policy.classify(asked, held) != held:
        raise EscalationRefused(
            f"your key may not send {asked} data, so it cannot grant it",
            param="max_classification",
        )
    return asked
