"""Libraries and their shares in the database (synchronous: callers use a thread).

Every read that a caller asks for goes through `acl`: one library through `access()`
(its level, or 404/403), lists through `acl.readable()` inside the query.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from ..context import Principal
from ..errors import InvalidRequest, NotFound
from ..store.tables import (
    libraries,
    library_documents,
    library_shares,
    teams,
    tenants,
    users,
)
from .acl import Caller, Level, TargetType, level_of, readable, require_level
from .ownership import delete_libraries


@dataclass(frozen=True, slots=True)
class Access:
    """A library the caller reached, with its level and figures."""

    library: Any  # a row of `libraries`
    level: Level


class LibraryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- callers ------------------------------------------------------------------------

    def caller(self, principal: Principal) -> Caller:
        with self.engine.connect() as conn:
            tenant_id = principal.tenant_id
            if tenant_id is None:
                tenant_id = conn.execute(
                    select(tenants.c.id).where(tenants.c.name == principal.tenant)
                ).scalar()
            if tenant_id is None:
                raise NotFound(f"tenant {principal.tenant!r} does not exist")
            team_ids: tuple[int, ...] = ()
            if principal.teams:
                team_ids = tuple(
                    conn.execute(
                        select(teams.c.id).where(
                            teams.c.tenant_id == tenant_id, teams.c.name.in_(principal.teams)
                        )
                    ).scalars()
                )
        return Caller(principal, int(tenant_id), team_ids)

    # ---- libraries ----------------------------------------------------------------------

    def create(
        self,
        caller: Caller,
        *,
        name: str,
        description: str | None,
        owner_type: str,
        chunk_size: int | None,
        embedding_model: str,
    ) -> str:
        now = time.time()
        library_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                insert(libraries).values(
                    id=library_id,
                    tenant_id=caller.tenant_id,
                    name=name,
                    description=description,
                    owner_type=owner_type,
                    created_by=caller.label,
                    created_by_user_id=caller.principal.user_id,
                    chunk_size=chunk_size,
                    embedding_model=embedding_model,
                    revision=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            team_id = caller.principal.team_id
            if owner_type == "Workspace" and team_id is not None:
                conn.execute(
                    insert(library_shares).values(
                        library_id=library_id,
                        target_type="team",
                        target_id=team_id,
                        level="viewer",
                        created_by=caller.label,
                        created_at=now,
                    )
                )
        return library_id

    def access(self, caller: Caller, library_id: str, need: Level) -> Access:
        with self.engine.connect() as conn:
            row = conn.execute(select(libraries).where(libraries.c.id == library_id)).first()
            shares = self._shares(conn, library_id) if row is not None else []
        level = require_level(caller, row, shares, need, library_id)
        return Access(row, level)

    def level(self, caller: Caller, library_id: str) -> Level | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(libraries).where(libraries.c.id == library_id)).first()
            return None if row is None else level_of(caller, row, self._shares(conn, library_id))

    def list_libraries(
        self, caller: Caller, *, search: str | None, offset: int, limit: int
    ) -> tuple[list[Any], int]:
        condition = readable(caller)
        if search:
            condition = condition & libraries.c.name.ilike(f"%{_escape_like(search)}%", "\\")
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(libraries).where(condition)
            ).scalar_one()
            rows = conn.execute(
                select(libraries)
                .where(condition)
                .order_by(libraries.c.created_at.desc(), libraries.c.id)
                .offset(offset)
                .limit(limit)
            ).all()
        return list(rows), int(total)

    def figures(self, library_ids: list[str]) -> dict[str, dict[str, int]]:
        """Documents, bytes and explicit shares of each library."""
        figures = {i: {"documents": 0, "size": 0, "users": 0, "teams": 0} for i in library_ids}
        if not library_ids:
            return figures
        docs = library_documents.c
        with self.engine.connect() as conn:
            for row in conn.execute(
                select(docs.library_id, func.count(), func.coalesce(func.sum(docs.size), 0))
                .where(docs.library_id.in_(library_ids))
                .group_by(docs.library_id)
            ):
                figures[row[0]].update(documents=int(row[1]), size=int(row[2]))
            shares = library_shares.c
            for row in conn.execute(
                select(shares.library_id, shares.target_type, func.count())
                .where(shares.library_id.in_(library_ids))
                .group_by(shares.library_id, shares.target_type)
            ):
                if row[1] in ("user", "team"):
                    figures[row[0]][row[1] + "s"] = int(row[2])
        return figures

    def update(self, library_id: str, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(libraries)
                .where(libraries.c.id == library_id)
                .values(**values, updated_at=time.time())
            )

    def delete(self, library_id: str) -> None:
        """The library and everything in it: documents (bytes, text), chunks (text and
        vectors; the keyword index follows), shares."""
        with self.engine.begin() as conn:
            delete_libraries(conn, [library_id])

    # ---- shares -------------------------------------------------------------------------

    def shares(self, library_id: str) -> list[Any]:
        with self.engine.connect() as conn:
            return self._shares(conn, library_id)

    def _shares(self, conn: Connection, library_id: str) -> list[Any]:
        return list(
            conn.execute(
                select(library_shares)
                .where(library_shares.c.library_id == library_id)
                .order_by(library_shares.c.target_type, library_shares.c.target_id)
            ).all()
        )

    def share(
        self, library: Any, caller: Caller, target_type: TargetType, target_id: int, level: str
    ) -> None:
        with self.engine.begin() as conn:
            self._check_target(conn, library.tenant_id, target_type, target_id)
            key = (
                (library_shares.c.library_id == library.id)
                & (library_shares.c.target_type == target_type)
                & (library_shares.c.target_id == target_id)
            )
            done = conn.execute(update(library_shares).where(key).values(level=level)).rowcount
            if not done:
                conn.execute(
                    insert(library_shares).values(
                        library_id=library.id,
                        target_type=target_type,
                        target_id=target_id,
                        level=level,
                        created_by=caller.label,
                        created_at=time.time(),
                    )
                )

    def unshare(self, library_id: str, target_type: TargetType, target_id: int) -> Any:
        key = (
            (library_shares.c.library_id == library_id)
            & (library_shares.c.target_type == target_type)
            & (library_shares.c.target_id == target_id)
        )
        with self.engine.begin() as conn:
            row = conn.execute(select(library_shares).where(key)).first()
            if row is None:
                raise NotFound(
                    f"library {library_id!r} is not shared with that {target_type}",
                    code="share_not_found",
                )
            conn.execute(delete(library_shares).where(key))
            return row

    @staticmethod
    def _check_target(conn: Connection, tenant_id: int, target_type: str, target_id: int) -> None:
        """The target exists in the library's tenant: nothing is shared across tenants."""
        if target_type == "tenant":
            found = target_id == tenant_id
        else:
            table = users if target_type == "user" else teams
            found = (
                conn.execute(
                    select(table.c.id).where(
                        table.c.id == target_id, table.c.tenant_id == tenant_id
                    )
                ).first()
                is not None
            )
        if not found:
            word = {"user": "user", "team": "workspace (team)", "tenant": "organization (tenant)"}
            raise InvalidRequest(
                f"no {word[target_type]} {target_id} in this library's tenant; libraries are "
                "shared within their tenant only",
                param="share_with_uuid",
            )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
