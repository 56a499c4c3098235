"""Agents and conversations on real models, with the mistralai SDK over loopback.

Every scenario runs on two models served by one gateway:
- `local`: the embedded SmolLM2 (engine `local`), its tool calls made by constrained
  decoding;
- `llama`: an `openai` deployment to llama.cpp's own server (tests/llama_server.py, a real
  second server we did not write) with `json_schema_as: grammar`, so a forced call is sent
  as the local engine's GBNF for the tool's arguments (backends/grammar_tool_call.py).

A 135M model does not choose tools by itself: each agent forces its one tool on the
turn's first step (`tool_choice: any`: the only tool offered), makes one server-side call
per turn (`max_tool_calls: 1`: the next step is offered no tool and answers; left to
choose, the model calls again, and through llama.cpp's `chatml-function-calling` format it
never even sees a tool's result), the client asks for an answer after a function result
(`tool_choice: none`), and `max_tokens` stays small so each step takes a second or two
on an idle machine. The tests assert what the runtime
did (entries, their types, the audit leaf of each tool execution, citations pointing to
the uploaded document, the conversation's agent), never the model's wording.

The tools are real: a function tool run by the test, a document library embedded with
e5 in this gateway, a real MCP server (tests/mcp_server.py) registered as a connector,
approvals on its `add` tool, and a handoff between two agents.
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

from . import llama_server, mcp_server
from .conftest import Server, start_server, stop_server

pytestmark = pytest.mark.model

MODELS = ("local", "llama")
TOKEN = "mcp-" + "r3al" * 8
E5 = {"id": "multilingual-e5-small", "type": "embeddings", "max_context_length": 512,
      "deployments": [{"name": "embedded-e5", "engine": "local"}]}  # fmt: skip
MEMO = "The Globex merger closes on 12 March. Its codename is BLUEBIRD."
WEATHER = {
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
# Each step a second or two: a forced call's arguments fit, an answer is cut short.
FORCED = {"tool_choice": "any", "max_tokens": 40, "temperature": 0}
# One server-side call per turn: once it is made the next step is offered no tool and
# answers (left to choose, a 135M model calls the tool again until max_steps).
ONE_CALL = {"souverain": {"limits": {"max_tool_calls": 1}}}
# The client's say after a function result: answer now.
ANSWER = {"tool_choice": "none", "max_tokens": 16, "temperature": 0}
_n = count()


@pytest.fixture(scope="module")
def mcp() -> Iterator[mcp_server.RunningServer]:
    server = mcp_server.start(token=TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(
    llama_chat: llama_server.LlamaServer, mcp: mcp_server.RunningServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:  # fmt: skip
    llama = {
        "name": "llama-cpp",
        "engine": "openai",
        "base_url": llama_chat.v1,
        "upstream_model": llama_server.CHAT_ALIAS,
        "json_schema_as": "grammar",  # llama.cpp reads a GBNF grammar (FACTS.md)
        "jurisdiction": "on-prem",  # it runs on this host
        "operator": "Ourselves",
    }
    config: dict[str, object] = {
        "models": [
            {"id": "local", "deployments": [{"name": "embedded-smollm2", "engine": "local"}]},
            {"id": "llama", "deployments": [llama], "capabilities": {"function_calling": True}},
            E5,
        ],
        "libraries": {"embedding_model": E5["id"], "ocr": False},
        # A request llama.cpp cannot read is a 500 there: no breaker, no retries, so one
        # failure shows as itself rather than as the deployment marked down.
        "routing": {"failure_threshold": 1000, "retries": 0},
    }
    server = start_server(tmp_path_factory.mktemp("conversations-real"), config)
    try:
        connector = {"name": "crm", "url": mcp.mcp_url,
                     "headers": {"Authorization": f"Bearer {TOKEN}"}}  # fmt: skip
        made = http(server, "POST", "/admin/v1/connectors", connector)
        assert made.status_code in (200, 201), made.text
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def library(gateway: Server) -> dict[str, str]:
    """A real library with one document, embedded by e5 in the gateway."""
    client = sdk(gateway)
    made = client.beta.libraries.create(name="memos")
    document = client.beta.libraries.documents.upload(
        library_id=made.id, file={"file_name": "memo.txt", "content": MEMO.encode()}
    )
    deadline = time.monotonic() + 60
    while (
        status := client.beta.libraries.documents.status(
            library_id=made.id, document_id=document.id
        ).process_status
    ) in ("todo", "in_progress"):
        assert time.monotonic() < deadline, "the document was not processed in 60 s"
        time.sleep(0.1)
    assert status == "done", status
    return {"library": made.id, "document": document.id}


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def sdk(gateway: Server) -> Any:
    """The mistralai SDK's client (typed Any: its results are read field by field here)."""
    return Mistral(api_key=gateway.key, server_url=gateway.url)


def http(gateway: Server, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {gateway.key}"}
    return httpx.request(method, gateway.url + path, headers=headers, json=body, timeout=120)


def agent(gateway: Server, model: str, **fields: Any) -> Any:
    fields.setdefault("name", f"agent{next(_n)}")
    fields.setdefault("completion_args", FORCED)
    if any(tool["type"] != "function" for tool in fields.get("tools", ())):
        fields.setdefault("metadata", ONE_CALL)
    return sdk(gateway).beta.agents.create(model=model, **fields)


def crm(**configuration: list[str]) -> dict[str, Any]:
    return {"type": "connector", "connector_id": "crm", "tool_configuration": configuration}


def tool_leaves(gateway: Server, conversation_id: str) -> list[dict[str, Any]]:
    found = http(gateway, "GET", "/admin/v1/audit/leaves?kind=tool&limit=1000")
    assert found.status_code == 200, found.text
    leaves = [row["leaf"] for row in found.json()["data"]]
    return [leaf for leaf in leaves if leaf.get("conversation") == conversation_id]


def kinds(outputs: list[Any]) -> list[str]:
    return [entry.type for entry in outputs]


# ---- 1. a function tool: the turn stops, the client answers, the agent goes on ------------


def test_function_tool_round_trip(gateway: Server, model: str) -> None:
    made = agent(gateway, model, tools=[WEATHER])
    client = sdk(gateway)
    first = client.beta.conversations.start(agent_id=made.id, inputs="Weather in Paris?")
    assert kinds(first.outputs) == ["function.call"], first.outputs
    [called] = first.outputs
    assert called.name == "weather" and called.agent_id == made.id
    assert isinstance(json.loads(called.arguments)["city"], str)
    second = client.beta.conversations.append(
        conversation_id=first.conversation_id,
        inputs=[{"type": "function.result", "tool_call_id": called.tool_call_id,
                 "result": "Sunny, 21 degrees"}],
        completion_args=ANSWER,
    )  # fmt: skip
    assert kinds(second.outputs) == ["message.output"], second.outputs
    assert second.outputs[0].agent_id == made.id
    assert 0 < second.usage.completion_tokens <= ANSWER["max_tokens"]
    history = client.beta.conversations.get_history(conversation_id=first.conversation_id)
    assert kinds(history.entries) == [
        "message.input", "function.call", "function.result", "message.output"
    ]  # fmt: skip


def test_function_tool_round_trip_streamed(gateway: Server, model: str) -> None:
    made = agent(gateway, model, tools=[WEATHER])
    client = sdk(gateway)
    events = list(
        client.beta.conversations.start_stream(agent_id=made.id, inputs="Weather in Oslo?")
    )
    assert [e.event for e in events] == [
        "conversation.response.started", "function.call.delta", "conversation.response.done"
    ], events  # fmt: skip
    conversation_id = events[0].data.conversation_id
    called = events[1].data
    assert called.name == "weather"
    assert isinstance(json.loads(called.arguments)["city"], str)
    more = list(client.beta.conversations.append_stream(
        conversation_id=conversation_id,
        inputs=[{"type": "function.result", "tool_call_id": called.tool_call_id,
                 "result": "Snow, -3 degrees"}],
        completion_args=ANSWER,
    ))  # fmt: skip
    names = [e.event for e in more]
    assert names[0] == "conversation.response.started", names
    assert names[-1] == "conversation.response.done", names
    assert set(names[1:-1]) == {"message.output.delta"}, names
    text = "".join(e.data.content for e in more[1:-1])
    history = client.beta.conversations.get_history(conversation_id=conversation_id)
    assert kinds(history.entries) == [
        "message.input", "function.call", "function.result", "message.output"
    ]  # fmt: skip
    assert history.entries[-1].content == text  # what was streamed


# ---- 2. a document library, with citations -----------------------------------------------


def test_library_agent_answers_with_citations(
    gateway: Server, model: str, library: dict[str, str]
) -> None:
    tools = [{"type": "document_library", "library_ids": [library["library"]]}]
    made = agent(gateway, model, tools=tools)
    answer = sdk(gateway).beta.conversations.start(
        agent_id=made.id, inputs="When does the Globex merger close?"
    )
    assert kinds(answer.outputs) == ["tool.execution", "message.output"], answer.outputs
    execution, message = answer.outputs
    assert execution.name == "search_library" and execution.info["ok"] is True
    assert isinstance(json.loads(execution.arguments)["query"], str)
    [citation] = execution.info["citations"]
    assert citation["type"] == "tool_reference" and citation["tool"] == "document_library"
    assert citation["library_id"] == library["library"]
    assert citation["document_id"] == library["document"]
    assert message.agent_id == made.id
    [leaf] = tool_leaves(gateway, answer.conversation_id)
    assert (leaf["tool"], leaf["tool_kind"], leaf["outcome"]) == (
        "search_library", "document_library", "ok"
    )  # fmt: skip


# ---- 3. a real MCP server's tool ---------------------------------------------------------


def test_mcp_tool_runs(gateway: Server, model: str) -> None:
    made = agent(gateway, model, tools=[crm(include=["add"])])
    answer = sdk(gateway).beta.conversations.start(agent_id=made.id, inputs="Add 2 and 3.")
    assert kinds(answer.outputs) == ["tool.execution", "message.output"], answer.outputs
    execution = answer.outputs[0]
    assert execution.name == "add" and execution.info["ok"] is True
    arguments = json.loads(execution.arguments)
    assert isinstance(arguments["a"], int) and isinstance(arguments["b"], int)
    [leaf] = tool_leaves(gateway, answer.conversation_id)
    assert (leaf["tool"], leaf["connector"], leaf["outcome"]) == ("add", "crm", "ok")


def test_mcp_tool_runs_streamed(gateway: Server, model: str) -> None:
    made = agent(gateway, model, tools=[crm(include=["add"])])
    events = list(
        sdk(gateway).beta.conversations.start_stream(agent_id=made.id, inputs="Add 40 and 2.")
    )
    names = [e.event for e in events]
    assert names[:3] == [
        "conversation.response.started", "tool.execution.started", "tool.execution.done"
    ], names  # fmt: skip
    assert names[-1] == "conversation.response.done", names
    assert set(names[3:-1]) <= {"message.output.delta"}, names
    conversation_id = events[0].data.conversation_id
    [leaf] = tool_leaves(gateway, conversation_id)
    assert (leaf["tool"], leaf["connector"], leaf["outcome"]) == ("add", "crm", "ok")


# ---- 4. approvals ------------------------------------------------------------------------


def test_approval_pauses_then_allow_runs_and_deny_stops(gateway: Server, model: str) -> None:
    made = agent(gateway, model, tools=[crm(include=["add"], requires_confirmation=["add"])])
    client = sdk(gateway)

    paused = client.beta.conversations.start(agent_id=made.id, inputs="Add 1 and 1.")
    assert kinds(paused.outputs) == ["function.call"], paused.outputs
    [call] = paused.outputs
    assert call.name == "add" and call.confirmation_status == "pending"
    assert tool_leaves(gateway, paused.conversation_id) == []  # nothing ran yet
    resumed = client.beta.conversations.append(
        conversation_id=paused.conversation_id,
        tool_confirmations=[{"tool_call_id": call.tool_call_id, "confirmation": "allow"}],
    )
    assert kinds(resumed.outputs) == ["tool.execution", "message.output"], resumed.outputs
    assert resumed.outputs[0].info["confirmation"] == "allowed"
    assert resumed.outputs[0].info["ok"] is True
    [leaf] = tool_leaves(gateway, paused.conversation_id)
    assert (leaf["approval"], leaf["outcome"], leaf["connector"]) == ("allowed", "ok", "crm")

    again = client.beta.conversations.start(agent_id=made.id, inputs="Add 5 and 5.")
    [call] = again.outputs
    assert call.confirmation_status == "pending"
    denied = client.beta.conversations.append(
        conversation_id=again.conversation_id,
        tool_confirmations=[{"tool_call_id": call.tool_call_id, "confirmation": "deny"}],
    )
    assert kinds(denied.outputs) == ["tool.execution", "message.output"], denied.outputs
    assert denied.outputs[0].info == {"confirmation": "denied"}
    [leaf] = tool_leaves(gateway, again.conversation_id)
    assert (leaf["approval"], leaf["outcome"]) == ("denied", "denied")
    history = client.beta.conversations.get_history(conversation_id=again.conversation_id)
    assert history.entries[1].confirmation_status == "denied"


# ---- 5. a handoff ------------------------------------------------------------------------


def test_handoff_moves_the_conversation(gateway: Server, model: str) -> None:
    billing = agent(
        gateway, model, name="Billing", description="the billing desk",
        completion_args={"max_tokens": FORCED["max_tokens"], "temperature": 0},
    )  # fmt: skip
    # Room for the embedded model's whole call block (about 30 tokens) even if it starts a
    # second, parallel call: cut by max_tokens, a call is no call.
    front = agent(
        gateway, model, handoffs=[billing.id], completion_args={**FORCED, "max_tokens": 64}
    )
    client = sdk(gateway)
    answer = client.beta.conversations.start(agent_id=front.id, inputs="My invoice is wrong.")
    assert kinds(answer.outputs) == ["agent.handoff", "message.output"], answer
    handoff, message = answer.outputs
    assert (handoff.previous_agent_id, handoff.next_agent_id) == (front.id, billing.id)
    assert message.agent_id == billing.id
    now = client.beta.conversations.get(conversation_id=answer.conversation_id)
    assert now.agent_id == billing.id
