"""A `document_library` agent end to end, with the mistralai SDK over loopback: the
conversation runtime binds the library tool for the caller, the search runs on a real
library (embedded e5), the answer carries its citations, and what the passages claim
sticks to the conversation.

The model is the conversation tests' tool-using fake (tests/conversation_upstream.py, a
recording upstream: `use:NAME {json}` calls a tool, a tool result is answered
`result: <output>`), declared twice: `onprem` (where restricted data may go) and
`foreign` (a US cloud, where it may not).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral

from .conftest import Server, start_server, stop_server
from .conversation_upstream import AgentUpstream

pytestmark = pytest.mark.model
E5 = {"id": "multilingual-e5-small", "type": "embeddings", "max_context_length": 512,
      "deployments": [{"name": "embedded-e5", "engine": "local"}]}  # fmt: skip
TRAVEL = "Die Erstattung der Reisekosten erfolgt binnen 30 Tagen nach Einreichung der Belege."
VAULT = "Le code du coffre-fort de la salle des archives est rangé dans le classeur bleu."


@pytest.fixture(scope="module")
def upstream() -> Iterator[AgentUpstream]:
    recorder = AgentUpstream().start()
    yield recorder
    recorder.stop()


@pytest.fixture(scope="module")
def gateway(upstream: AgentUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    onprem = upstream.deployment(jurisdiction="on-prem", operator="Ourselves", name="dc1")
    us = upstream.deployment(jurisdiction="US", operator="US Cloud", retention_days=30, name="us")
    config = {"models": [{"id": "onprem", "deployments": [onprem]},
                         {"id": "foreign", "deployments": [us]}, E5]}  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("library-agent"), config)
    yield server
    stop_server(server)


def http(gateway: Server, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    response = gateway.client().request(method, path, json=body, **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture(scope="module")
def library(gateway: Server) -> dict[str, str]:
    """A library with a public document and one whose attributes claim restricted."""
    made = http(gateway, "POST", "/v1/libraries", {"name": "handbook"})
    ids = {"library": made["id"]}
    for name, text in (("travel.md", TRAVEL), ("vault.md", VAULT)):
        files = {"file": (name, text.encode(), "text/markdown")}
        document = http(gateway, "POST", f"/v1/libraries/{made['id']}/documents", files=files)
        path = f"/v1/libraries/{made['id']}/documents/{document['id']}"
        for _ in range(1800):
            if http(gateway, "GET", path + "/status")["process_status"] == "done":
                break
            time.sleep(0.1)
        ids[name] = document["id"]
    http(gateway, "PUT", f"/v1/libraries/{made['id']}/documents/{ids['vault.md']}",
         {"attributes": {"classification": "restricted"}})  # fmt: skip
    return ids


def librarian(gateway: Server, library: dict[str, str], name: str) -> dict[str, Any]:
    tools = [{"type": "document_library", "library_ids": [library["library"]]}]
    made: dict[str, Any] = http(
        gateway, "POST", "/v1/agents", {"model": "onprem", "name": name, "tools": tools}
    )
    return made


def test_a_library_agent_answers_with_citations(
    gateway: Server, library: dict[str, str], upstream: AgentUpstream
) -> None:
    agent = librarian(gateway, library, "Librarian")
    client = Mistral(api_key=gateway.key, server_url=gateway.url)
    answer = client.beta.conversations.start(
        agent_id=agent["id"], inputs='use:search_library {"query": "Reisekosten erstatten"}'
    )
    kinds = [entry.type for entry in answer.outputs]
    assert kinds == ["tool.execution", "message.output"], kinds
    execution, message = answer.outputs
    assert execution.name == "search_library"  # type: ignore[union-attr]
    citations = execution.info["citations"]  # type: ignore[union-attr]
    assert citations[0]["type"] == "tool_reference" and citations[0]["tool"] == "document_library"
    assert citations[0]["document_id"] == library["travel.md"]
    assert citations[0]["library_id"] == library["library"] and citations[0]["index"] == 1
    # The model read the passages, numbered, from the tool message.
    tool_message = upstream.received[-1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"].startswith("Passages found (cite them by number")
    assert "[1] travel.md (library 'handbook')\nDie Erstattung" in tool_message["content"]
    assert message.content.startswith("result: Passages found")  # type: ignore[union-attr]


def test_a_restricted_document_read_sticks_to_the_conversation(
    gateway: Server, library: dict[str, str]
) -> None:
    agent = librarian(gateway, library, "Archivist")
    client = Mistral(api_key=gateway.key, server_url=gateway.url)
    answer = client.beta.conversations.start(
        agent_id=agent["id"], inputs='use:search_library {"query": "code du coffre-fort"}'
    )
    levels = {c["document_name"]: c["classification"] for c in answer.outputs[0].info["citations"]}  # type: ignore[union-attr]
    assert levels["vault.md"] == "restricted" and levels["travel.md"] == "public"
    # The agent moves to a foreign-only model: a harmless message is refused all the
    # same, because this conversation read a restricted document.
    http(gateway, "PATCH", f"/v1/agents/{agent['id']}", {"model": "foreign"})
    refused = gateway.client().post(
        f"/v1/conversations/{answer.conversation_id}", json={"inputs": "Bonjour"}
    )
    assert refused.status_code == 403, refused.text
    assert "restricted" in refused.json()["error"]["message"]
    fresh = client.beta.conversations.start(agent_id=agent["id"], inputs="Bonjour")
    assert fresh.outputs[0].content == "Bonjour"  # type: ignore[union-attr]  # a new one may


def test_a_library_the_caller_cannot_see_stops_the_turn_before_any_model_step(
    gateway: Server, library: dict[str, str], upstream: AgentUpstream
) -> None:
    http(gateway, "POST", "/admin/v1/tenants", {"name": "globex"})
    user = http(gateway, "POST", "/admin/v1/users", {"name": "g1", "role": "admin",
                                                      "tenant": "globex"})  # fmt: skip
    key = http(gateway, "POST", "/admin/v1/keys", {"name": "g1", "user_id": user["id"],
                                                    "tenant": "globex"})["key"]  # fmt: skip
    seen = len(upstream.received)
    other = httpx.post(
        gateway.v1 + "/conversations",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "onprem", "inputs": "Bonjour",
              "tools": [{"type": "document_library", "library_ids": [library["library"]]}]},
        timeout=60,
    )  # fmt: skip
    assert other.status_code == 404, other.text
    assert library["library"] in other.json()["error"]["message"]
    assert len(upstream.received) == seen  # no model step ran
