"""`/v1/responses` on the conversation runtime: a response chain is a conversation.

The openai SDK drives `/v1/responses`; the mistralai SDK reads the same turns back through
`/v1/conversations`. The model is an `openai` deployment to `RecordingUpstream`
(tests/recording_upstream.py, a named fake that records every body and echoes the last
user message, or calls the offered `echo` tool), so what left the gateway is known.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from mistralai.client import Mistral

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream
from .test_responses_api import ECHO_TOOL, user_key


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    eu = upstream.deployment()
    onprem = upstream.deployment(jurisdiction="on-prem", operator="Us")
    us = upstream.deployment(jurisdiction="US", operator="US Cloud", retention_days=30)
    config: dict[str, object] = {
        "models": [{"id": "cloud", "deployments": [{**eu, "name": "eu"}]},
                   {"id": "onprem", "deployments": [{**onprem, "name": "basement"}]},
                   {"id": "foreign", "deployments": [{**us, "name": "us"}]}],
        "agents": {"tenants": {"hasty": {"max_seconds": 0.001}}},
    }  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("responses-runtime"), config)
    yield server
    stop_server(server)


def sdk(gateway: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=key, max_retries=0)


def conversations(gateway: Server, key: str) -> dict[str, list[dict[str, Any]]]:
    """Every conversation of the key's owner, with its entries (mistralai SDK)."""
    client = Mistral(api_key=key, server_url=gateway.url)
    found = {}
    for conversation in client.beta.conversations.list(page=0, page_size=100):
        history = client.beta.conversations.get_history(conversation_id=conversation.id)
        found[conversation.id] = [entry.model_dump(mode="json") for entry in history.entries]
    return found


def sent_texts(upstream: RecordingUpstream) -> list[Any]:
    return [message["content"] for message in upstream.received[-1]["messages"]]


def test_a_chain_is_one_conversation(gateway: Server) -> None:
    key = user_key(gateway, "chain")
    client = sdk(gateway, key)
    first = client.responses.create(model="cloud", input="un", instructions="Sois bref.")
    second = client.responses.create(model="cloud", input="deux", previous_response_id=first.id)
    called = client.responses.create(model="cloud", input="trois", tools=[ECHO_TOOL],  # type: ignore[list-item]
                                     previous_response_id=second.id)  # fmt: skip
    [call] = [item for item in called.output if item.type == "function_call"]
    last = client.responses.create(
        model="cloud", previous_response_id=called.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "fait"}],
    )  # fmt: skip
    [(conversation_id, entries)] = conversations(gateway, key).items()
    assert [(e["type"], e.get("content") or e.get("name") or e.get("result")) for e in entries] == [
        ("message.input", "un"), ("message.output", "un"),
        ("message.input", "deux"), ("message.output", "deux"),
        ("message.input", "trois"), ("function.call", "echo"),
        ("function.result", "fait"), ("message.output", "trois"),  # the echo's last user text
    ]  # fmt: skip
    # The items the responses returned are the conversation's entries, under their ids.
    returned = [item.id for r in (first, second, called, last) for item in r.output]
    outputs = [e["id"] for e in entries if e["type"] in ("message.output", "function.call")]
    assert returned == outputs
    assert entries[5]["tool_call_id"] == call.call_id
    assert client.responses.retrieve(second.id).output_text == "deux"
    listed = client.responses.input_items.list(last.id)
    assert [item.type for item in listed.data] == ["function_call_output"]
    # The conversation is an ordinary one: the Conversations API may go on with it.
    more = Mistral(api_key=key, server_url=gateway.url).beta.conversations.append(
        conversation_id=conversation_id, inputs="quatre"
    )
    assert more.outputs[0].content == "quatre"  # type: ignore[union-attr]


def test_branching_from_an_earlier_response_keeps_both_branches(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    key = user_key(gateway, "branch")
    client = sdk(gateway, key)
    root = client.responses.create(model="cloud", input="racine")
    left = client.responses.create(model="cloud", input="gauche", previous_response_id=root.id)
    right = client.responses.create(model="cloud", input="droite", previous_response_id=root.id)
    assert sent_texts(upstream) == ["racine", "racine", "droite"]  # not the other branch
    again = client.responses.create(model="cloud", input="encore", previous_response_id=left.id)
    assert sent_texts(upstream) == ["racine", "racine", "gauche", "gauche", "encore"]
    client.responses.create(model="cloud", input="aussi", previous_response_id=right.id)
    assert sent_texts(upstream) == ["racine", "racine", "droite", "droite", "aussi"]
    talks = conversations(gateway, key)
    texts = sorted([e["content"] for e in entries if e["type"] == "message.input"]
                   for entries in talks.values())  # fmt: skip
    assert texts == [["racine", "droite", "aussi"], ["racine", "gauche", "encore"]]
    for response in (root, left, right):
        assert client.responses.retrieve(response.id).output_text == response.output_text

    # Deleting the root deletes its entries in both branches (the branch holds a copy).
    client.responses.delete(root.id)
    texts = sorted([e["content"] for e in entries if e["type"] == "message.input"]
                   for entries in conversations(gateway, key).values())  # fmt: skip
    assert texts == [["droite", "aussi"], ["gauche", "encore"]]
    assert "racine" not in json.dumps(conversations(gateway, key))  # its answer's copies too
    assert client.responses.retrieve(left.id).output_text == "gauche"
    # The next step reads the conversation without the deleted turn (no stale copy).
    on = client.responses.create(model="cloud", input="suite", previous_response_id=again.id)
    assert "racine" not in sent_texts(upstream) and on.output_text == "suite"


def test_a_chain_that_read_restricted_data_stays_restricted(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    client = sdk(gateway, user_key(gateway, "sticky"))
    secret = client.responses.create(
        model="onprem", input="Le dossier", metadata={"classification": "restricted"}
    )
    before = len(upstream.received)
    for stream in (False, True):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.responses.create(model="foreign", input="Bonjour", stream=stream,
                                    previous_response_id=secret.id)  # fmt: skip
        error = refused.value.body
        assert isinstance(error, dict) and error["code"] == "policy_denied"
        assert "restricted.jurisdictions" in error["message"]
    assert len(upstream.received) == before  # nothing left for the foreign deployment
    # A harmless message does not lower it: on-prem it goes on, still restricted.
    raw = client.responses.with_raw_response.create(
        model="onprem", input="Bonjour", previous_response_id=secret.id
    )
    assert raw.headers["x-souverain-classification"] == "restricted"
    # A branch (from the first response, no longer the latest) keeps the level too.
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="foreign", input="Ailleurs", previous_response_id=secret.id)
    assert len(upstream.received) == before + 1


def test_another_tenants_previous_response_is_missing(gateway: Server) -> None:
    mine = sdk(gateway, user_key(gateway, "owner-a")).responses.create(model="cloud", input="à moi")
    stranger = user_key(gateway, "owner-b")
    for response_id in (mine.id, "resp_" + "0" * 32, "r" * 100_000, "résumé"):
        with pytest.raises(openai.NotFoundError) as missing:
            sdk(gateway, stranger).responses.create(
                model="cloud", input="x", previous_response_id=response_id
            )
        assert missing.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert conversations(gateway, stranger) == {}
    for path in ("resp_" + "é" * 50, mine.id.upper(), "r" * 5000):
        for method in ("GET", "DELETE"):
            answer = httpx.request(method, f"{gateway.v1}/responses/{path}", timeout=30,
                                   headers={"Authorization": f"Bearer {stranger}"})  # fmt: skip
            assert answer.status_code == 404, answer.text


def test_store_false_leaves_nothing(gateway: Server, upstream: RecordingUpstream) -> None:
    key = user_key(gateway, "ephemeral")
    client = sdk(gateway, key)
    alone = client.responses.create(model="cloud", input="éphémère", store=False)
    streamed = list(client.responses.create(model="cloud", input="flux", store=False, stream=True))
    assert streamed[-1].type == "response.completed"
    assert conversations(gateway, key) == {}
    for response_id in (alone.id, streamed[-1].response.id):
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(response_id)
    kept = client.responses.create(model="cloud", input="gardé")
    client.responses.create(
        model="cloud", input="oublié", previous_response_id=kept.id, store=False
    )
    assert sent_texts(upstream) == ["gardé", "gardé", "oublié"]  # the chain was read
    [entries] = conversations(gateway, key).values()
    assert [e.get("content") for e in entries] == ["gardé", "gardé"]  # and not added to


def test_a_turn_limit_is_a_400_in_the_responses_error_shape(gateway: Server) -> None:
    key = user_key(gateway, "hasty")
    for stream in (False, True):
        answer = httpx.post(gateway.v1 + "/responses", timeout=30,
                            json={"model": "cloud", "input": "vite", "stream": stream},
                            headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert (error["code"], error["param"]) == ("agent_limit_reached", "max_seconds")
    assert conversations(gateway, key) == {}


def test_erasure_and_deletion_reach_the_entries(gateway: Server) -> None:
    key = user_key(gateway, "erase-chain")
    client = sdk(gateway, key)
    theirs = client.responses.create(model="cloud", input="à effacer", user="gone@example.eu")
    kept = client.responses.create(model="cloud", input="reste", user="stays@example.eu",
                                   previous_response_id=theirs.id)  # fmt: skip
    other = client.responses.create(model="cloud", input="autre", user="stays@example.eu")
    erased = httpx.post(gateway.url + "/admin/v1/audit/erase", json={"subject": "gone@example.eu"},
                        headers={"Authorization": f"Bearer {gateway.key}"}, timeout=30)  # fmt: skip
    assert erased.status_code == 200, erased.text
    # The chain's conversation was made for the erased subject: it goes, with every
    # response it held; the other subject's own conversation stays (checked below).
    assert erased.json()["stored_responses_deleted"] == 2
    for gone in (theirs, kept):
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(gone.id)
    assert client.responses.retrieve(other.id).output_text == "autre"
    [entries] = conversations(gateway, key).values()
    assert json.dumps(entries).count("autre") == 2 and "effacer" not in json.dumps(entries)


# ---- the index, on SQLite and PostgreSQL ----------------------------------------------


def test_the_index_scopes_deletes_copies_erases_and_drops_orphans(database_url: str) -> None:
    from souverain.agents.conversation_store import Conversation, ConversationStore
    from souverain.agents.items import item_id
    from souverain.agents.store import Owner, ResponseStore
    from souverain.context import Principal
    from souverain.store.database import open_database, upgrade

    engine = open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    upgrade(engine)
    index, talks = ResponseStore(engine), ConversationStore(engine)
    alice, bob = Owner("acme", 1, "user:1"), Owner("acme", 1, "user:2")
    serial = iter(range(1000))
    resp_root, resp_right, resp_bob = item_id("resp"), item_id("resp"), item_id("resp")

    def entry(response_id: str, text: str) -> dict[str, Any]:
        return {"type": "message.input", "id": f"msg_{next(serial)}", "role": "user",
                "content": text, "_response": response_id}  # fmt: skip

    def keep(owner: Owner, subject: str, response_id: str, *entries: dict[str, Any],
             copies: tuple[dict[str, Any], ...] = ()) -> str:  # fmt: skip
        conversation = Conversation(id=f"conv_{next(serial)}", owner=owner, subject=subject,
                                    agent_id=None, agent_version=None, model="m", settings={})  # fmt: skip
        talks.save(conversation, [*copies, *entries])
        index.save(owner, subject=subject, conversation_id=conversation.id,
                   entry_ids=[e["id"] for e in entries], classification=None,
                   body={"id": response_id, "model": "m", "status": "completed", "output": []})  # fmt: skip
        return conversation.id

    root = entry(resp_root, "racine")
    main = keep(alice, "alice", resp_root, root)
    # A branch from resp_root: a copy of its entry (new id, same tag), then its own.
    branch = keep(alice, "alice", resp_right, entry(resp_right, "droite"),
                  copies=({**root, "id": f"msg_{next(serial)}"},))  # fmt: skip
    theirs = keep(bob, "bob", resp_bob, entry(resp_bob, "bob"))

    found = index.get(alice, resp_root)
    assert found is not None and found.conversation_id == main
    assert [e["content"] for e in index.entries(found)] == ["racine"]
    for stranger in (bob, Owner("acme", 9, "user:1"), Owner("globex", 2, "user:1")):
        assert index.get(stranger, resp_root) is None
        assert index.delete(stranger, resp_root) is False
    assert index.delete(alice, resp_root) is True
    assert talks.get(alice, main) is None  # left without entries: gone
    assert [e["content"] for e in talks.entries(branch)] == ["droite"]  # the copy went too

    assert index.erase_subject("alice", "globex") == 0  # not in that tenant
    assert index.erase_subject("alice", "acme") == 1
    assert index.get(alice, resp_right) is None and talks.get(alice, branch) is None
    assert index.get(bob, resp_bob) is not None
    talks.delete(bob, theirs)  # through the Conversations API
    assert index.get(bob, resp_bob) is None  # its conversation is gone: so is it
    assert index.drop_orphans() == 1
    # A long OIDC subject owns by its digest (the owner column holds 300 characters).
    token_user = Principal(key_id=None, name="t", role="user", subject="oidc:corp:" + "s" * 400)
    long = Owner.of(token_user)
    assert long.owner.startswith("sha256:")
    keep(long, "s", resp_bob, entry(resp_bob, "long"))
    assert index.get(long, resp_bob) is not None
    engine.dispose()
