"""The conversation store on SQLite and PostgreSQL: scope, concurrent turns, erasure and
retention (agents/conversation_store.py, migration 0010); the history cache checked
against the row's version, and the version columns (migration 0014)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event, text, update

from souverain.agents.conversation_cache import HistoryCache
from souverain.agents.conversation_store import Conversation, ConversationStore
from souverain.agents.store import Owner
from souverain.store.database import open_database, upgrade
from souverain.store.work_tables import conversations

LEVELS = ["public", "internal", "confidential", "restricted"]


def migrated(database_url: str) -> Engine:
    engine = open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    upgrade(engine)
    return engine


def highest(a: str | None, b: str | None) -> str | None:
    return max((x for x in (a, b) if x), key=LEVELS.index, default=None)


def entry(label: object) -> dict[str, Any]:
    """A user message entry with a fresh id (tests/test_conversation_concurrency.py too)."""
    return {"object": "entry", "type": "message.input", "id": f"msg_{time.time_ns()}_{label}",
            "role": "user", "content": str(label)}  # fmt: skip


def _new(owner: Owner, subject: str = "s") -> Conversation:
    return Conversation(id=f"conv_{time.time_ns()}", owner=owner, subject=subject,
                        agent_id=None, agent_version=None, model="m", settings={})  # fmt: skip


def test_scope_concurrent_turns_erasure_and_retention(database_url: str) -> None:
    store = ConversationStore(migrated(database_url))
    alice, bob = Owner("acme", 1, "user:1"), Owner("acme", 1, "user:2")
    mine = _new(alice, "person-1")
    store.save(mine, [entry(0)], highest=highest)
    assert (
        store.get(bob, mine.id) is None and store.get(Owner("other", 2, "user:1"), mine.id) is None
    )
    assert store.get(bob, mine.id, any_owner=True) is not None  # an approver of the tenant

    # Two turns loaded the conversation at once; the second raised its level first.
    first, second = store.get(alice, mine.id), store.get(alice, mine.id)
    assert first is not None and second is not None
    second.classification = "confidential"
    store.save(second, [entry(1)], highest=highest)
    store.save(first, [entry(2)], highest=highest)  # began before: must not lower it
    again = store.get(alice, mine.id)
    assert again is not None and again.classification == "confidential"
    assert [e["content"] for e in store.entries(mine.id)] == ["0", "1", "2"]

    other = _new(alice, "person-2")
    store.save(other, [entry(3)])
    assert store.erase_subject("person-1", "acme") == 1
    assert store.get(alice, mine.id) is None and store.entries(mine.id) == []
    with store.database.begin() as conn:  # idle for 10 days
        conn.execute(update(conversations).where(conversations.c.id == other.id)
                     .values(updated_at=time.time() - 10 * 86400))  # fmt: skip
    assert store.purge_by_retention({"acme": 30}) == 0
    assert store.purge_by_retention({"globex": 1}) == 0  # not acme's rule, no "*"
    assert store.purge_by_retention({"globex": 1, "*": 7}) == 1
    assert store.get(alice, other.id) is None


def _entry_reads(engine: Engine) -> list[dict[str, Any]]:
    """The parameters of every read of conversation entries on `engine`, as they happen."""
    reads: list[dict[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "conversation_entries" in statement:
            reads.append(parameters)

    event.listen(engine, "before_cursor_execute", seen)
    return reads


def test_a_replica_reads_only_what_it_has_not_seen(database_url: str) -> None:
    engine = migrated(database_url)
    writer, reader = (
        ConversationStore(engine, HistoryCache()),
        ConversationStore(engine, HistoryCache()),
    )
    conversation = _new(Owner("acme", 1, "user:1"))
    owner = conversation.owner
    writer.save(conversation, [entry(n) for n in range(3)])
    reads = _entry_reads(engine)

    def history(store: ConversationStore) -> list[Any]:
        loaded = store.load(owner, conversation.id)
        assert loaded is not None
        return [value["content"] for value in loaded[1]]

    assert history(reader) == ["0", "1", "2"] and len(reads) == 1  # read whole, once
    assert history(reader) == ["0", "1", "2"] and len(reads) == 1  # same version: no read
    assert history(writer) == ["0", "1", "2"] and len(reads) == 1  # its own write, kept

    turn = writer.get(owner, conversation.id)
    assert turn is not None
    writer.save(turn, [entry(3), entry(4)])
    assert history(reader) == ["0", "1", "2", "3", "4"]
    assert len(reads) == 2 and 3 in _values(reads[-1])  # from ordinal 3 on only

    # An old entry rewritten (a call's confirmation status): the copy is read again whole.
    loaded = writer.load(owner, conversation.id)
    assert loaded is not None
    turn, entries = loaded
    entries[0]["content"] = "changed"
    writer.save(turn, [entry(5)], changed=[entries[0]])
    assert history(reader) == ["changed", "1", "2", "3", "4", "5"]
    assert 3 not in _values(reads[-1])
    # Changing a copy handed out does not change the next one.
    loaded = reader.load(owner, conversation.id)
    assert loaded is not None
    loaded[1][1]["content"] = "scribbled"
    assert history(reader)[1] == "1"

    # Deleted by the other replica: this one answers missing and forgets its copy.
    assert writer.delete(owner, conversation.id)
    assert reader.load(owner, conversation.id) is None and reader.entries(conversation.id) == []
    assert reader.cache is not None and len(reader.cache) == 0


def test_history_cache_bounds() -> None:
    cache = HistoryCache(max_conversations=2, max_chars=100, max_idle_s=60)
    cache.put("a", 1, [{"id": "e"}], 10)
    cache.put("b", 1, [{"id": "e"}], 10)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", 1, [{"id": "e"}], 10)
    assert cache.get("b") is None and cache.get("a") is not None  # the least used went
    cache.put("d", 1, [{"id": "e"}], 95)
    assert len(cache) == 1 and cache.get("d") is not None  # characters bound the rest
    cache.put("huge", 1, [{"id": "e"}], 101)
    assert cache.get("huge") is None
    idle = HistoryCache(max_idle_s=0.0)
    idle.put("a", 1, [{"id": "e"}], 1)
    time.sleep(0.01)
    assert idle.get("a") is None


def test_migration_counts_the_entries_of_existing_conversations(database_url: str) -> None:
    engine = open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    upgrade(engine, "0013")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO conversations (id, tenant, tenant_id, owner, subject, settings, "
            "created_at, updated_at) VALUES ('conv_old', 'acme', 1, 'user:1', 's', '{}', 0, 0)"
        ))  # fmt: skip
        for n in range(3):
            conn.execute(text(
                "INSERT INTO conversation_entries (id, conversation_id, ordinal, type, body, "
                f"created_at) VALUES ('e{n}', 'conv_old', {n}, 'message.input', "
                f"'{{\"id\": \"e{n}\", \"type\": \"message.input\", \"content\": \"{n}\"}}', 0)"
            ))  # fmt: skip
    upgrade(engine)
    store = ConversationStore(engine, HistoryCache())
    owner = Owner("acme", 1, "user:1")
    turn = store.get(owner, "conv_old")
    assert turn is not None and (turn.version, turn.entry_count) == (1, 3)
    store.save(turn, [entry(3)])
    assert [value["content"] for value in store.entries("conv_old")] == ["0", "1", "2", "3"]


def _values(parameters: Any) -> list[Any]:
    if isinstance(parameters, dict):
        return list(parameters.values())
    return list(parameters)
