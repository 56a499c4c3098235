"""`/v1/conversations` end to end with the mistralai SDK over loopback (Mistral's shapes).

The model is an `openai` deployment to `AgentUpstream` (tests/conversation_upstream.py,
the recording upstream as a named fake playing a tool-using model), so that every turn
is deterministic and what left the gateway can be checked; one test runs the embedded
SmolLM2 with a forced tool call (constrained decoding).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from .conftest import Server, start_server, stop_server
from .conversation_upstream import AgentUpstream
from .test_responses_api import user_key

ECHO = {
    "type": "function",
    "function": {
        "name": "echo",
        "description": "Repeat the text",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def agent_upstream() -> Iterator[AgentUpstream]:
    recorder = AgentUpstream().start()
    yield recorder
    recorder.stop()


@pytest.fixture(scope="module")
def gateway(
    agent_upstream: AgentUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    config = {
        "models": [{"id": "cloud", "deployments": [{**agent_upstream.deployment(), "name": "eu"}]}]
    }
    server = start_server(tmp_path_factory.mktemp("conversations-gw"), config)
    yield server
    stop_server(server)


def client(gateway: Server, key: str | None = None) -> Mistral:
    return Mistral(api_key=key or gateway.key, server_url=gateway.url)


def call(
    gateway: Server, method: str, path: str, key: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or gateway.key}"}
    return httpx.request(method, gateway.url + path, headers=headers, timeout=60, **kwargs)


# ---- function tools: the round trip -------------------------------------------------------


def test_function_tool_round_trip(gateway: Server, agent_upstream: AgentUpstream) -> None:
    sdk = client(gateway)
    first = sdk.beta.conversations.start(
        model="cloud", inputs="Bonjour", tools=[ECHO], instructions="Be brief.",
        completion_args={"temperature": 0.2, "max_tokens": 40},
    )  # fmt: skip
    assert first.object == "conversation.response"
    [called] = first.outputs
    assert called.type == "function.call" and called.name == "echo"
    assert json.loads(called.arguments) == {"text": "Bonjour"}  # type: ignore[arg-type]
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (10, 5)
    sent = agent_upstream.received[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Bonjour"}]  # fmt: skip
    assert sent["temperature"] == 0.2 and sent["tools"][0]["function"]["name"] == "echo"

    second = sdk.beta.conversations.append(
        conversation_id=first.conversation_id,
        inputs=[{"type": "function.result", "tool_call_id": called.tool_call_id, "result": "42"}],
    )
    [answer] = second.outputs
    assert answer.type == "message.output" and answer.content == "result: 42"
    sent = agent_upstream.received[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool"]
    assert sent["messages"][2]["tool_calls"][0]["id"] == called.tool_call_id

    history = sdk.beta.conversations.get_history(conversation_id=first.conversation_id)
    kinds = [e.type for e in history.entries]
    assert kinds == ["message.input", "function.call", "function.result", "message.output"]
    messages = sdk.beta.conversations.get_messages(conversation_id=first.conversation_id)
    assert [m.type for m in messages.messages] == ["message.input", "message.output"]
    got = sdk.beta.conversations.get(conversation_id=first.conversation_id)
    assert got.id == first.conversation_id and got.model == "cloud"  # type: ignore[union-attr]
    listed = sdk.beta.conversations.list(page=0, page_size=10)
    assert first.conversation_id in [c.id for c in listed]

    sdk.beta.conversations.delete(conversation_id=first.conversation_id)
    with pytest.raises(SDKError) as missing:
        sdk.beta.conversations.get(conversation_id=first.conversation_id)
    assert missing.value.status_code == 404


def test_streamed_round_trip(gateway: Server) -> None:
    sdk = client(gateway)
    events = list(sdk.beta.conversations.start_stream(model="cloud", inputs="Salut", tools=[ECHO]))
    kinds = [e.event for e in events]
    assert kinds == ["conversation.response.started", "function.call.delta",
                     "conversation.response.done"]  # fmt: skip
    conversation_id = events[0].data.conversation_id  # type: ignore[union-attr]
    call_event = events[1].data
    assert call_event.name == "echo" and json.loads(call_event.arguments) == {"text": "Salut"}  # type: ignore[union-attr]
    assert events[-1].data.usage.total_tokens == 15  # type: ignore[union-attr]

    more = list(sdk.beta.conversations.append_stream(
        conversation_id=conversation_id,
        inputs=[{"type": "function.result", "tool_call_id": call_event.tool_call_id,  # type: ignore[union-attr]
                 "result": "sept"}],
    ))  # fmt: skip
    kinds = [e.event for e in more]
    assert kinds[0] == "conversation.response.started" and kinds[-1] == "conversation.response.done"
    text = "".join(e.data.content for e in more if e.event == "message.output.delta")  # type: ignore[union-attr]
    assert text == "result: sept"
    history = sdk.beta.conversations.get_history(conversation_id=conversation_id)
    assert [e.type for e in history.entries][-1] == "message.output"
    assert history.entries[-1].content == "result: sept"  # type: ignore[union-attr]


def test_restart_from_an_entry(gateway: Server, agent_upstream: AgentUpstream) -> None:
    sdk = client(gateway)
    first = sdk.beta.conversations.start(model="cloud", inputs="un")
    second = sdk.beta.conversations.append(conversation_id=first.conversation_id, inputs="deux")
    assert second.outputs[0].content == "deux"  # type: ignore[union-attr]
    history = sdk.beta.conversations.get_history(conversation_id=first.conversation_id)
    restarted = sdk.beta.conversations.restart(
        conversation_id=first.conversation_id, from_entry_id=history.entries[1].id, inputs="trois"
    )
    assert restarted.conversation_id != first.conversation_id
    assert restarted.outputs[0].content == "trois"  # type: ignore[union-attr]
    sent = [m["content"] for m in agent_upstream.received[-1]["messages"]]
    assert sent == ["un", "un", "trois"]  # deux and its answer are not in the new one
    fork = sdk.beta.conversations.get_history(conversation_id=restarted.conversation_id)
    assert [e.type for e in fork.entries] == ["message.input", "message.output"] * 2
    old = sdk.beta.conversations.get_history(conversation_id=first.conversation_id)
    assert len(old.entries) == 4  # the original is untouched
    streamed = list(sdk.beta.conversations.restart_stream(
        conversation_id=first.conversation_id, from_entry_id=history.entries[1].id, inputs="quatre"
    ))  # fmt: skip
    assert streamed[0].event == "conversation.response.started"
    assert streamed[0].data.conversation_id not in (
        first.conversation_id,
        restarted.conversation_id,
    )  # type: ignore[union-attr]
    text = "".join(e.data.content for e in streamed if e.event == "message.output.delta")  # type: ignore[union-attr]
    assert text == "quatre" and streamed[-1].event == "conversation.response.done"
    bad = call(gateway, "POST", f"/v1/conversations/{first.conversation_id}/restart",
               json={"from_entry_id": "msg_nope", "inputs": "x"})  # fmt: skip
    assert bad.status_code == 404 and bad.json()["error"]["param"] == "from_entry_id"


# ---- scope: owner and tenant --------------------------------------------------------------


def test_another_owner_or_tenant_gets_404(gateway: Server) -> None:
    alice = user_key(gateway, "conv-a")
    bob = user_key(gateway, "conv-a")
    eve = user_key(gateway, "conv-b")
    started = client(gateway, alice).beta.conversations.start(model="cloud", inputs="secret")
    path = f"/v1/conversations/{started.conversation_id}"
    for key in (bob, eve, gateway.key):  # the platform's admin key is another owner too
        for method, suffix, body in (("GET", "", None), ("GET", "/history", None),
                                     ("GET", "/messages", None), ("POST", "", {"inputs": "x"}),
                                     ("POST", "/restart", {"from_entry_id": "x", "inputs": "x"}),
                                     ("DELETE", "", None)):  # fmt: skip
            answer = call(gateway, method, path + suffix, key, json=body)
            assert answer.status_code == 404, (method, suffix, answer.text)
            assert answer.json()["error"]["type"] == "not_found_error"
        assert started.conversation_id not in [
            c["id"] for c in call(gateway, "GET", "/v1/conversations", key).json()
        ]
    assert call(gateway, "GET", path, alice).status_code == 200


def test_endpoint_scope_is_conversations(gateway: Server) -> None:
    key = user_key(gateway, "conv-scope", endpoints=["chat"])
    answer = call(gateway, "POST", "/v1/conversations", key, json={"model": "cloud", "inputs": "x"})
    assert answer.status_code == 403 and "conversations" in answer.json()["error"]["message"]
    # ... and a key may be given that scope alone (keys could not name it at first).
    key = user_key(gateway, "conv-scope-2", endpoints=["conversations"])
    answer = call(gateway, "POST", "/v1/conversations", key, json={"model": "cloud", "inputs": "x"})
    assert answer.status_code == 200, answer.text


# ---- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "cloud"}, 400, "inputs"),
        ({"inputs": "x"}, 400, "agent_id or model"),
        ({"inputs": "x", "model": "cloud", "agent_id": "ag_1"}, 400, "agent_id or model"),
        ({"inputs": "x", "model": "nope"}, 404, "nope"),
        ({"inputs": "x", "agent_id": "ag_missing"}, 404, "ag_missing"),
        ({"inputs": "x", "model": "cloud", "tools": [{"type": "web_search"}]}, 400, "web_search"),
        ({"inputs": "x", "model": "cloud", "tools": [{"type": "nope"}]}, 400, "nope"),
        ({"inputs": [{"type": "agent.handoff"}], "model": "cloud"}, 400, "agent.handoff"),
        ({"inputs": [{"role": "system", "content": "x"}], "model": "cloud"}, 400, "role"),
        ({"inputs": [{"role": "user", "content": [{"type": "audio"}]}], "model": "cloud"}, 400, "chunks"),
        ({"inputs": [], "model": "cloud"}, 400, "inputs"),
        ({"inputs": "x", "model": "cloud", "completion_args": {"bogus": 1}}, 400, "bogus"),
        ({"inputs": "x", "model": "cloud", "completion_args": {"temperature": 9}}, 400, "temperature"),
        ({"inputs": [{"type": "function.result", "tool_call_id": "c", "result": "r"}], "model": "cloud"},
         400, "no such function call"),
    ],
)  # fmt: skip
def test_bad_start_is_refused(
    gateway: Server, body: dict[str, Any], status: int, words: str
) -> None:
    answer = call(gateway, "POST", "/v1/conversations", json=body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert words in error["message"] + str(error.get("param")), error


def test_append_needs_the_pending_function_result(gateway: Server) -> None:
    sdk = client(gateway)
    started = sdk.beta.conversations.start(model="cloud", inputs="Bonjour", tools=[ECHO])
    path = f"/v1/conversations/{started.conversation_id}"
    answer = call(gateway, "POST", path, json={"inputs": "and now?"})
    assert (
        answer.status_code == 400 and answer.json()["error"]["code"] == "function_result_required"
    )
    answer = call(
        gateway,
        "POST",
        path,
        json={"tool_confirmations": [{"tool_call_id": "x", "confirmation": "allow"}]},
    )
    assert answer.status_code == 400 and "awaits" in answer.json()["error"]["message"]
    assert call(gateway, "POST", path, json={}).status_code == 400
    assert call(gateway, "GET", "/v1/conversations?metadata=[1]").status_code == 400


def test_store_false_keeps_nothing(gateway: Server) -> None:
    answer = call(
        gateway, "POST", "/v1/conversations", json={"model": "cloud", "inputs": "x", "store": False}
    )
    assert answer.status_code == 200
    conversation_id = answer.json()["conversation_id"]
    assert call(gateway, "GET", f"/v1/conversations/{conversation_id}").status_code == 404


def test_list_pages_and_metadata(gateway: Server) -> None:
    key = user_key(gateway, "conv-list")
    sdk = client(gateway, key)
    ids = [sdk.beta.conversations.start(model="cloud", inputs=str(n), metadata={"n": n}, name=f"c{n}").conversation_id
           for n in range(3)]  # fmt: skip
    listed = sdk.beta.conversations.list(page=0, page_size=2)
    assert [c.id for c in listed] == ids[::-1][:2]
    assert [c.id for c in sdk.beta.conversations.list(page=1, page_size=2)] == [ids[0]]
    assert [c.id for c in sdk.beta.conversations.list(metadata={"n": 1})] == [ids[1]]
    assert listed[0].name == "c2"  # type: ignore[union-attr]


def test_erasure_deletes_the_subjects_conversations(gateway: Server) -> None:
    key = user_key(gateway, "conv-erase")
    sdk = client(gateway, key)
    mine = sdk.beta.conversations.start(model="cloud", inputs="x", metadata={"subject": "person-7"})
    other = sdk.beta.conversations.start(
        model="cloud", inputs="y", metadata={"subject": "person-8"}
    )
    erased = call(gateway, "POST", "/admin/v1/audit/erase", json={"subject": "person-7"})
    assert erased.status_code == 200, erased.text
    assert erased.json()["conversations_deleted"] == 1
    assert call(gateway, "GET", f"/v1/conversations/{mine.conversation_id}", key).status_code == 404
    assert (
        call(gateway, "GET", f"/v1/conversations/{other.conversation_id}", key).status_code == 200
    )


# ---- the embedded model ---------------------------------------------------------------------


def test_embedded_model_calls_a_function_tool(embedded: Server) -> None:
    """SmolLM2 in this process: a forced first step (constrained decoding) makes the call;
    after the result the turn's later steps choose freely."""
    weather = {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 30}},
                "required": ["city"],
            },
        },
    }
    sdk = client(embedded)
    first = sdk.beta.conversations.start(
        model="smollm2", inputs="What is the weather in Paris?", tools=[weather],
        completion_args={"tool_choice": "any", "max_tokens": 60, "temperature": 0},
    )  # fmt: skip
    called = first.outputs[-1]
    assert called.type == "function.call" and called.name == "weather"  # type: ignore[union-attr]
    assert isinstance(json.loads(called.arguments)["city"], str)  # type: ignore[union-attr,arg-type]
    second = sdk.beta.conversations.append(
        conversation_id=first.conversation_id,
        inputs=[{"type": "function.result", "tool_call_id": called.tool_call_id,  # type: ignore[union-attr]
                 "result": "Sunny, 21 degrees"}],
        completion_args={"max_tokens": 20, "tool_choice": "none"},
    )  # fmt: skip
    assert second.outputs[-1].type == "message.output"
    assert second.usage.completion_tokens and second.usage.completion_tokens <= 20
