"""Stored conversations: one row each, scoped to its owner in its tenant, and its entries.

Every lookup filters on tenant and owner (agents/store.py `Owner`, the rule stored
responses follow), so another owner's conversation, or another tenant's, reads exactly
like a missing one (404). A tenant's admin may reach any conversation of its own tenant
only to approve or reject a pending tool call (`get(..., any_owner=True)`).

Rows hold the caller's data in clear (prompts, answers, tool results), so they can be
deleted by their owner, erased by data subject (`erase_subject`) and dropped by age
(`purge`), like stored responses.

A turn costs one read and one write: `load` reads the row and only the entries this
process has not seen (conversation_cache.py, validated against the row's version in the
same call), and `save` writes the row and the new entries in one transaction, merged
with any concurrent turn's (conversation_writes.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ..errors import Conflict
from ..store.work_tables import conversation_entries, conversations
from .conversation_cache import HistoryCache
from .conversation_writes import (
    Highest,
    Loaded,
    Written,
    claim_decisions,
    insert_new,
    update_stored,
)
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
    version: int = 0  # the row's when read or last written (conversation_writes.py)
    entry_count: int = 0
    loaded: Loaded | None = None  # what the row held then: the base of a merge


class ConversationStore:
    def __init__(self, database: Engine, cache: HistoryCache | None = None) -> None:
        self.database = database
        self.cache = cache  # this process's copy of recent histories (conversation_cache.py)

    def save(
        self,
        conversation: Conversation,
        new_entries: Sequence[dict[str, Any]],
        changed: Sequence[dict[str, Any]] = (),
        highest: Highest = lambda a, b: b,
    ) -> None:
        """Insert or update the conversation, append its new entries and rewrite the
        `changed` ones (a call's confirmation status): one transaction, one commit.

        Two turns of one conversation may run at once (two tabs): each appends after
        whatever the other stored, and the stored classification becomes
        `highest(stored, ours)`, so a turn that began before the other raised it never
        lowers it (conversation_writes.py).
        """
        conversation.updated_at = time.time()
        before = conversation.version
        try:
            with self.database.begin() as conn:
                if conversation.stored:
                    written = update_stored(conn, conversation, new_entries, changed, highest)
                else:
                    written = insert_new(conn, conversation, new_entries)
        except IntegrityError:  # an entry id or ordinal taken: nothing of the turn was kept
            raise Conflict("this conversation changed during the turn; try again") from None
        conversation.stored = True
        self._remember(conversation, before, written, new_entries, changed)
        conversation.version = written.version
        conversation.entry_count = written.first_ordinal + len(new_entries)
        conversation.loaded = _loaded(conversation)

    def claim_decisions(self, conversation: Conversation, decided: set[str]) -> None:
        """Take these pending calls off the conversation before they run: of two requests
        deciding on one call, one wins and the other gets a 409 (conversation_writes.py).
        The conversation keeps as pending whatever other calls are still stored so."""
        before = conversation.version
        with self.database.begin() as conn:
            version, remaining = claim_decisions(conn, conversation, decided)
        conversation.pending = remaining
        conversation.version = version
        conversation.loaded = _loaded(conversation)
        cached = self.cache.get(conversation.id) if self.cache is not None else None
        if cached is not None and cached.version == before and version == before + 1:
            assert self.cache is not None  # the claim changed no entry: the copy holds
            self.cache.put(conversation.id, version, cached.entries, cached.chars)

    def get(
        self, owner: Owner, conversation_id: str, *, any_owner: bool = False
    ) -> Conversation | None:
        with self.database.connect() as conn:
            row = conn.execute(
                select(conversations).where(_scoped(owner, conversation_id, any_owner))
            ).first()
        if row is None:
            self._forget([conversation_id])
        return None if row is None else _conversation(row)

    def load(
        self, owner: Owner, conversation_id: str, *, any_owner: bool = False
    ) -> tuple[Conversation, list[dict[str, Any]]] | None:
        """The conversation (in the caller's scope, as `get`) and its entries, read
        together: the history is exactly the one of the row's version."""
        with self.database.connect() as conn:
            row = conn.execute(
                select(conversations).where(_scoped(owner, conversation_id, any_owner))
            ).first()
            if row is None:
                self._forget([conversation_id])
                return None
            history = self._history(conn, row.id, row.version, row.entry_count, row.rewritten)
        return _conversation(row), history

    def entries(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's entries in order (the caller has checked its scope)."""
        counters = select(
            conversations.c.version, conversations.c.entry_count, conversations.c.rewritten
        ).where(conversations.c.id == conversation_id)
        with self.database.connect() as conn:
            row = conn.execute(counters).first()
            if row is None:
                self._forget([conversation_id])
                return []
            return self._history(conn, conversation_id, row.version, row.entry_count, row.rewritten)

    def _history(
        self, conn: Connection, conversation_id: str, version: int, count: int, rewritten: int
    ) -> list[dict[str, Any]]:
        """The entries of the row's version: this process's copy when it is that version,
        topped up with the entries added since when no old entry was rewritten since;
        else read whole. Entries below the row's `entry_count` were committed with it or
        before, so the range read matches the version read."""
        limit = min(count, MAX_ENTRIES)
        cached = self.cache.get(conversation_id) if self.cache is not None else None
        if cached is not None and cached.version == version:
            return cached.copies()
        kept: tuple[dict[str, Any], ...] = ()
        chars = 0
        if cached is not None and rewritten <= cached.version and len(cached.entries) <= limit:
            kept, chars = cached.entries, cached.chars
        rows = conn.execute(
            select(conversation_entries.c.body)
            .where(
                conversation_entries.c.conversation_id == conversation_id,
                conversation_entries.c.ordinal >= len(kept),
                conversation_entries.c.ordinal < limit,
            )
            .order_by(conversation_entries.c.ordinal)
        ).all()
        history = [*(dict(value) for value in kept), *(orjson.loads(row.body) for row in rows)]
        if self.cache is not None and len(history) == limit:  # else deleted meanwhile
            chars += sum(len(row.body) for row in rows)
            self.cache.put(conversation_id, version, history, chars)
        return history

    def _remember(
        self,
        conversation: Conversation,
        before: int,
        written: Written,
        new_entries: Sequence[dict[str, Any]],
        changed: Sequence[dict[str, Any]],
    ) -> None:
        """After a write that no other came between: the copy of the version before, plus
        what the write did, is the copy of the version after."""
        if self.cache is None or not written.alone:
            return
        if before == 0:
            base: tuple[dict[str, Any], ...] = ()
            chars = 0
        else:
            cached = self.cache.get(conversation.id)
            if cached is None or cached.version != before:
                return
            base, chars = cached.entries, cached.chars
        if written.first_ordinal != len(base):
            return
        rewrites = {value["id"]: value for value in changed}
        history = [rewrites.get(value["id"], value) for value in base]
        history.extend(new_entries)
        self.cache.put(conversation.id, written.version, history, chars + written.chars)

    def _forget(self, conversation_ids: Sequence[str]) -> None:
        if self.cache is not None:
            self.cache.drop(conversation_ids)

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
        self._forget([conversation_id])
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
        self._forget(ids)
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
    conversation = Conversation(
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
        version=row.version,
        entry_count=row.entry_count,
    )
    conversation.loaded = _loaded(conversation)
    return conversation


def _loaded(conversation: Conversation) -> Loaded:
    return Loaded(
        agent_id=conversation.agent_id,
        agent_version=conversation.agent_version,
        model=conversation.model,
        pending_ids=frozenset(value["tool_call_id"] for value in conversation.pending),
    )


def _holds(metadata: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in wanted.items())
