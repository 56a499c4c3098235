"""Stored responses: an index into the conversations that response chains run in.

A response's items are entries of a conversation (agents/conversation_store.py); a row
here says which conversation and which of its entries a response made, and keeps the
response object without its items (instructions, settings, status, usage). Every lookup
filters on tenant and owner, so a response another owner made, or another tenant's, does
not exist for the caller (404), like a missing one.

Rows and entries hold the caller's data, so they go together: `delete` removes a
response's row and its entries (and their copies in conversations branched from it),
`erase_subject` every response of one data subject, and `drop_orphans` the rows whose
conversation is gone (deleted, erased, or past its retention).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, Select, and_, delete, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from ..context import Principal
from ..store.work_tables import agent_responses, conversation_entries, conversations

MAX_OWNER_CHARS = 200  # the owner column holds 300
RESPONSE_TAG = "_response"  # agents/response_items.py tags every entry a response wrote
# What agents/items.py `item_id("resp")` makes: any other id names no response, and is not
# sent to the database (a NUL byte, 100 kB of text).
RESPONSE_ID = re.compile(r"resp_[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose responses and conversations these are: a user (any of their keys), else the
    key itself."""

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
    conversation_id: str
    entry_ids: list[str]  # its input entries, then its output entries
    classification: str | None
    body: dict[str, Any]  # the response object, `output` empty


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
        conversation_id: str,
        entry_ids: Sequence[str],
        classification: str | None,
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
                    body=orjson.dumps({**body, "output": []}).decode(),
                    created_at=time.time(),
                    conversation_id=conversation_id,
                    entries=orjson.dumps(list(entry_ids)).decode(),
                )
            )

    def get(self, owner: Owner, response_id: str) -> StoredResponse | None:
        """The response, while its conversation exists; None otherwise (or not the owner's)."""
        if not RESPONSE_ID.fullmatch(response_id):
            return None
        with self.database.connect() as conn:
            row = conn.execute(
                select(agent_responses)
                .join(conversations, conversations.c.id == agent_responses.c.conversation_id)
                .where(_owned(owner, response_id))
            ).first()
        if row is None:
            return None
        return StoredResponse(
            id=row.id,
            previous_id=row.previous_id,
            conversation_id=row.conversation_id,
            entry_ids=orjson.loads(row.entries),
            classification=row.classification,
            body=orjson.loads(row.body),
        )

    def entries(self, stored: StoredResponse) -> list[dict[str, Any]]:
        """The entries the response made that its conversation still holds, in order."""
        with self.database.connect() as conn:
            rows = conn.execute(
                select(conversation_entries.c.body)
                .where(
                    conversation_entries.c.conversation_id == stored.conversation_id,
                    conversation_entries.c.id.in_(stored.entry_ids),
                )
                .order_by(conversation_entries.c.ordinal)
            ).all()
        return [orjson.loads(row.body) for row in rows]

    def delete(self, owner: Owner, response_id: str) -> bool:
        if not RESPONSE_ID.fullmatch(response_id):
            return False
        with self.database.begin() as conn:
            rows = conn.execute(_made(_owned(owner, response_id))).all()
            conn.execute(delete(agent_responses).where(_owned(owner, response_id)))
            _forget(conn, owner, rows)
        return bool(rows)

    def erase_subject(self, subject: str, tenant: str | None) -> int:
        """Delete every stored response of one data subject (in `tenant`, or everywhere),
        with its entries, and the rows of the conversations made for that subject (whose
        deletion follows: ConversationStore.erase_subject)."""
        digest = subject_digest(subject)
        mine = agent_responses.c.subject == digest
        theirs = conversations.c.subject == digest
        if tenant is not None:
            mine = and_(mine, agent_responses.c.tenant == tenant)
            theirs = and_(theirs, conversations.c.tenant == tenant)
        held = agent_responses.c.conversation_id.in_(select(conversations.c.id).where(theirs))
        with self.database.begin() as conn:
            rows = conn.execute(_made(or_(mine, held))).all()
            by_owner: dict[Owner, list[Row[Any]]] = {}
            for row in rows:
                by_owner.setdefault(Owner(row.tenant, row.tenant_id, row.owner), []).append(row)
            for owner, made in by_owner.items():
                for start in range(0, len(made), 500):
                    chunk = made[start : start + 500]
                    ids = [row.id for row in chunk]
                    conn.execute(delete(agent_responses).where(agent_responses.c.id.in_(ids)))
                    _forget(conn, owner, chunk)
        return len(rows)

    def entry_owners(self, conversation_id: str) -> dict[str, str]:
        """Which response made each entry of a conversation (entry id -> response id)."""
        with self.database.connect() as conn:
            rows = conn.execute(
                select(agent_responses.c.id, agent_responses.c.entries).where(
                    agent_responses.c.conversation_id == conversation_id
                )
            ).all()
        return {entry_id: row.id for row in rows for entry_id in orjson.loads(row.entries)}

    def drop_orphans(self) -> int:
        """Delete the rows whose conversation is gone (deleted, erased, past retention)."""
        with self.database.begin() as conn:
            result = conn.execute(
                delete(agent_responses).where(
                    agent_responses.c.conversation_id.not_in(select(conversations.c.id))
                )
            )
        return int(result.rowcount or 0)


def _made(condition: ColumnElement[bool]) -> Select[Any]:
    """The rows' owner, conversation and entries: what `_forget` needs."""
    columns = agent_responses.c
    return select(
        columns.id, columns.tenant, columns.tenant_id, columns.owner,
        columns.conversation_id, columns.entries,
    ).where(condition)  # fmt: skip


def _forget(conn: Connection, owner: Owner, rows: Sequence[Row[Any]]) -> None:
    """Delete the entries these responses made: in their own conversation by id, and
    their copies in conversations branched from it (tagged with the response's id, by
    agents/runtime.py) wherever the owner's conversations hold them; then the
    conversations left without any entry."""
    owned = select(conversations.c.id).where(_owner_of(conversations, owner))
    touched: set[str] = set()
    for row in rows:
        tag = orjson.dumps({RESPONSE_TAG: row.id}).decode()[1:-1]
        made = or_(
            and_(
                conversation_entries.c.conversation_id == row.conversation_id,
                conversation_entries.c.id.in_(orjson.loads(row.entries)),
            ),
            and_(
                conversation_entries.c.conversation_id.in_(owned),
                conversation_entries.c.body.contains(tag, autoescape=True),
            ),
        )
        found = conn.execute(select(conversation_entries.c.conversation_id).where(made))
        touched |= {found_row.conversation_id for found_row in found}
        conn.execute(delete(conversation_entries).where(made))
    if not touched:
        return
    # Old entries changed: a new version, at which they were rewritten, so that no
    # replica's cached history (agents/conversation_cache.py) still holds them.
    conn.execute(
        update(conversations)
        .where(conversations.c.id.in_(touched))
        .values(version=conversations.c.version + 1, rewritten=conversations.c.version + 1)
    )
    for conversation_id in touched:
        left = conn.execute(
            select(func.count())
            .select_from(conversation_entries)
            .where(conversation_entries.c.conversation_id == conversation_id)
        ).scalar_one()
        if not left:
            conn.execute(delete(conversations).where(conversations.c.id == conversation_id))


def _owner_of(table: Any, owner: Owner) -> ColumnElement[bool]:
    tenant_id = table.c.tenant_id
    return and_(
        table.c.tenant == owner.tenant,
        tenant_id.is_(None) if owner.tenant_id is None else tenant_id == owner.tenant_id,
        table.c.owner == owner.owner,
    )


def _owned(owner: Owner, response_id: str) -> ColumnElement[bool]:
    return and_(agent_responses.c.id == response_id, _owner_of(agent_responses, owner))
