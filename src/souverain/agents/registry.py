"""The agents of each tenant, their immutable versions and version aliases (migration 0008).

An update never changes a version: it writes the next one and makes it current, so a
conversation can name the exact definition it ran with (`resolve(tenant, id, 3)`), and an
alias ("prod") can pin a version while authors keep editing. Every read is scoped to one
tenant: another tenant's agent is simply not found (None), which the routes answer 404.

The conversation runtime reads agents only through `resolve`:

    agent = AgentRegistry(state.database).resolve(principal.tenant, "ag_…", "prod")

Methods are synchronous (SQLAlchemy Core); callers run them in a thread.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict
from ..store.tables import MAX_ID
from ..store.work_tables import agent_aliases, agent_versions, agents
from .agent_version import AgentVersion as AgentVersion
from .agent_version import agent_json as agent_json
from .agent_version import dump_body, version_of

MAX_AGENTS_PER_TENANT = 10_000
MAX_VERSIONS_PER_AGENT = 1_000
MAX_ALIASES_PER_AGENT = 100


@dataclass(frozen=True, slots=True)
class Alias:
    alias: str
    version: int
    created_at: float
    updated_at: float


class AgentRegistry:
    def __init__(self, database: sa.Engine) -> None:
        self.database = database

    # ---- reads ------------------------------------------------------------------------------

    def resolve(
        self, tenant: str, agent_id: str, version: int | str | None = None
    ) -> AgentVersion | None:
        """The agent's version `version` (a number, a number as text, or an alias name), its
        current version when None; None when the agent, version or alias does not exist
        in `tenant`."""
        with self.database.connect() as db:
            agent = _agent(db, tenant, agent_id)
            if agent is None:
                return None
            number = _version_number(db, agent, version)
            if number is None:
                return None
            row = db.execute(
                sa.select(agent_versions).where(
                    agent_versions.c.agent_id == agent.id, agent_versions.c.version == number
                )
            ).first()
        return None if row is None else _version(agent, row)

    def version_numbers(self, agent_id: str) -> list[int]:
        return self.versions_of([agent_id])[agent_id]

    def versions_of(self, agent_ids: list[str]) -> dict[str, list[int]]:
        """Each agent's version numbers, ascending, in one query (a listing's page)."""
        found: dict[str, list[int]] = {agent_id: [] for agent_id in agent_ids}
        if not agent_ids:
            return found
        query = (
            sa.select(agent_versions.c.agent_id, agent_versions.c.version)
            .where(agent_versions.c.agent_id.in_(agent_ids))
            .order_by(agent_versions.c.agent_id, agent_versions.c.version)
        )
        with self.database.connect() as db:
            for agent_id, number in db.execute(query):
                found[agent_id].append(int(number))
        return found

    def versions(
        self, tenant: str, agent_id: str, offset: int, limit: int
    ) -> list[AgentVersion] | None:
        """The agent's versions, newest first; None when it does not exist in `tenant`."""
        with self.database.connect() as db:
            agent = _agent(db, tenant, agent_id)
            if agent is None:
                return None
            rows = db.execute(
                sa.select(agent_versions)
                .where(agent_versions.c.agent_id == agent_id)
                .order_by(agent_versions.c.version.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return [_version(agent, row) for row in rows]

    def listing(
        self,
        tenant: str,
        *,
        offset: int,
        limit: int,
        name: str | None = None,
        agent_id: str | None = None,
        search: str | None = None,
        keep: Callable[[AgentVersion], bool] | None = None,
    ) -> list[AgentVersion]:
        """The tenant's agents at their current version, newest first. `keep` filters in
        Python (metadata, deployment_chat): the query then reads every candidate, at most
        MAX_AGENTS_PER_TENANT."""
        query = (
            sa.select(agents, agent_versions.c.body, agent_versions.c.created_at.label("at"))
            .join(
                agent_versions,
                sa.and_(
                    agent_versions.c.agent_id == agents.c.id,
                    agent_versions.c.version == agents.c.current_version,
                ),
            )
            .where(agents.c.tenant == tenant)
            .order_by(agents.c.created_at.desc(), agents.c.id)
        )
        if name is not None:
            query = query.where(agents.c.name == name)
        if agent_id is not None:
            query = query.where(agents.c.id == agent_id)
        if search is not None:
            pattern = (
                "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            query = query.where(
                sa.or_(
                    agents.c.name.ilike(pattern, escape="\\"),
                    agents.c.id.ilike(pattern, escape="\\"),
                )
            )
        if keep is None:
            query = query.offset(offset).limit(limit)
        with self.database.connect() as db:
            rows = db.execute(query).all()
        found = [_current(row) for row in rows]
        if keep is not None:
            found = [agent for agent in found if keep(agent)][offset : offset + limit]
        return found

    def aliases(self, tenant: str, agent_id: str) -> list[Alias] | None:
        with self.database.connect() as db:
            if _agent(db, tenant, agent_id) is None:
                return None
            rows = db.execute(
                sa.select(agent_aliases)
                .where(agent_aliases.c.agent_id == agent_id)
                .order_by(agent_aliases.c.alias)
            ).all()
        return [Alias(row.alias, row.version, row.created_at, row.updated_at) for row in rows]

    def count(self, tenant: str) -> int:
        with self.database.connect() as db:
            query = sa.select(sa.func.count()).select_from(agents).where(agents.c.tenant == tenant)
            return int(db.execute(query).scalar_one())

    # ---- writes -----------------------------------------------------------------------------

    def create(
        self, tenant: str, tenant_id: int | None, by: str, agent_id: str, body: dict[str, Any]
    ) -> AgentVersion:
        at = time.time()
        with self.database.begin() as db:
            db.execute(
                agents.insert().values(
                    id=agent_id,
                    tenant=tenant,
                    tenant_id=tenant_id,
                    name=body["name"],
                    current_version=1,
                    created_by=by,
                    created_at=at,
                    updated_at=at,
                )
            )
            db.execute(
                agent_versions.insert().values(
                    agent_id=agent_id, version=1, body=dump_body(body), created_by=by, created_at=at
                )
            )
        found = self.resolve(tenant, agent_id)
        assert found is not None
        return found

    def update(
        self, tenant: str, agent_id: str, by: str, change: Callable[[AgentVersion], dict[str, Any]]
    ) -> AgentVersion | None:
        """Writes the next version, `change(current)`, and makes it current.

        The agent's row is locked first, so racing updates queue and each applies its
        change to the version the previous one wrote: none is overwritten. Should two
        still pick one number, the loser of the insert starts again from the winner's."""
        for _attempt in range(5):
            try:
                number = self._write_next(tenant, agent_id, by, change)
            except IntegrityError:
                continue
            return None if number is None else self.resolve(tenant, agent_id, number)
        raise Conflict("the agent is being updated by others at the same time; try again")

    def _write_next(
        self, tenant: str, agent_id: str, by: str, change: Callable[[AgentVersion], dict[str, Any]]
    ) -> int | None:
        with self.database.begin() as db:
            if not agent_id or len(agent_id) > 64:
                return None
            # A write first: it takes the lock (the row on PostgreSQL, the database's one
            # writer on SQLite, where the driver opens the transaction only at a write), so
            # what is read next is what the previous update wrote.
            mine = (agents.c.id == agent_id, agents.c.tenant == tenant)
            lock = agents.update().where(*mine).values(updated_at=agents.c.updated_at)
            if not db.execute(lock).rowcount:
                return None
            agent = db.execute(sa.select(agents).where(*mine)).one()
            row = db.execute(
                sa.select(agent_versions).where(
                    agent_versions.c.agent_id == agent_id,
                    agent_versions.c.version == agent.current_version,
                )
            ).one()
            body = change(_version(agent, row))
            latest = db.execute(
                sa.select(sa.func.max(agent_versions.c.version)).where(
                    agent_versions.c.agent_id == agent_id
                )
            ).scalar_one()
            if latest >= MAX_VERSIONS_PER_AGENT:
                raise Conflict(
                    f"this agent has {MAX_VERSIONS_PER_AGENT} versions, the most one agent "
                    "keeps: create a new agent",
                    code="too_many_versions",
                )
            number = int(latest) + 1
            at = time.time()
            db.execute(
                agent_versions.insert().values(
                    agent_id=agent_id, version=number, body=dump_body(body),
                    created_by=by, created_at=at,
                )
            )  # fmt: skip
            db.execute(
                agents.update()
                .where(agents.c.id == agent_id)
                .values(current_version=number, name=body["name"], updated_at=at)
            )
        return number

    def switch(self, tenant: str, agent_id: str, version: int) -> AgentVersion | None:
        """Makes an existing version current; None when the agent or version is missing."""
        found = self.resolve(tenant, agent_id, version)
        if found is None:
            return None
        with self.database.begin() as db:
            db.execute(
                agents.update()
                .where(agents.c.id == agent_id, agents.c.tenant == tenant)
                .values(current_version=version, name=found.name, updated_at=time.time())
            )
        return self.resolve(tenant, agent_id)

    def delete(self, tenant: str, agent_id: str) -> bool:
        with self.database.begin() as db:
            gone = db.execute(
                agents.delete().where(agents.c.id == agent_id, agents.c.tenant == tenant)
            ).rowcount
            if gone:
                db.execute(agent_versions.delete().where(agent_versions.c.agent_id == agent_id))
                db.execute(agent_aliases.delete().where(agent_aliases.c.agent_id == agent_id))
        return bool(gone)

    def set_alias(self, tenant: str, agent_id: str, alias: str, version: int) -> Alias | None:
        """Creates or moves `alias` to `version`; None when the agent or version is missing."""
        if self.resolve(tenant, agent_id, version) is None:
            return None
        at = time.time()
        with self.database.begin() as db:
            where = (agent_aliases.c.agent_id == agent_id, agent_aliases.c.alias == alias)
            row = db.execute(sa.select(agent_aliases).where(*where)).first()
            if row is not None:
                db.execute(
                    agent_aliases.update().where(*where).values(version=version, updated_at=at)
                )
                return Alias(alias, version, row.created_at, at)
            count = db.execute(
                sa.select(sa.func.count()).where(agent_aliases.c.agent_id == agent_id)
            ).scalar_one()
            if count >= MAX_ALIASES_PER_AGENT:
                raise Conflict(
                    f"an agent has at most {MAX_ALIASES_PER_AGENT} aliases", code="too_many_aliases"
                )
            db.execute(
                agent_aliases.insert().values(
                    agent_id=agent_id, alias=alias, version=version, created_at=at, updated_at=at
                )
            )
        return Alias(alias, version, at, at)

    def delete_alias(self, tenant: str, agent_id: str, alias: str) -> bool | None:
        """True when deleted, False when there was no such alias, None: no such agent."""
        with self.database.begin() as db:
            if _agent(db, tenant, agent_id) is None:
                return None
            return bool(
                db.execute(
                    agent_aliases.delete().where(
                        agent_aliases.c.agent_id == agent_id, agent_aliases.c.alias == alias
                    )
                ).rowcount
            )


# ---- rows to versions ----------------------------------------------------------------------


def new_agent_id() -> str:
    return f"ag_{uuid.uuid4().hex}"


def _agent(db: sa.Connection, tenant: str, agent_id: str) -> Any:
    if not agent_id or len(agent_id) > 64:
        return None
    query = sa.select(agents).where(agents.c.id == agent_id, agents.c.tenant == tenant)
    return db.execute(query).first()


def _version_number(db: sa.Connection, agent: Any, version: int | str | None) -> int | None:
    if version is None:
        return int(agent.current_version)
    if isinstance(version, int):
        return version if 1 <= version <= MAX_ID else None
    if version.isascii() and version.isdigit() and len(version) <= 9:
        return int(version)
    query = sa.select(agent_aliases.c.version).where(
        agent_aliases.c.agent_id == agent.id, agent_aliases.c.alias == version[:64]
    )
    found = db.execute(query).scalar_one_or_none()
    return None if found is None else int(found)


def _version(agent: Any, row: Any) -> AgentVersion:
    return version_of(
        agent.id, agent.tenant, agent.created_at, row.version, row.body, row.created_at
    )


def _current(row: Any) -> AgentVersion:
    return version_of(row.id, row.tenant, row.created_at, row.current_version, row.body, row.at)
