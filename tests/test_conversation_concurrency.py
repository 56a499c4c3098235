"""Concurrent turns of one conversation on SQLite and PostgreSQL (agents/conversation_writes.py):
appends at once lose and interleave nothing, a pause for approval survives a concurrent
turn, and of two decisions on one pending call only one is taken; the last also over
HTTP, on a real gateway with a real MCP server (the fixtures of
tests/test_conversations_agents.py): the approved call runs once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from souverain.agents.conversation_cache import HistoryCache
from souverain.agents.conversation_store import Conversation, ConversationStore
from souverain.agents.store import Owner
from souverain.errors import Conflict, NotFound

from .conftest import Server
from .test_conversation_store import entry, highest, migrated
from .test_conversations_agents import (  # noqa: F401  (fixtures: a gateway and its MCP server)
    acme,
    agent,
    agent_upstream,
    crm,
    gateway,
    http,
    mcp,
    tool_leaves,
)

OWNER = Owner("acme", 1, "user:1")


def _pending(call_id: str) -> dict[str, Any]:
    return {"tool_call_id": call_id, "name": "wire", "arguments": "{}", "entry_id": "fc_" + call_id}


def _started(store: ConversationStore) -> Conversation:
    conversation = Conversation(id=f"conv_{time.time_ns()}", owner=OWNER, subject="s",
                                agent_id=None, agent_version=None, model="m", settings={})  # fmt: skip
    store.save(conversation, [entry("first")])
    return conversation


def _read(store: ConversationStore, conversation_id: str) -> Conversation:
    found = store.get(OWNER, conversation_id)
    assert found is not None
    return found


def _at_once(*work: Callable[[], Any]) -> list[Any]:
    """Run each callable in its own thread, released together; results or exceptions."""
    barrier = threading.Barrier(len(work))
    results: list[Any] = [None] * len(work)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work[index]()
        except Exception as exc:  # the test inspects it
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_appends_at_once_keep_every_entry_in_turn_order(database_url: str) -> None:
    engine = migrated(database_url)
    # Two replicas: each its own store and history cache, one database.
    replicas = [ConversationStore(engine, HistoryCache()) for _ in range(2)]
    conversation = _started(replicas[0])
    rounds = 12

    def turn(store: ConversationStore, name: str, n: int) -> None:
        loaded = store.load(OWNER, conversation.id)
        assert loaded is not None
        mine, _ = loaded
        store.save(mine, [entry(f"{name}{n}-in"), entry(f"{name}{n}-out")], highest=highest)

    for n in range(rounds):
        results = _at_once(partial(turn, replicas[0], "a", n), partial(turn, replicas[1], "b", n))
        assert results == [None, None]  # both kept: neither refused nor lost
    fresh = ConversationStore(engine)  # no cache: what the database holds
    contents = [value["content"] for value in fresh.entries(conversation.id)]
    assert len(contents) == 1 + 4 * rounds
    pairs = list(zip(contents[1::2], contents[2::2], strict=True))
    assert all(a.endswith("-in") and b == a[:-3] + "-out" for a, b in pairs)  # not interleaved
    assert sorted(a for a, _ in pairs) == sorted(
        f"{name}{n}-in" for n in range(rounds) for name in "ab"
    )
    stored = fresh.get(OWNER, conversation.id)
    assert stored is not None
    assert stored.version == 1 + 2 * rounds and stored.entry_count == len(contents)
    for store in replicas:  # each replica's next read sees exactly the database's history
        loaded = store.load(OWNER, conversation.id)
        assert loaded is not None and [v["content"] for v in loaded[1]] == contents


def test_a_concurrent_turn_keeps_the_pause_and_the_higher_level(database_url: str) -> None:
    store = ConversationStore(migrated(database_url), HistoryCache())
    conversation = _started(store)
    first, second = store.get(OWNER, conversation.id), store.get(OWNER, conversation.id)
    assert first is not None and second is not None
    # The first turn pauses on a call that needs approval and reads restricted data...
    first.pending.append(_pending("call1"))
    first.classification = "restricted"
    store.save(first, [entry("first-turn")], highest=highest)
    # ...the second, begun before, pauses on another call: both wait, nothing falls.
    second.pending.append(_pending("call2"))
    second.classification = "internal"
    store.save(second, [entry("second-turn")], highest=highest)
    stored = store.get(OWNER, conversation.id)
    assert stored is not None
    assert [p["tool_call_id"] for p in stored.pending] == ["call1", "call2"]
    assert stored.classification == "restricted"

    # A third turn, begun before a decision on call1, pauses on nothing: call2 still waits,
    # call1 is gone once decided (claimed) and stays gone.
    third = store.get(OWNER, conversation.id)
    deciding = store.get(OWNER, conversation.id)
    assert third is not None and deciding is not None
    store.claim_decisions(deciding, {"call1"})
    assert [p["tool_call_id"] for p in deciding.pending] == ["call2"]
    store.save(third, [entry("third-turn")], highest=highest)
    stored = store.get(OWNER, conversation.id)
    assert stored is not None and [p["tool_call_id"] for p in stored.pending] == ["call2"]


def test_two_decisions_on_one_call_one_wins(database_url: str) -> None:
    engine = migrated(database_url)
    store = ConversationStore(engine, HistoryCache())
    conversation = _started(store)
    conversation.pending.append(_pending("call1"))
    store.save(conversation, [entry("paused")])
    for _ in range(3):  # a race is a race: several tries, each must have one winner
        deciders = [_read(store, conversation.id) for _ in range(2)]
        assert all(d.pending for d in deciders)
        results = _at_once(
            partial(store.claim_decisions, deciders[0], {"call1"}),
            partial(store.claim_decisions, deciders[1], {"call1"}),
        )
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "NoneType"]
        loser = next(r for r in results if isinstance(r, Conflict))
        assert loser.status_code == 409 and loser.param == "tool_confirmations"
        with pytest.raises(Conflict):  # decided: a late decision has nothing to take
            store.claim_decisions(deciders[0], {"call1"})
        again = store.get(OWNER, conversation.id)
        assert again is not None and again.pending == []
        again.pending.append(_pending("call1"))  # paused again, for the next try
        store.save(again, [entry("paused-again")])


def test_a_turn_on_a_deleted_conversation_keeps_nothing(database_url: str) -> None:
    store = ConversationStore(migrated(database_url), HistoryCache())
    conversation = _started(store)
    turn = store.get(OWNER, conversation.id)
    assert turn is not None
    other = store.get(OWNER, conversation.id)
    assert other is not None
    store.save(other, [entry("other")])  # so that the turn's write is not the first
    assert store.delete(OWNER, conversation.id)
    with pytest.raises(NotFound):
        store.save(turn, [entry("late")])
    assert ConversationStore(store.database).entries(conversation.id) == []


def test_two_approvals_at_once_over_http_run_the_call_once(
    gateway: Server,  # noqa: F811  (the fixture imported above)
    acme: dict[str, str],  # noqa: F811
) -> None:
    made = agent(gateway, acme["dev"], tools=[crm(include=["add"], requires_confirmation=["add"])])
    for n in range(3):
        paused = http(gateway, "POST", "/v1/conversations", acme["dev"],
                      {"agent_id": made["id"], "inputs": f'use:add {{"a": {n}, "b": 1}}'})  # fmt: skip
        assert paused.status_code == 200, paused.text
        [call] = paused.json()["outputs"]
        decision = {"tool_confirmations": [{"tool_call_id": call["tool_call_id"],
                                            "confirmation": "allow"}]}  # fmt: skip
        path = f"/v1/conversations/{paused.json()['conversation_id']}"
        # The owner and the tenant's admin decide at the same moment.
        with ThreadPoolExecutor(2) as pool:
            decide = partial(http, gateway, "POST", path, body=decision)
            answers = list(pool.map(decide, [acme["dev"], acme["admin"]]))
        ok = [a for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code != 200]
        assert len(ok) == 1 and len(refused) == 1, [a.text for a in answers]
        # Too late: 409 if it read the call as pending, else 400 (nothing awaits).
        error = refused[0].json()["error"]
        assert refused[0].status_code in (400, 409) and error["param"] == "tool_confirmations"
        [leaf] = tool_leaves(gateway, paused.json()["conversation_id"])  # it ran once
        assert leaf["approval"] == "allowed" and leaf["outcome"] == "ok"
        history = http(gateway, "GET", path + "/history", acme["dev"]).json()["entries"]
        assert [e["type"] for e in history].count("tool.execution") == 1
        assert history[1]["confirmation_status"] == "allowed"
