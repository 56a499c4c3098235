"""The conversation store on SQLite and PostgreSQL: scope, concurrent turns, erasure and
retention (agents/conversation_store.py, migration 0010)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, update

from souverain.agents.conversation_store import Conversation, ConversationStore
from souverain.agents.store import Owner
from souverain.store.database import open_database, upgrade
from souverain.store.tables import conversations

LEVELS = ["public", "internal", "confidential", "restricted"]


def _engine(database_url: str) -> Engine:
    engine = open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    upgrade(engine)
    return engine


def _highest(a: str | None, b: str | None) -> str | None:
    return max((x for x in (a, b) if x), key=LEVELS.index, default=None)


def _entry(n: int) -> dict[str, object]:
    return {"object": "entry", "type": "message.input", "id": f"msg_{time.time_ns()}_{n}",
            "role": "user", "content": str(n)}  # fmt: skip


def _new(owner: Owner, subject: str = "s") -> Conversation:
    return Conversation(id=f"conv_{time.time_ns()}", owner=owner, subject=subject,
                        agent_id=None, agent_version=None, model="m", settings={})  # fmt: skip


def test_scope_concurrent_turns_erasure_and_retention(database_url: str) -> None:
    store = ConversationStore(_engine(database_url))
    alice, bob = Owner("acme", 1, "user:1"), Owner("acme", 1, "user:2")
    mine = _new(alice, "person-1")
    store.save(mine, [_entry(0)], highest=_highest)
    assert (
        store.get(bob, mine.id) is None and store.get(Owner("other", 2, "user:1"), mine.id) is None
    )
    assert store.get(bob, mine.id, any_owner=True) is not None  # an approver of the tenant

    # Two turns loaded the conversation at once; the second raised its level first.
    first, second = store.get(alice, mine.id), store.get(alice, mine.id)
    assert first is not None and second is not None
    second.classification = "confidential"
    store.save(second, [_entry(1)], highest=_highest)
    store.save(first, [_entry(2)], highest=_highest)  # began before: must not lower it
    again = store.get(alice, mine.id)
    assert again is not None and again.classification == "confidential"
    assert [e["content"] for e in store.entries(mine.id)] == ["0", "1", "2"]

    other = _new(alice, "person-2")
    store.save(other, [_entry(3)])
    assert store.erase_subject("person-1", "acme") == 1
    assert store.get(alice, mine.id) is None and store.entries(mine.id) == []
    with store.database.begin() as conn:  # idle for 10 days
        conn.execute(update(conversations).where(conversations.c.id == other.id)
                     .values(updated_at=time.time() - 10 * 86400))  # fmt: skip
    assert store.purge_by_retention({"acme": 30}) == 0
    assert store.purge_by_retention({"globex": 1}) == 0  # not acme's rule, no "*"
    assert store.purge_by_retention({"globex": 1, "*": 7}) == 1
    assert store.get(alice, other.id) is None
