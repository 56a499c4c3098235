"""A tenant's connectors in the database (`connectors`, migration 0009).

Rows are read and written only through a tenant: a connector of another tenant is not
found, exactly like one that does not exist. Secrets (headers, environment) are sealed
before they reach the database and `public()` shows their names with masked values.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from secrets import token_hex
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, delete, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, NotFound, StageUnavailable
from ..store.work_tables import connectors
from .schemas import ConnectorCreate
from .sealing import Sealer

MASK = "********"


@dataclass(frozen=True, slots=True)
class Connector:
    """One registered MCP server, secrets opened: for the client, never for a response."""

    id: str
    tenant: str
    name: str
    transport: str  # http, stdio
    url: str | None
    command: list[str] | None  # [program, *args]
    headers: dict[str, str]  # empty unless opened (`secrets=True`)
    env: dict[str, str]
    timeout_s: float
    description: str | None
    created_by: str
    created_at: float
    header_names: tuple[str, ...] = ()
    env_names: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        """What the admin API returns: secrets by name, values masked."""
        return {
            "object": "connector",
            "id": self.id,
            "name": self.name,
            "tenant": self.tenant,
            "transport": self.transport,
            "url": self.url,
            "command": self.command[0] if self.command else None,
            "args": self.command[1:] if self.command else [],
            "headers": {name: MASK for name in self.header_names},
            "env": {name: MASK for name in self.env_names},
            "timeout_s": self.timeout_s,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": int(self.created_at),
        }


class ConnectorStore:
    def __init__(self, database: Engine, sealer: Sealer) -> None:
        self.database = database
        self.sealer = sealer

    def create(
        self, tenant: str, tenant_id: int | None, body: ConnectorCreate, created_by: str
    ) -> Connector:
        connector_id = "conn_" + token_hex(12)
        secret = {"headers": dict(body.headers), "env": dict(body.env)}
        names = {"headers": sorted(body.headers), "env": sorted(body.env)}
        command = [body.command, *body.args] if body.command is not None else None
        row = {
            "id": connector_id,
            "tenant": tenant,
            "tenant_id": tenant_id,
            "name": body.name,
            "transport": body.transport,
            "url": body.url,
            "command": None if command is None else json.dumps(command),
            "secret": self.sealer.seal(connector_id, secret),
            "secret_names": json.dumps(names),
            "timeout_s": body.timeout_s,
            "description": body.description,
            "created_by": created_by,
            "created_at": time.time(),
        }
        try:
            with self.database.begin() as conn:
                conn.execute(connectors.insert().values(**row))
        except IntegrityError:
            raise Conflict(f"a connector named {body.name!r} already exists") from None
        found = self.get(tenant, connector_id)
        assert found is not None
        return found

    def get(self, tenant: str | None, ref: str, *, secrets: bool = True) -> Connector | None:
        """By id or by name, within `tenant` (None: any tenant, the platform owner); its
        secrets opened unless `secrets` is false (to show it, they are not needed)."""
        if len(ref) > 64:
            return None
        query = select(connectors).where((connectors.c.id == ref) | (connectors.c.name == ref))
        if tenant is not None:
            query = query.where(connectors.c.tenant == tenant)
        with self.database.connect() as conn:
            rows = list(conn.execute(query.order_by(connectors.c.created_at)).mappings())
        by_id = [row for row in rows if row["id"] == ref]
        chosen = by_id or rows  # an id wins; a name unique per tenant (several: the owner)
        return self._connector(chosen[0], secrets) if len(chosen) == 1 else None

    def list(self, tenant: str | None) -> list[Connector]:
        query = select(connectors).order_by(connectors.c.tenant, connectors.c.name)
        if tenant is not None:
            query = query.where(connectors.c.tenant == tenant)
        with self.database.connect() as conn:
            return [self._connector(row, False) for row in conn.execute(query).mappings()]

    def delete(self, tenant: str | None, connector_id: str) -> None:
        query = delete(connectors).where(connectors.c.id == connector_id)
        if tenant is not None:
            query = query.where(connectors.c.tenant == tenant)
        with self.database.begin() as conn:
            if not conn.execute(query).rowcount:
                raise NotFound(f"no such connector {connector_id[:64]!r}")

    def _connector(self, row: RowMapping, secrets: bool) -> Connector:
        names = json.loads(row["secret_names"] or "{}")
        opened: dict[str, dict[str, str]] = {}
        if secrets and row["secret"]:
            try:
                opened = self.sealer.open(row["id"], row["secret"])
            except InvalidTag:
                raise StageUnavailable(
                    f"the secrets of connector {row['name']!r} do not open with this "
                    "gateway's data_dir/connectors.key (every replica needs the same file)",
                    code="connector_key_mismatch",
                ) from None
        return Connector(
            id=row["id"],
            tenant=row["tenant"],
            name=row["name"],
            transport=row["transport"],
            url=row["url"],
            command=json.loads(row["command"]) if row["command"] else None,
            headers=opened.get("headers", {}),
            env=opened.get("env", {}),
            timeout_s=float(row["timeout_s"]),
            description=row["description"],
            created_by=row["created_by"],
            created_at=float(row["created_at"]),
            header_names=tuple(names.get("headers", ())),
            env_names=tuple(names.get("env", ())),
        )
