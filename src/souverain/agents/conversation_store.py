"""Stored conversations: one row each, scoped to its owner in its tenant, and its entries.

Every lookup filters on tenant and owner (agents/store.py `Owner`, the rule stored
responses follow), so another owner's conversation, or another tenant's, reads exactly
like a missing one (404). A tenant's admin may reach any conversation of its own tenant
only to approve or reject a pending tool call (`get(..., any_owner=True)`).

Rows hold the caller's data in clear (prompts, answers, tool results), so they can be
deleted by their owner, erased by data subject (`erase_subject`) and dropped by age
(`purge`), like stored responses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ..errors import Conflict
from ..store.tables import conversation_entries, conversations
from .store import Owner, subject_digest

MAX_ENTRIES = 10_000  # read back per conversation


@dataclass(slots=True)
class Conversation:
    id: str
    owner: Owner
    subject: str  # as given (hashed only in the row)
    agent_id: str | None
    agent_version: int | None
    model: str | None
    settings: dict[str, Any]  # instructions, tools, completion_args, name, description...
    classification: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    stored: bool = False  # a row exists


class ConversationStore:
    def __init__(self, database: Engine) -> None:
        self.database = database

    def save(
        self,
        conversation: Conversation,
        new_entries: Sequence[dict[str, Any]],
        changed: Sequence[dict[str, Any]] = (),
        highest: Callable[[str | None, str | None], str | None] = lambda a, b: b,
    ) -> None:
        """Insert or update the conversation, append its new entries and rewrite the
        `changed` ones (a call's confirmation status), in one transaction.

        Two turns of one conversation may run at once (two tabs): each appends after
        whatever the other stored (retried on the order's unique index), and the stored
        classification becomes `highest(stored, ours)`, so a turn that began before the
        other raised it never lowers it.
        """
        for attempt in range(3):
            try:
                return self._save(conversation, new_entries, changed, highest)
            except IntegrityError:
                if attempt == 2:
                    raise Conflict("this conversation changed during the turn; try again") from None
        return None

    def _save(
        self,
        conversation: Conversation,
        new_entries: Sequence[dict[str, Any]],
        changed: Sequence[dict[str, Any]],
        highest: Callable[[str | None, str | None], str | None],
    ) -> None:
        conversation.updated_at = time.time()
        if conversation.stored:
            with self.database.connect() as conn:
                stored = conn.execute(
                    select(conversations.c.classification).where(
                        conversations.c.id == conversation.id
                    )
                ).scalar_one_or_none()
            conversation.classification = highest(stored, conversation.classification)
        values = {
            "agent_id": conversation.agent_id,
            "agent_version": conversation.agent_version,
            "model": conversation.model,
            "settings": orjson.dumps(conversation.settings).decode(),
            "classification": conversation.classification,
            "pending": orjson.dumps(conversation.pending).decode()
            if conversation.pending
            else None,
            "updated_at": conversation.updated_at,
        }
        with self.database.begin() as conn:
            if conversation.stored:
                conn.execute(
                    update(conversations)
                    .where(conversations.c.id == conversation.id)
                    .values(**values)
                )
            else:
                owner = conversation.owner
                conn.execute(
                    conversations.insert().values(
                        id=conversation.id,
                        tenant=owner.tenant,
                        tenant_id=owner.tenant_id,
                        owner=owner.owner,
                        subject=subject_digest(conversation.subject),
                        created_at=conversation.created_at,
                        **values,
                    )
                )
                conversation.stored = True
            start = conn.execute(
                select(func.coalesce(func.max(conversation_entries.c.ordinal), -1)).where(
                    conversation_entries.c.conversation_id == conversation.id
                )
            ).scalar_one()
            rows = [
                {
                    "id": value["id"],
                    "conversation_id": conversation.id,
                    "ordinal": start + 1 + index,
                    "type": value["type"],
                    "body": orjson.dumps(value).decode(),
                    "created_at": conversation.updated_at,
                }
                for index, value in enumerate(new_entries)
            ]
            if rows:
                conn.execute(conversation_entries.insert(), rows)
            for value in changed:
                conn.execute(
                    update(conversation_entries)
                    .where(
                        conversation_entries.c.conversation_id == conversation.id,
                        conversation_entries.c.id == value["id"],
                    )
                    .values(body=orjson.dumps(value).decode())
                )

    def get(
        self, owner: Owner, conversation_id: str, *, any_owner: bool = False
    ) -> Conversation | None:
        with self.database.connect() as conn:
            row = conn.execute(
                select(conversations).where(_scoped(owner, conversation_id, any_owner))
            ).first()
        return None if row is None else _conversation(row)

    def entries(self, conversation_id: str) -> list[dict[str, Any]]:
        with self.database.connect() as conn:
            rows = conn.execute(
                select(conversation_entries.c.body)
                .where(conversation_entries.c.conversation_id == conversation_id)
                .order_by(conversation_entries.c.ordinal)
                .limit(MAX_ENTRIES)
            ).all()
        return [orjson.loads(row.body) for row in rows]

    def list(
        self, owner: Owner, *, page: int, page_size: int, metadata: dict[str, Any] | None
    ) -> list[Conversation]:
        """The owner's conversations, newest first; `metadata` keeps those whose metadata
        holds every given key with that value."""
        query = (
            select(conversations)
            .where(_scoped(owner, None, False))
            .order_by(conversations.c.created_at.desc(), conversations.c.id)
        )
        if not metadata:
            query = query.offset(page * page_size).limit(page_size)
        with self.database.connect() as conn:
            found = [_conversation(row) for row in conn.execute(query)]
        if metadata:
            kept = [c for c in found if _holds(c.settings.get("metadata") or {}, metadata)]
            found = kept[page * page_size : (page + 1) * page_size]
        return found

    def delete(self, owner: Owner, conversation_id: str) -> bool:
        with self.database.begin() as conn:
            result = conn.execute(
                delete(conversations).where(_scoped(owner, conversation_id, False))
            )
            if result.rowcount:
                conn.execute(
                    delete(conversation_entries).where(
                        conversation_entries.c.conversation_id == conversation_id
                    )
                )
        return bool(result.rowcount)

    def erase_subject(self, subject: str, tenant: str | None) -> int:
        """Delete every conversation of one data subject (in `tenant`, or everywhere)."""
        condition = conversations.c.subject == subject_digest(subject)
        if tenant is not None:
            condition = and_(condition, conversations.c.tenant == tenant)
        return self._delete_where(condition)

    def purge(self, older_than_s: float) -> int:
        """Delete the conversations not updated for `older_than_s` seconds."""
        return self._delete_where(conversations.c.updated_at < time.time() - older_than_s)

    def purge_by_retention(self, days: dict[str, int]) -> int:
        """Delete conversations idle for longer than their tenant's retention (days by
        tenant; "*" for every tenant not named). Unnamed tenants without "*": kept."""
        now, deleted = time.time(), 0
        named = [tenant for tenant in days if tenant != "*"]
        for tenant in named:
            cutoff = now - days[tenant] * 86400
            deleted += self._delete_where(
                and_(conversations.c.tenant == tenant, conversations.c.updated_at < cutoff)
            )
        if "*" in days:
            cutoff = now - days["*"] * 86400
            others = (
                conversations.c.tenant.not_in(named)
                if named
                else conversations.c.tenant.is_not(None)
            )
            deleted += self._delete_where(and_(others, conversations.c.updated_at < cutoff))
        return deleted

    def _delete_where(self, condition: ColumnElement[bool]) -> int:
        with self.database.begin() as conn:
            ids = [row.id for row in conn.execute(select(conversations.c.id).where(condition))]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(
                    delete(conversation_entries).where(
                        conversation_entries.c.conversation_id.in_(chunk)
                    )
                )
                conn.execute(delete(conversations).where(conversations.c.id.in_(chunk)))
        return len(ids)


def _scoped(owner: Owner, conversation_id: str | None, any_owner: bool) -> ColumnElement[bool]:
    tenant_id = conversations.c.tenant_id
    conditions = [
        conversations.c.tenant == owner.tenant,
        tenant_id.is_(None) if owner.tenant_id is None else tenant_id == owner.tenant_id,
    ]
    if conversation_id is not None:
        conditions.append(conversations.c.id == conversation_id)
    if not any_owner:
        conditions.append(conversations.c.owner == owner.owner)
    return and_(*conditions)


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=row.id,
        owner=Owner(row.tenant, row.tenant_id, row.owner),
        subject="",  # only its digest is kept
        agent_id=row.agent_id,
        agent_version=row.agent_version,
        model=row.model,
        settings=orjson.loads(row.settings),
        classification=row.classification,
        pending=orjson.loads(row.pending) if row.pending else [],
        created_at=row.created_at,
        updated_at=row.updated_at,
        stored=True,
    )


def _holds(metadata: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in wanted.items())
