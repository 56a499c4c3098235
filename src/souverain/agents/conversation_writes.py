"""Writing a conversation: one transaction per turn, and the claim on pending approvals.

A turn's write is one transaction and one durable commit: the row (classification,
pending approvals, the agent now answering, `version` + 1, `entry_count` + new entries)
and its new entries, appended after the stored ones; old entries are never rewritten,
except a call's confirmation status (then `rewritten` records the version).

Two turns of one conversation may run at once (two tabs, two replicas). The row is the
lock: the write is a conditional update on the version the turn read. When it still
holds, nothing else changed and the turn's values are written as they are. When another
turn wrote first, the row is locked and read again and the turn's changes are merged into
it: entries go after the other turn's (each turn's stay together), the classification
becomes the higher of both (it never falls), pending approvals are the stored ones minus
those this turn decided plus those it added (the other turn's pause is kept), and the
agent and model are this turn's only where it changed them (a handoff).

Deciding a pending approval is claimed before the tool runs (`claim_decisions`): a
conditional update that only one of two concurrent decisions on the same call wins; the
other is a 409 and runs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Row, update

from ..errors import Conflict, NotFound
from ..store.work_tables import conversation_entries, conversations

if TYPE_CHECKING:
    from .conversation_store import Conversation

Highest = Callable[[str | None, str | None], str | None]


@dataclass(frozen=True, slots=True)
class Written:
    version: int  # the row's version after the write
    first_ordinal: int  # of the new entries
    alone: bool  # no other write came between the turn's read and this one
    chars: int  # of the new entries' stored JSON


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the row held when the turn read it: the base of the merge."""

    agent_id: str | None
    agent_version: int | None
    model: str | None
    pending_ids: frozenset[str]


def insert_new(
    conn: Connection, conversation: Conversation, new_entries: Sequence[dict[str, Any]]
) -> Written:
    """The conversation's row and its first entries."""
    from .store import subject_digest

    owner = conversation.owner
    conn.execute(
        conversations.insert().values(
            id=conversation.id,
            tenant=owner.tenant,
            tenant_id=owner.tenant_id,
            owner=owner.owner,
            subject=subject_digest(conversation.subject),
            created_at=conversation.created_at,
            version=1,
            entry_count=len(new_entries),
            rewritten=0,
            **_values(conversation),
        )
    )
    chars = _insert_entries(conn, conversation, new_entries, 0)
    return Written(version=1, first_ordinal=0, alone=True, chars=chars)


def update_stored(
    conn: Connection,
    conversation: Conversation,
    new_entries: Sequence[dict[str, Any]],
    changed: Sequence[dict[str, Any]],
    highest: Highest,
) -> Written:
    count = len(new_entries)
    counters: dict[str, Any] = {
        "version": conversations.c.version + 1,
        "entry_count": conversations.c.entry_count + count,
    }
    if changed:
        counters["rewritten"] = conversations.c.version + 1
    alone = True
    row = conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation.id)
        .where(conversations.c.version == conversation.version)
        .values(**_values(conversation), **counters)
        .returning(conversations.c.version, conversations.c.entry_count)
    ).first()
    if row is None:  # another write came first: lock the row, merge into what it holds
        alone = False
        locked = conn.execute(
            update(conversations)
            .where(conversations.c.id == conversation.id)
            .values(**counters)
            .returning(*conversations.c)
        ).first()
        if locked is None:
            raise NotFound(
                f"the conversation {conversation.id!r} was deleted during the turn",
                param="conversation_id",
            )
        _merge(conversation, locked, highest)
        conn.execute(
            update(conversations)
            .where(conversations.c.id == conversation.id)
            .values(**_values(conversation))
        )
        row = locked
    first = int(row.entry_count) - count
    chars = _insert_entries(conn, conversation, new_entries, first)
    for value in changed:
        conn.execute(
            update(conversation_entries)
            .where(
                conversation_entries.c.conversation_id == conversation.id,
                conversation_entries.c.id == value["id"],
            )
            .values(body=orjson.dumps(value).decode())
        )
    return Written(version=int(row.version), first_ordinal=first, alone=alone, chars=chars)


def claim_decisions(
    conn: Connection, conversation: Conversation, decided: set[str]
) -> tuple[int, list[dict[str, Any]]]:
    """Take the decided calls off the stored pending list, if they are all still on it;
    returns the row's new version and the calls still pending. A 409 when another
    request decided one of them first (or the conversation is gone)."""
    locked = conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation.id)
        .values(version=conversations.c.version + 1)
        .returning(conversations.c.version, conversations.c.pending)
    ).first()
    stored = _pending(locked.pending) if locked is not None else []
    waiting = {value["tool_call_id"] for value in stored}
    if locked is None or not decided <= waiting:
        raise Conflict(
            "another request decided on these tool calls first; read the conversation again",
            param="tool_confirmations",
        )
    remaining = [value for value in stored if value["tool_call_id"] not in decided]
    conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation.id)
        .values(pending=_pending_json(remaining))
    )
    return int(locked.version), remaining


# ---- parts ------------------------------------------------------------------------------


def _values(conversation: Conversation) -> dict[str, Any]:
    return {
        "agent_id": conversation.agent_id,
        "agent_version": conversation.agent_version,
        "model": conversation.model,
        "settings": orjson.dumps(conversation.settings).decode(),
        "classification": conversation.classification,
        "pending": _pending_json(conversation.pending),
        "updated_at": conversation.updated_at,
    }


def _merge(conversation: Conversation, stored: Row[Any], highest: Highest) -> None:
    """The turn's changes applied to the row as another write left it."""
    loaded = conversation.loaded
    conversation.classification = highest(stored.classification, conversation.classification)
    ours = {value["tool_call_id"] for value in conversation.pending}
    base = loaded.pending_ids if loaded is not None else frozenset()
    decided, added = base - ours, ours - base
    kept = [value for value in _pending(stored.pending) if value["tool_call_id"] not in decided]
    kept_ids = {value["tool_call_id"] for value in kept}
    conversation.pending = [
        *kept,
        *(v for v in conversation.pending if v["tool_call_id"] in added - kept_ids),
    ]
    if loaded is None or (conversation.agent_id, conversation.agent_version) == (
        loaded.agent_id,
        loaded.agent_version,
    ):
        conversation.agent_id, conversation.agent_version = stored.agent_id, stored.agent_version
    if loaded is None or conversation.model == loaded.model:
        conversation.model = stored.model


def _insert_entries(
    conn: Connection,
    conversation: Conversation,
    new_entries: Sequence[dict[str, Any]],
    first: int,
) -> int:
    rows = [
        {
            "id": value["id"],
            "conversation_id": conversation.id,
            "ordinal": first + index,
            "type": value["type"],
            "body": orjson.dumps(value).decode(),
            "created_at": conversation.updated_at,
        }
        for index, value in enumerate(new_entries)
    ]
    if rows:
        conn.execute(conversation_entries.insert(), rows)
    return sum(len(row["body"]) for row in rows)


def _pending(text: str | None) -> list[dict[str, Any]]:
    return orjson.loads(text) if text else []


def _pending_json(pending: list[dict[str, Any]]) -> str | None:
    return orjson.dumps(pending).decode() if pending else None
