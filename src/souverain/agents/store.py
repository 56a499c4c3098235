"""Stored responses: one row per response, scoped to its owner in its tenant.

A response another owner made, or another tenant's, does not exist for the caller: every
lookup filters on both, so a foreign id reads exactly like a missing one (404). Rows hold
the caller's data (prompts, answers), so they can be deleted by their owner, erased by
data subject (`erase_subject`) and dropped by age (`purge`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, and_, delete, select
from sqlalchemy.sql.elements import ColumnElement

from ..context import Principal
from ..store.tables import agent_responses

# How far `previous_response_id` is followed back; a deleted link ends a chain too.
MAX_CHAIN = 500
MAX_OWNER_CHARS = 200  # the owner column holds 300


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose responses these are: a user (any of their keys), else the key itself."""

    tenant: str
    tenant_id: int | None
    owner: str

    @classmethod
    def of(cls, principal: Principal) -> Owner:
        who = f"user:{principal.user_id}" if principal.user_id is not None else principal.label
        if len(who) > MAX_OWNER_CHARS:  # a long OIDC subject: its digest fits the column
            who = "sha256:" + hashlib.sha256(who.encode()).hexdigest()
        return cls(principal.tenant, principal.tenant_id, who)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    previous_id: str | None
    classification: str | None
    input_items: list[dict[str, Any]]
    body: dict[str, Any]


def subject_digest(subject: str) -> str:
    return hashlib.sha256(subject.encode()).hexdigest()


class ResponseStore:
    def __init__(self, database: Engine) -> None:
        self.database = database

    def save(
        self,
        owner: Owner,
        *,
        subject: str,
        classification: str | None,
        input_items: Sequence[dict[str, Any]],
        body: dict[str, Any],
    ) -> None:
        with self.database.begin() as conn:
            conn.execute(
                agent_responses.insert().values(
                    id=body["id"],
                    tenant=owner.tenant,
                    tenant_id=owner.tenant_id,
                    owner=owner.owner,
                    subject=subject_digest(subject),
                    previous_id=body.get("previous_response_id"),
                    model=body["model"],
                    classification=classification,
                    input_items=orjson.dumps(list(input_items)).decode(),
                    body=orjson.dumps(body).decode(),
                    created_at=time.time(),
                )
            )

    def get(self, owner: Owner, response_id: str) -> StoredResponse | None:
        with self.database.connect() as conn:
            row = conn.execute(select(agent_responses).where(_owned(owner, response_id))).first()
        if row is None:
            return None
        return StoredResponse(
            id=row.id,
            previous_id=row.previous_id,
            classification=row.classification,
            input_items=orjson.loads(row.input_items),
            body=orjson.loads(row.body),
        )

    def chain(self, owner: Owner, response_id: str) -> list[StoredResponse] | None:
        """The response and those it continues, oldest first; None when it is missing.

        A link that is gone (deleted, erased, expired) ends the chain there: what came
        before it is no longer the caller's conversation.
        """
        first = self.get(owner, response_id)
        if first is None:
            return None
        chain = [first]
        while chain[-1].previous_id is not None and len(chain) < MAX_CHAIN:
            previous = self.get(owner, chain[-1].previous_id)
            if previous is None:
                break
            chain.append(previous)
        chain.reverse()
        return chain

    def delete(self, owner: Owner, response_id: str) -> bool:
        with self.database.begin() as conn:
            result = conn.execute(delete(agent_responses).where(_owned(owner, response_id)))
        return bool(result.rowcount)

    def erase_subject(self, subject: str, tenant: str | None) -> int:
        """Delete every stored response of one data subject (in `tenant`, or everywhere)."""
        condition = agent_responses.c.subject == subject_digest(subject)
        if tenant is not None:
            condition = and_(condition, agent_responses.c.tenant == tenant)
        with self.database.begin() as conn:
            return int(conn.execute(delete(agent_responses).where(condition)).rowcount or 0)

    def purge(self, older_than_s: float) -> int:
        """Delete the responses stored more than `older_than_s` seconds ago."""
        cutoff = time.time() - older_than_s
        with self.database.begin() as conn:
            result = conn.execute(
                delete(agent_responses).where(agent_responses.c.created_at < cutoff)
            )
        return int(result.rowcount or 0)


def _owned(owner: Owner, response_id: str) -> ColumnElement[bool]:
    tenant_id = agent_responses.c.tenant_id
    return and_(
        agent_responses.c.id == response_id,
        agent_responses.c.tenant == owner.tenant,
        tenant_id.is_(None) if owner.tenant_id is None else tenant_id == owner.tenant_id,
        agent_responses.c.owner == owner.owner,
    )
