"""Conversations with agents and server-side tools, end to end over loopback.

A real MCP server (tests/mcp_server.py, the official `mcp` SDK) registered as a
connector; agents made with `/v1/agents`; the model an `openai` deployment to
`AgentUpstream` (tests/conversation_upstream.py: the recording upstream as a named fake
playing a tool-using model, so every loop is deterministic and what left the gateway is
recorded). Covers tool executions and their audit leaves, approvals (allow, deny, by a
tenant admin), handoffs, limits, data-loss prevention on tool results and the sticky
classification of a conversation. One test drives the embedded SmolLM2 (a forced tool
call by constrained decoding).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import count
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral

from . import mcp_server
from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .conversation_upstream import AgentUpstream

IBAN = mcp_server.IBAN
TOKEN = "mcp-" + "t0ken" * 8
_n = count()


@pytest.fixture(scope="module")
def agent_upstream() -> Iterator[AgentUpstream]:
    recorder = AgentUpstream().start()
    yield recorder
    recorder.stop()


@pytest.fixture(scope="module")
def mcp() -> Iterator[mcp_server.RunningServer]:
    server = mcp_server.start(token=TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(
    agent_upstream: AgentUpstream, mcp: mcp_server.RunningServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:  # fmt: skip
    eu = agent_upstream.deployment()
    us = agent_upstream.deployment(jurisdiction="US", operator="US Cloud", retention_days=30)
    config = {
        "models": [{"id": "cloud", "deployments": [{**eu, "name": "eu"}]},
                   {"id": "foreign", "deployments": [{**us, "name": "us"}]},
                   {"id": "emb", "type": "embeddings", "deployments": [{**eu, "name": "eu-emb"}]}],
        "libraries": {"embedding_model": "emb", "ocr": False},
        "agents": {"tenants": {"tight": {"max_tool_calls": 0}}},
    }  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("conversation-agents"), config)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def acme(gateway: Server, mcp: mcp_server.RunningServer) -> dict[str, str]:
    """Keys of tenant acme (admin, two developers) and its connector's name."""
    keys = {role: key_in(gateway, "acme", role) for role in ("admin", "dev", "dev2")}
    body = {"name": "crm", "url": mcp.mcp_url, "headers": {"Authorization": f"Bearer {TOKEN}"}}
    created = http(gateway, "POST", "/admin/v1/connectors", keys["admin"], body)
    assert created.status_code in (200, 201), created.text
    return keys


def http(gateway: Server, method: str, path: str, key: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.request(method, gateway.url + path, headers=headers, json=body, timeout=60)


def key_in(gateway: Server, tenant: str, role: str = "developer") -> str:
    http(gateway, "POST", "/admin/v1/tenants", ADMIN_KEY, {"name": tenant})
    role = "admin" if role == "admin" else "developer"
    user = http(gateway, "POST", "/admin/v1/users", ADMIN_KEY,
                {"name": f"u{next(_n)}", "role": role, "tenant": tenant}).json()  # fmt: skip
    made = http(gateway, "POST", "/admin/v1/keys", ADMIN_KEY,
                {"name": f"k{next(_n)}", "user_id": user["id"], "tenant": tenant})  # fmt: skip
    return str(made.json()["key"])


def agent(gateway: Server, key: str, **fields: Any) -> dict[str, Any]:
    body = {"model": "cloud", "name": f"agent{next(_n)}", **fields}
    made = http(gateway, "POST", "/v1/agents", key, body)
    assert made.status_code in (200, 201), made.text
    return dict(made.json())


def crm(**configuration: list[str]) -> dict[str, Any]:
    return {"type": "connector", "connector_id": "crm", "tool_configuration": configuration}


def sdk(gateway: Server, key: str) -> Mistral:
    return Mistral(api_key=key, server_url=gateway.url)


def tool_leaves(gateway: Server, conversation_id: str) -> list[dict[str, Any]]:
    found = http(gateway, "GET", "/admin/v1/audit/leaves?kind=tool&limit=1000", ADMIN_KEY)
    leaves = [row["leaf"] for row in found.json()["data"]]
    return [leaf for leaf in leaves if leaf.get("conversation") == conversation_id]


# ---- server-side tools ----------------------------------------------------------------------


def test_a_connector_tool_runs_here_and_leaves_a_leaf(
    gateway: Server, acme: dict[str, str], agent_upstream: AgentUpstream
) -> None:
    made = agent(gateway, acme["dev"], tools=[crm(include=["add"])])
    answer = sdk(gateway, acme["dev"]).beta.conversations.start(
        agent_id=made["id"], inputs='use:add {"a": 2, "b": 3}'
    )
    kinds = [entry.type for entry in answer.outputs]
    assert kinds == ["tool.execution", "message.output"]
    execution, message = answer.outputs
    assert execution.name == "add" and execution.info["ok"] is True  # type: ignore[union-attr]
    assert message.content == "result: 5" and message.agent_id == made["id"]  # type: ignore[union-attr]
    assert answer.usage.total_tokens == 30  # two model steps
    assert "add" in [t["function"]["name"] for t in agent_upstream.received[-1]["tools"]]
    [leaf] = tool_leaves(gateway, answer.conversation_id)
    assert (leaf["tool"], leaf["tool_kind"], leaf["connector"]) == ("add", "connector", "crm")
    assert leaf["outcome"] == "ok" and leaf["agent"] == made["id"] and leaf["approval"] is None
    assert not {"arguments", "result", "output", "a", "b"} & leaf.keys()  # never the payloads
    history = sdk(gateway, acme["dev"]).beta.conversations.get_history(
        conversation_id=answer.conversation_id
    )
    assert [e.type for e in history.entries] == ["message.input", *kinds]
    verified = http(gateway, "GET", "/admin/v1/audit/verify", ADMIN_KEY)
    assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text
    assert all("_output" not in e.model_dump_json() for e in history.entries)


def test_streamed_tool_execution_events(gateway: Server, acme: dict[str, str]) -> None:
    made = agent(gateway, acme["dev"], tools=[crm(include=["add"])])
    events = list(sdk(gateway, acme["dev"]).beta.conversations.start_stream(
        agent_id=made["id"], inputs='use:add {"a": 40, "b": 2}'
    ))  # fmt: skip
    kinds = [e.event for e in events]
    assert kinds[:3] == ["conversation.response.started", "tool.execution.started",
                         "tool.execution.done"]  # fmt: skip
    assert kinds[-1] == "conversation.response.done"
    text = "".join(e.data.content for e in events if e.event == "message.output.delta")  # type: ignore[union-attr]
    assert text == "result: 42"


def test_an_iban_from_a_tool_is_pseudonymized_and_the_level_sticks(
    gateway: Server, acme: dict[str, str], agent_upstream: AgentUpstream
) -> None:
    made = agent(gateway, acme["dev"], tools=[crm(include=["get_iban"])])
    client = sdk(gateway, acme["dev"])
    answer = client.beta.conversations.start(
        agent_id=made["id"], inputs='use:get_iban {"customer": "Dupont"}'
    )
    sent = json.dumps(agent_upstream.received[-1], ensure_ascii=False)
    assert agent_upstream.received[-1]["messages"][-1]["role"] == "tool"
    assert IBAN not in sent and IBAN.replace(" ", "") not in sent
    assert IBAN in answer.outputs[-1].content  # type: ignore[union-attr]  # restored for the caller
    # The agent now runs on a foreign-only model: the conversation read confidential data.
    updated = http(gateway, "PATCH", f"/v1/agents/{made['id']}", acme["dev"], {"model": "foreign"})
    assert updated.status_code == 200, updated.text
    refused = http(gateway, "POST", f"/v1/conversations/{answer.conversation_id}", acme["dev"],
                   {"inputs": "Bonjour"})  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert "confidential" in refused.json()["error"]["message"]
    fresh = client.beta.conversations.start(agent_id=made["id"], inputs="Bonjour")
    assert fresh.outputs[0].content == "Bonjour"  # type: ignore[union-attr]  # harmless: allowed


# ---- approvals ------------------------------------------------------------------------------


def test_approval_pauses_then_allow_runs_and_deny_stops(
    gateway: Server, acme: dict[str, str], agent_upstream: AgentUpstream
) -> None:
    made = agent(gateway, acme["dev"], tools=[crm(include=["add"], requires_confirmation=["add"])])
    client = sdk(gateway, acme["dev"])
    paused = client.beta.conversations.start(agent_id=made["id"], inputs='use:add {"a": 1, "b": 1}')
    [call] = paused.outputs
    assert call.type == "function.call" and call.confirmation_status == "pending"  # type: ignore[union-attr]
    path = f"/v1/conversations/{paused.conversation_id}"
    waiting = http(gateway, "POST", path, acme["dev"], {"inputs": "go on"})
    assert waiting.status_code == 400 and waiting.json()["error"]["code"] == "confirmation_required"
    resumed = client.beta.conversations.append(
        conversation_id=paused.conversation_id,
        tool_confirmations=[{"tool_call_id": call.tool_call_id, "confirmation": "allow"}],  # type: ignore[union-attr]
    )
    assert [e.type for e in resumed.outputs] == ["tool.execution", "message.output"]
    assert resumed.outputs[0].info["confirmation"] == "allowed"  # type: ignore[union-attr]
    assert resumed.outputs[1].content == "result: 2"  # type: ignore[union-attr]
    history = client.beta.conversations.get_history(conversation_id=paused.conversation_id)
    assert history.entries[1].confirmation_status == "allowed"  # type: ignore[union-attr]
    [leaf] = tool_leaves(gateway, paused.conversation_id)
    assert leaf["approval"] == "allowed" and leaf["approver"] and leaf["outcome"] == "ok"

    again = client.beta.conversations.start(agent_id=made["id"], inputs='use:add {"a": 5, "b": 5}')
    denied = client.beta.conversations.append(
        conversation_id=again.conversation_id,
        tool_confirmations=[
            {"tool_call_id": again.outputs[0].tool_call_id, "confirmation": "deny"}
        ],  # type: ignore[union-attr]
    )
    assert [e.type for e in denied.outputs] == ["tool.execution", "message.output"]
    assert "denied" in denied.outputs[1].content  # type: ignore[union-attr]  # the model was told
    [leaf] = tool_leaves(gateway, again.conversation_id)
    assert leaf["approval"] == "denied" and leaf["outcome"] == "denied"


def test_a_tenant_admin_may_decide_another_developer_may_not(
    gateway: Server, acme: dict[str, str]
) -> None:
    made = agent(gateway, acme["dev"], tools=[crm(include=["add"], requires_confirmation=["add"])])
    paused = sdk(gateway, acme["dev"]).beta.conversations.start(
        agent_id=made["id"], inputs='use:add {"a": 3, "b": 4}'
    )
    decision = {"tool_confirmations": [{"tool_call_id": paused.outputs[0].tool_call_id,  # type: ignore[union-attr]
                                        "confirmation": "allow"}]}  # fmt: skip
    path = f"/v1/conversations/{paused.conversation_id}"
    assert http(gateway, "POST", path, acme["dev2"], decision).status_code == 404
    outsider = key_in(gateway, "other-co", "admin")
    assert http(gateway, "POST", path, outsider, decision).status_code == 404
    by_admin = http(gateway, "POST", path, acme["admin"], decision)
    assert by_admin.status_code == 200, by_admin.text
    outputs = by_admin.json()["outputs"]
    assert [e["type"] for e in outputs] == ["tool.execution"]  # no model step as the admin
    [leaf] = tool_leaves(gateway, paused.conversation_id)
    assert leaf["approval"] == "allowed" and leaf["approver"] == leaf["principal"]
    owner_goes_on = http(gateway, "POST", path, acme["dev"], {"inputs": "thanks"})
    assert owner_goes_on.status_code == 200, owner_goes_on.text


# ---- handoffs and limits --------------------------------------------------------------------


def test_a_handoff_moves_the_conversation(gateway: Server, acme: dict[str, str]) -> None:
    target = agent(gateway, acme["dev"], name="Billing", description="the billing desk")
    front = agent(gateway, acme["dev"], name="Front", handoffs=[target["id"]])
    client = sdk(gateway, acme["dev"])
    answer = client.beta.conversations.start(agent_id=front["id"], inputs="use:handoff_to_Billing")
    assert [e.type for e in answer.outputs] == ["agent.handoff", "message.output"]
    handoff, message = answer.outputs
    assert (handoff.previous_agent_id, handoff.next_agent_id) == (front["id"], target["id"])  # type: ignore[union-attr]
    assert message.agent_id == target["id"]  # type: ignore[union-attr]
    now = client.beta.conversations.get(conversation_id=answer.conversation_id)
    assert now.agent_id == target["id"]  # type: ignore[union-attr]
    events = list(client.beta.conversations.start_stream(agent_id=front["id"],
                                                         inputs="use:handoff_to_Billing"))  # fmt: skip
    kinds = [e.event for e in events]
    assert "agent.handoff.started" in kinds and "agent.handoff.done" in kinds


def test_limits_end_the_turn_with_a_clear_error(
    gateway: Server, acme: dict[str, str], mcp: mcp_server.RunningServer
) -> None:
    made = agent(gateway, acme["dev"], tools=[crm(include=["add"])],
                 metadata={"souverain": {"limits": {"max_steps": 1}}})  # fmt: skip
    answer = http(gateway, "POST", "/v1/conversations", acme["dev"],
                  {"agent_id": made["id"], "inputs": 'use:add {"a": 1, "b": 2}'})  # fmt: skip
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "agent_limit_reached" and error["param"] == "max_steps"
    kept = error["message"].split("(conversation ")[1].split()[0]  # where the entries are
    history = sdk(gateway, acme["dev"]).beta.conversations.get_history(conversation_id=kept)
    assert [e.type for e in history.entries] == ["message.input", "tool.execution"]
    streamed = http(gateway, "POST", "/v1/conversations", acme["dev"],
                    {"agent_id": made["id"], "inputs": 'use:add {"a": 1, "b": 2}', "stream": True})  # fmt: skip
    assert streamed.status_code == 200
    assert "event: conversation.response.error" in streamed.text
    assert "max_steps" in streamed.text
    tight = key_in(gateway, "tight")
    http(gateway, "POST", "/admin/v1/connectors", key_in(gateway, "tight", "admin"),
         {"name": "crm", "url": mcp.mcp_url, "headers": {"Authorization": f"Bearer {TOKEN}"}})  # fmt: skip
    two = agent(gateway, tight, tools=[crm(include=["add"])])
    answer = http(gateway, "POST", "/v1/conversations", tight,
                  {"agent_id": two["id"], "inputs": 'use:add {"a": 1, "b": 2}'})  # fmt: skip
    assert answer.status_code == 400, answer.text  # the tenant allows no tool call at all
    assert answer.json()["error"]["param"] == "max_tool_calls"


# ---- document libraries ---------------------------------------------------------------------


def test_a_library_agent_cites_and_a_restricted_source_sticks(
    gateway: Server, acme: dict[str, str], agent_upstream: AgentUpstream
) -> None:
    client = sdk(gateway, acme["dev"])
    library = client.beta.libraries.create(name=f"kb{next(_n)}")
    memo = b"The merger with Globex closes on 12 March. Codename: BLUEBIRD."
    doc = client.beta.libraries.documents.upload(
        library_id=library.id, file={"file_name": "memo.txt", "content": memo}
    )
    deadline = time.monotonic() + 120
    while client.beta.libraries.documents.status(
        library_id=library.id, document_id=doc.id
    ).process_status in ("todo", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    made = agent(
        gateway, acme["dev"], tools=[{"type": "document_library", "library_ids": [library.id]}]
    )
    answer = client.beta.conversations.start(
        agent_id=made["id"], inputs='use:search_library {"query": "BLUEBIRD merger"}'
    )
    assert [e.type for e in answer.outputs] == ["tool.execution", "message.output"]
    execution, message = answer.outputs
    citations = execution.info["citations"]  # type: ignore[union-attr]
    assert citations and citations[0]["type"] == "tool_reference"
    assert "BLUEBIRD" in message.content  # type: ignore[union-attr]  # the passage reached the model
    # Now the document is restricted: once the tool read it, the conversation is restricted
    # and its next step may go nowhere but on-prem (no such deployment here). The turn ends
    # 403 naming the level, and the passage never left: the model only saw the question.
    marked = http(gateway, "PATCH", f"/v1/libraries/{library.id}/documents/{doc.id}",
                  acme["dev"], {"attributes": {"classification": "restricted"}})  # fmt: skip
    assert marked.status_code == 200, marked.text
    chats = lambda: [body for body in agent_upstream.received if "messages" in body]  # noqa: E731
    before = len(chats())
    refused = http(gateway, "POST", "/v1/conversations", acme["dev"],
                   {"agent_id": made["id"], "inputs": 'use:search_library {"query": "BLUEBIRD"}'})  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert "restricted" in refused.json()["error"]["message"]
    assert len(chats()) == before + 1  # the first step only
    assert "Globex" not in json.dumps(chats()[-1])  # the passage's words
    kept = client.beta.conversations.list(page=0, page_size=1)[0]
    history = client.beta.conversations.get_history(conversation_id=kept.id)
    assert [e.type for e in history.entries] == ["message.input", "tool.execution"]
    again = http(gateway, "POST", f"/v1/conversations/{kept.id}", acme["dev"], {"inputs": "Hi"})
    assert again.status_code == 403  # sticky: a harmless message does not lower it
