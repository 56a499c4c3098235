"""Roles and what they may do: one table, checked by every admin route.

    owner      the platform: creates tenants; everything in every tenant
    admin      everything inside its own tenant
    auditor    reads usage and the audit log of its tenant, nothing else (no model calls)
    developer  uses models and manages its own keys
    user       uses models

A tenant's admin never sees another tenant's objects: `tenant_scope` gives the tenant a
query must be restricted to (None only for the owner).
"""

from __future__ import annotations

from typing import Literal

from ..context import Principal
from ..errors import PermissionDenied

Role = Literal["owner", "admin", "auditor", "developer", "user"]
ROLES: tuple[Role, ...] = ("owner", "admin", "auditor", "developer", "user")
# What each role may hand out (to a key or a user): a partial order, since an auditor
# reads what a developer cannot and cannot call models as a developer can.
GRANTABLE: dict[str, frozenset[str]] = {
    "owner": frozenset(ROLES),
    "admin": frozenset({"admin", "auditor", "developer", "user"}),
    "developer": frozenset({"developer", "user"}),
    "auditor": frozenset({"auditor"}),
    "user": frozenset({"user"}),
}
# For identity providers: the strongest of several mapped roles wins.
RANK: dict[str, int] = {"user": 1, "auditor": 2, "developer": 3, "admin": 4, "owner": 5}

Permission = Literal[
    "models.use",
    "keys.own",  # create, list and revoke one's own keys
    "keys.manage",  # every key of the tenant
    "directory.read",  # tenants' teams and users
    "directory.manage",
    "tenants.manage",  # create, list and delete tenants
    "usage.read",
    "audit.read",
    "audit.erase",
    "providers.read",
    "providers.manage",  # the kill switch acts for every tenant: platform-level
    "connectors.manage",  # the tenant's MCP connectors (issue 14); stdio: owner only
    "agents.manage",  # create, update and delete the tenant's agents (issue 14)
]

GRANTS: dict[Permission, frozenset[str]] = {
    "models.use": frozenset({"owner", "admin", "developer", "user"}),
    "keys.own": frozenset({"owner", "admin", "developer"}),
    "keys.manage": frozenset({"owner", "admin"}),
    "directory.read": frozenset({"owner", "admin", "auditor"}),
    "directory.manage": frozenset({"owner", "admin"}),
    "tenants.manage": frozenset({"owner"}),
    "usage.read": frozenset({"owner", "admin", "auditor"}),
    "audit.read": frozenset({"owner", "admin", "auditor"}),
    "audit.erase": frozenset({"owner", "admin"}),
    "providers.read": frozenset({"owner", "admin"}),
    "providers.manage": frozenset({"owner"}),
    "connectors.manage": frozenset({"owner", "admin"}),
    "agents.manage": frozenset({"owner", "admin", "developer"}),
}


def allowed(principal: Principal, permission: Permission) -> bool:
    return principal.role in GRANTS[permission]


def require(principal: Principal, permission: Permission) -> None:
    if not allowed(principal, permission):
        raise PermissionDenied(
            f"the {principal.role} role may not do this ({permission})", code="forbidden"
        )


def tenant_scope(principal: Principal) -> str | None:
    """The one tenant this principal's admin queries are confined to; None: all (owner)."""
    return None if principal.role == "owner" else principal.tenant


def may_grant(principal: Principal, role: str) -> bool:
    """Nobody hands out more than they hold; only the owner creates owners."""
    return role in GRANTABLE.get(principal.role, frozenset())


def effective_role(key_role: str, user_role: str | None) -> str | None:
    """A key acts with the lesser of its own role and its user's (least privilege): a
    user demoted after creating a key does not keep the old powers through it."""
    if user_role is None or key_role in GRANTABLE.get(user_role, frozenset()):
        return key_role
    if user_role in GRANTABLE.get(key_role, frozenset()):
        return user_role
    return None  # incomparable (auditor key of a developer): refuse
