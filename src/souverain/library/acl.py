"""Who may do what with a library, and the access filter every query carries.

A library belongs to the tenant of the principal that created it. Levels, weakest first:

    viewer   list and read its documents, search it          a share (user, team, tenant)
    editor   also upload, rename, reprocess, delete documents a share
    owner    also rename or delete the library, share it      its creator; the tenant's
                                                                admins; the platform owner

Shares name a user, a team or the whole tenant of the library (Mistral's User,
Workspace and Org), never another tenant. The auditor role reads usage and the audit
log only: no library content at all (403). A library the caller may not read does not
exist for it (404), whatever the route; one it may read but not change answers 403.

`readable()` is the same rule as `level_of()`, written as a SQL condition on
`libraries`: listing and search put it inside their query, so a chunk of a library the
caller may not read is never even selected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, exists, or_, select, true

from ..context import Principal
from ..errors import NotFound, PermissionDenied
from ..store.tables import libraries, library_shares

Level = Literal["viewer", "editor", "owner"]
RANK: dict[str, int] = {"viewer": 1, "editor": 2, "owner": 3}
TargetType = Literal["user", "team", "tenant"]
# Mistral's names for share targets and levels, and ours.
TARGET_TYPES: dict[str, TargetType] = {"User": "user", "Workspace": "team", "Org": "tenant"}
MISTRAL_TARGETS = {ours: theirs for theirs, ours in TARGET_TYPES.items()}
SHARE_LEVELS: dict[str, Level] = {"Viewer": "viewer", "Editor": "editor"}
MISTRAL_LEVELS = {"viewer": "Viewer", "editor": "Editor", "owner": "Owner"}
NO_LIBRARIES = frozenset({"auditor"})


@dataclass(frozen=True, slots=True)
class Caller:
    """A principal with its tenant and team ids resolved (teams come by name)."""

    principal: Principal
    tenant_id: int
    team_ids: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return self.principal.label


def check_role(principal: Principal) -> None:
    if principal.role in NO_LIBRARIES:
        raise PermissionDenied(
            f"the {principal.role} role reads usage and the audit log, not document libraries",
            code="forbidden",
        )


def is_creator(caller: Caller, library: Any) -> bool:
    principal = caller.principal
    if library.created_by == principal.label:
        return True
    return principal.user_id is not None and library.created_by_user_id == principal.user_id


def level_of(caller: Caller, library: Any, shares: Iterable[Any]) -> Level | None:
    """The caller's level on one library (a row of `libraries`), from its share rows."""
    principal = caller.principal
    if principal.role in NO_LIBRARIES:
        return None
    if principal.role == "owner":
        return "owner"
    if library.tenant_id != caller.tenant_id:
        return None
    if principal.role == "admin" or is_creator(caller, library):
        return "owner"
    best: Level | None = None
    for share in shares:
        if _share_matches(caller, share.target_type, share.target_id) and (
            best is None or RANK[share.level] > RANK[best]
        ):
            best = share.level
    return best


def _share_matches(caller: Caller, target_type: str, target_id: int) -> bool:
    if target_type == "tenant":
        return target_id == caller.tenant_id
    if target_type == "team":
        return target_id in caller.team_ids
    return target_type == "user" and target_id == caller.principal.user_id


def readable(caller: Caller) -> ColumnElement[bool]:
    """`level_of(...) is not None`, as a condition on the `libraries` table."""
    principal = caller.principal
    if principal.role in NO_LIBRARIES:
        return libraries.c.id.is_(None)  # nothing
    if principal.role == "owner":
        return true()
    in_tenant = libraries.c.tenant_id == caller.tenant_id
    if principal.role == "admin":
        return in_tenant
    mine = libraries.c.created_by == principal.label
    if principal.user_id is not None:
        mine = or_(mine, libraries.c.created_by_user_id == principal.user_id)
    share = library_shares.c
    targets = [and_(share.target_type == "tenant", share.target_id == caller.tenant_id)]
    if principal.user_id is not None:
        targets.append(and_(share.target_type == "user", share.target_id == principal.user_id))
    if caller.team_ids:
        targets.append(and_(share.target_type == "team", share.target_id.in_(caller.team_ids)))
    shared = exists(
        select(share.library_id).where(share.library_id == libraries.c.id, or_(*targets))
    )
    return and_(in_tenant, or_(mine, shared))


def require_level(
    caller: Caller, library: Any | None, shares: Iterable[Any], need: Level, library_id: str
) -> Level:
    """The caller's level, at least `need`: 404 when it may not read, 403 when it may read
    but not do this."""
    level = None if library is None else level_of(caller, library, shares)
    if level is None:
        raise not_found(library_id)
    if RANK[level] < RANK[need]:
        what = {"editor": "change its documents", "owner": "manage it"}.get(need, "read it")
        raise PermissionDenied(
            f"you may read library {library_id!r} but not {what} (your level: {level})",
            code="forbidden",
        )
    return level


def not_found(library_id: str) -> NotFound:
    return NotFound(
        f"library {library_id!r} does not exist or you do not have access to it",
        code="library_not_found",
    )
