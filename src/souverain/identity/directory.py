"""Tenants, teams, users and service accounts: the directory the admin API manages.

Every read and write takes the caller's tenant scope (`rbac.tenant_scope`): an object of
another tenant is simply not found, so a tenant's admin cannot even learn it exists.
Methods are synchronous (they run in a worker thread) and return plain dicts for JSON.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, Row, Table, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, InvalidRequest, NotFound
from ..library.ownership import LibraryChoice, forget_team, forget_tenant, forget_user
from ..store.tables import api_keys, team_members, teams, tenants, users

DEFAULT_TENANT = "default"
LIMIT_FIELDS = ("rpm", "tpm", "max_concurrency", "budget_tokens", "budget_cost", "budget_period")


def default_tenant_id(conn: Connection) -> int:
    found = conn.execute(select(tenants.c.id).where(tenants.c.name == DEFAULT_TENANT)).scalar()
    if found is None:  # removed by hand: recreate rather than fail every key creation
        result = conn.execute(tenants.insert().values(name=DEFAULT_TENANT, created_at=time.time()))
        return new_id(result)
    return int(found)


def limits_of(row: Row[Any]) -> dict[str, Any]:
    return {field: row._mapping[field] for field in LIMIT_FIELDS}


class Directory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- tenants ------------------------------------------------------------------------

    def create_tenant(self, name: str, limits: dict[str, Any]) -> dict[str, Any]:
        with self._write(f"a tenant named {name!r} already exists") as conn:
            result = conn.execute(
                tenants.insert().values(name=name, created_at=time.time(), **limits)
            )
            return self._tenant(conn, new_id(result), None)

    def tenants(self, scope: int | None) -> list[dict[str, Any]]:
        query = select(tenants).order_by(tenants.c.id)
        if scope is not None:
            query = query.where(tenants.c.id == scope)
        with self._engine.connect() as conn:
            return [_tenant_dict(row) for row in conn.execute(query)]

    def tenant(self, tenant_id: int, scope: int | None) -> dict[str, Any]:
        with self._engine.connect() as conn:
            return self._tenant(conn, tenant_id, scope)

    def tenant_id(self, name: str) -> int:
        with self._engine.connect() as conn:
            found = conn.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar()
        if found is None:
            raise NotFound(f"no tenant {name!r}", param="tenant")
        return int(found)

    def update_tenant(self, tenant_id: int, scope: int | None, limits: dict[str, Any]) -> Any:
        with self._engine.begin() as conn:
            self._tenant(conn, tenant_id, scope)
            if limits:
                conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**limits))
            return self._tenant(conn, tenant_id, scope)

    def delete_tenant(self, tenant_id: int, libraries: LibraryChoice | None = None) -> list[str]:
        """Remove an empty tenant: no users, teams or active keys (409 otherwise). Its
        revoked keys go with it (their ids are never reused, and usage rows and audit
        leaves keep naming them); its libraries too, only if `libraries` is "delete"
        (409 otherwise). Returns the ids of the libraries deleted."""
        with self._engine.begin() as conn:
            name = self._tenant(conn, tenant_id, None)["name"]
            if name == DEFAULT_TENANT:
                raise Conflict("the default tenant cannot be deleted")
            in_tenant = {table: table.c.tenant_id == tenant_id for table in (users, teams)}
            in_tenant[api_keys] = (api_keys.c.tenant_id == tenant_id) & ~api_keys.c.revoked
            for table, condition in in_tenant.items():
                used = conn.execute(select(func.count()).select_from(table).where(condition))
                if used.scalar():
                    what = "active keys" if table is api_keys else table.name
                    raise Conflict(f"tenant {name!r} still has {what}; remove them first")
            deleted = forget_tenant(conn, tenant_id, name, libraries)
            conn.execute(delete(api_keys).where(api_keys.c.tenant_id == tenant_id))
            conn.execute(delete(tenants).where(tenants.c.id == tenant_id))
            return deleted

    # ---- teams --------------------------------------------------------------------------

    def create_team(self, tenant_id: int, name: str, limits: dict[str, Any]) -> dict[str, Any]:
        with self._write(f"a team named {name!r} already exists in this tenant") as conn:
            result = conn.execute(
                teams.insert().values(
                    tenant_id=tenant_id, name=name, created_at=time.time(), **limits
                )
            )
            return self._one(conn, teams, new_id(result), None)

    def teams(self, scope: int | None) -> list[dict[str, Any]]:
        return self._list(teams, scope)

    def team(self, team_id: int, scope: int | None) -> dict[str, Any]:
        with self._engine.connect() as conn:
            return self._one(conn, teams, team_id, scope)

    def update_team(self, team_id: int, scope: int | None, limits: dict[str, Any]) -> Any:
        return self._update(teams, team_id, scope, limits)

    def delete_team(self, team_id: int, scope: int | None) -> None:
        with self._engine.begin() as conn:
            self._one(conn, teams, team_id, scope)
            conn.execute(delete(team_members).where(team_members.c.team_id == team_id))
            conn.execute(update(api_keys).where(api_keys.c.team_id == team_id).values(team_id=None))
            forget_team(conn, team_id)
            conn.execute(delete(teams).where(teams.c.id == team_id))

    def add_member(self, team_id: int, user_id: int, scope: int | None) -> None:
        with self._write("this user is already a member of this team") as conn:
            team = self._one(conn, teams, team_id, scope)
            user = self._one(conn, users, user_id, scope)
            if team["tenant_id"] != user["tenant_id"]:
                raise InvalidRequest("a team's members belong to its tenant", param="user_id")
            conn.execute(team_members.insert().values(team_id=team_id, user_id=user_id))

    def remove_member(self, team_id: int, user_id: int, scope: int | None) -> None:
        with self._engine.begin() as conn:
            self._one(conn, teams, team_id, scope)
            removed = conn.execute(
                delete(team_members).where(
                    (team_members.c.team_id == team_id) & (team_members.c.user_id == user_id)
                )
            ).rowcount
        if not removed:
            raise NotFound(f"user {user_id} is not a member of team {team_id}")

    # ---- users and service accounts -----------------------------------------------------

    def create_user(
        self, tenant_id: int, kind: str, name: str, role: str, limits: dict[str, Any]
    ) -> dict[str, Any]:
        with self._write(f"a user named {name!r} already exists in this tenant") as conn:
            result = conn.execute(
                users.insert().values(
                    tenant_id=tenant_id,
                    kind=kind,
                    name=name,
                    role=role,
                    disabled=False,
                    created_at=time.time(),
                    **limits,
                )
            )
            return self._one(conn, users, new_id(result), None)

    def users(self, scope: int | None) -> list[dict[str, Any]]:
        return self._list(users, scope)

    def user(self, user_id: int, scope: int | None) -> dict[str, Any]:
        with self._engine.connect() as conn:
            return self._one(conn, users, user_id, scope)

    def update_user(self, user_id: int, scope: int | None, values: dict[str, Any]) -> Any:
        return self._update(users, user_id, scope, values)

    def delete_user(
        self, user_id: int, scope: int | None, libraries: LibraryChoice = "keep"
    ) -> list[str]:
        """Remove a user; their keys are revoked (and kept, for the usage history), the
        shares naming them removed, and the libraries they created kept for the tenant
        or deleted (library/ownership.py). Returns the ids of the libraries deleted."""
        with self._engine.begin() as conn:
            user = self._one(conn, users, user_id, scope)
            conn.execute(
                update(api_keys)
                .where(api_keys.c.user_id == user_id)
                .values(revoked=True, user_id=None)
            )
            conn.execute(delete(team_members).where(team_members.c.user_id == user_id))
            deleted = forget_user(conn, user_id, user["tenant_id"], libraries)
            conn.execute(delete(users).where(users.c.id == user_id))
            return deleted

    # ---- shared -------------------------------------------------------------------------

    def _write(self, conflict: str) -> AbstractContextManager[Connection]:
        return _unique(self._engine, conflict)

    def _tenant(self, conn: Connection, tenant_id: int, scope: int | None) -> dict[str, Any]:
        row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
        if row is None or (scope is not None and row.id != scope):
            raise NotFound(f"no tenant {tenant_id}")
        return _tenant_dict(row)

    def _list(self, table: Table, scope: int | None) -> list[dict[str, Any]]:
        query = _with_tenant(table).order_by(table.c.id)
        if scope is not None:
            query = query.where(table.c.tenant_id == scope)
        with self._engine.connect() as conn:
            rows = [_object_dict(table, row) for row in conn.execute(query)]
            if table is teams:
                for team in rows:
                    team["members"] = _members(conn, team["id"])
            if table is users:
                for user in rows:
                    user["teams"] = _teams_of(conn, user["id"])
        return rows

    def _one(
        self, conn: Connection, table: Table, object_id: int, scope: int | None
    ) -> dict[str, Any]:
        row = conn.execute(_with_tenant(table).where(table.c.id == object_id)).first()
        if row is None or (scope is not None and row.tenant_id != scope):
            raise NotFound(f"no {table.name.rstrip('s')} {object_id}")
        found = _object_dict(table, row)
        if table is teams:
            found["members"] = _members(conn, object_id)
        if table is users:
            found["teams"] = _teams_of(conn, object_id)
        return found

    def _update(self, table: Table, object_id: int, scope: int | None, values: Any) -> Any:
        with self._engine.begin() as conn:
            self._one(conn, table, object_id, scope)
            if values:
                conn.execute(update(table).where(table.c.id == object_id).values(**values))
            return self._one(conn, table, object_id, scope)


@contextmanager
def _unique(engine: Engine, conflict: str) -> Iterator[Connection]:
    """`engine.begin()` that turns a unique-constraint violation into 409 Conflict."""
    try:
        with engine.begin() as conn:
            yield conn
    except IntegrityError:
        raise Conflict(conflict) from None


def new_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _with_tenant(table: Table) -> Any:
    return select(table, tenants.c.name.label("tenant")).join(
        tenants, tenants.c.id == table.c.tenant_id
    )


def _tenant_dict(row: Row[Any]) -> dict[str, Any]:
    return {
        "object": "tenant",
        "id": row.id,
        "name": row.name,
        "created_at": int(row.created_at),
        "limits": limits_of(row),
    }


def _object_dict(table: Table, row: Row[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {
        "object": "team" if table is teams else row.kind,
        "id": row.id,
        "name": row.name,
        "tenant": row.tenant,
        "tenant_id": row.tenant_id,
        "created_at": int(row.created_at),
        "limits": limits_of(row),
    }
    if table is users:
        found.update(role=row.role, disabled=bool(row.disabled))
    return found


def _members(conn: Connection, team_id: int) -> list[int]:
    query = select(team_members.c.user_id).where(team_members.c.team_id == team_id)
    return sorted(conn.execute(query).scalars())


def _teams_of(conn: Connection, user_id: int) -> list[int]:
    query = select(team_members.c.team_id).where(team_members.c.user_id == user_id)
    return sorted(conn.execute(query).scalars())
