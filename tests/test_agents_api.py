"""`/v1/agents` end to end: the mistralai SDK's `client.beta.agents.*` against a real
`souverain serve` over loopback (no model is called: agents are definitions; the catalog
has an `openai` deployment to the RecordingUpstream, a named fake, only so that `cloud`
exists). Every operation, bad input, another tenant's agent, a key without the
permission, and the registry the conversation runtime reads (`AgentRegistry.resolve`).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from souverain.agents.registry import AgentRegistry
from souverain.store.database import open_database, sqlite_url

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

_names = count()
FUNCTION = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
LIBRARY = {"type": "document_library", "library_ids": ["lib-1", "lib-1", "lib-2"]}
CONNECTOR = {
    "type": "connector",
    "connector_id": "crm",
    "tool_configuration": {"include": ["find", "update"], "requires_confirmation": ["update"]},
}


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    config = {
        "models": [
            {"id": "cloud", "deployments": [upstream.deployment(name="eu")]},
            {"id": "other", "deployments": [upstream.deployment(name="eu2")]},
            {"id": "emb", "type": "embeddings", "deployments": [upstream.deployment(name="e")]},
        ]
    }
    server = start_server(tmp_path_factory.mktemp("agents-gw"), config)
    yield server
    stop_server(server)


def admin(gateway: Server, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(gateway.url + path, json=body, timeout=30,
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
    assert answer.status_code in (200, 201), answer.text
    return answer.json()  # type: ignore[no-any-return]


def key_in(gateway: Server, tenant: str, role: str = "developer", **key: Any) -> str:
    """A key of a new user of `tenant` (the tenant is created on first use)."""
    httpx.post(gateway.url + "/admin/v1/tenants", json={"name": tenant}, timeout=30,
               headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
    name = f"a{next(_names)}"
    user = admin(gateway, "/admin/v1/users", {"name": name, "role": role, "tenant": tenant})
    created = admin(gateway, "/admin/v1/keys",
                    {"name": name, "user_id": user["id"], "tenant": tenant, "role": role, **key})  # fmt: skip
    return str(created["key"])


def sdk(gateway: Server, key: str) -> Mistral:
    return Mistral(api_key=key, server_url=gateway.url)


def http(gateway: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"},
                        timeout=30)  # fmt: skip


@pytest.fixture(scope="module")
def dev(gateway: Server) -> str:
    key = key_in(gateway, "acme")
    key_in(gateway, "rival")  # the tenant, for its connector
    # The connector the agents name (registration does not reach the address).
    admin(gateway, "/admin/v1/connectors",
          {"name": "crm", "url": "http://127.0.0.1:9/mcp", "tenant": "acme"})  # fmt: skip
    admin(gateway, "/admin/v1/connectors",
          {"name": "theirs", "url": "http://127.0.0.1:9/mcp", "tenant": "rival"})  # fmt: skip
    return key


def error(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(SDKError) as caught:
        call()
    response = caught.value.raw_response
    return caught.value.status_code, response.json()["error"]


# ---- every operation, through the SDK ---------------------------------------------------------


def test_create_get_update_versions_aliases_delete(gateway: Server, dev: str) -> None:
    client = sdk(gateway, dev)
    agents = client.beta.agents
    made = agents.create(
        model="cloud",
        name="Support",
        instructions="Answer briefly.",
        tools=[FUNCTION, LIBRARY, CONNECTOR],
        completion_args={"temperature": 0.2, "max_tokens": 300, "tool_choice": "auto"},
        description="first line support",
        metadata={"team": "support", "souverain": {"limits": {"max_steps": 4}}},
    )
    assert made.id.startswith("ag_") and made.version == 1 and made.versions == [1]
    assert made.model == "cloud" and made.name == "Support" and made.source == "api"
    assert made.instructions == "Answer briefly."
    assert made.completion_args is not None and made.completion_args.temperature == 0.2
    kinds = [tool.type for tool in made.tools or []]
    assert kinds == ["function", "document_library", "connector"]
    raw = http(gateway, dev).get(f"/v1/agents/{made.id}").json()
    assert raw["limits"] == {"max_steps": 4}
    assert raw["tools"][1]["library_ids"] == ["lib-1", "lib-2"]  # duplicates dropped
    assert raw["tools"][2]["tool_configuration"]["requires_confirmation"] == ["update"]

    fetched = agents.get(agent_id=made.id)
    assert fetched.id == made.id and fetched.version == 1

    updated = agents.update(agent_id=made.id, instructions="Answer in French.", name="Support FR")
    assert updated.version == 2 and updated.versions == [1, 2]
    assert updated.instructions == "Answer in French." and updated.name == "Support FR"
    assert updated.description == "first line support"  # kept from version 1
    assert agents.get(agent_id=made.id).version == 2
    old = agents.get(agent_id=made.id, agent_version=1)
    assert old.version == 1 and old.instructions == "Answer briefly."

    versions = agents.list_versions(agent_id=made.id)
    assert [version.version for version in versions] == [2, 1]
    assert agents.list_versions(agent_id=made.id, page=1, page_size=1)[0].version == 1
    assert agents.get_version(agent_id=made.id, version="1").name == "Support"

    switched = agents.update_version(agent_id=made.id, version=1)
    assert switched.version == 1 and agents.get(agent_id=made.id).name == "Support"

    alias = agents.create_version_alias(agent_id=made.id, alias="prod", version=2)
    assert alias.alias == "prod" and alias.version == 2
    assert agents.get(agent_id=made.id, agent_version="prod").version == 2
    assert agents.get_version(agent_id=made.id, version="prod").name == "Support FR"
    moved = agents.create_version_alias(agent_id=made.id, alias="prod", version=1)
    assert moved.version == 1 and moved.created_at == alias.created_at
    listed = agents.list_version_aliases(agent_id=made.id)
    assert [(item.alias, item.version) for item in listed] == [("prod", 1)]
    agents.delete_version_alias(agent_id=made.id, alias="prod")
    assert agents.list_version_aliases(agent_id=made.id) == []
    status, body = error(lambda: agents.get(agent_id=made.id, agent_version="prod"))
    assert status == 404 and body["param"] == "version"

    agents.delete(agent_id=made.id)
    status, body = error(lambda: agents.get(agent_id=made.id))
    assert status == 404 and body["param"] == "agent_id"


def test_list_filters_and_pages(gateway: Server) -> None:
    key = key_in(gateway, "lister")
    agents = sdk(gateway, key).beta.agents
    made = [
        agents.create(model="cloud", name=f"bot-{index}", metadata={"n": index % 2})
        for index in range(5)
    ]
    everything = agents.list(page_size=100)
    assert [agent.id for agent in everything] == [agent.id for agent in reversed(made)]
    assert len(agents.list(page=1, page_size=2)) == 2
    assert [agent.name for agent in agents.list(name="bot-3")] == ["bot-3"]
    assert [agent.id for agent in agents.list(id=made[0].id)] == [made[0].id]
    assert {agent.name for agent in agents.list(search="BOT-")} == {f"bot-{i}" for i in range(5)}
    assert {agent.name for agent in agents.list(metadata={"n": 1})} == {"bot-1", "bot-3"}
    assert agents.list(sources=["playground"]) == []
    assert agents.list(search="%") == []  # a wildcard is a character here
    first = agents.list_pages(page_size=2)
    assert first is not None
    seen = [agent.id for agent in first.result.data]
    page = first.next()
    while page is not None:
        seen += [agent.id for agent in page.result.data]
        page = page.next()
    assert seen == [agent.id for agent in reversed(made)]
    with http(gateway, key) as client:
        for token in ("nonsense", "é\u00a0𪒳"):  # not base64; not even ASCII (was a 500)
            bad = client.get("/v1/agents/pages", params={"page_token": token})
            assert bad.status_code == 400 and bad.json()["error"]["param"] == "page_token"
        bad = client.get("/v1/agents", params={"metadata": "[1]"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "metadata"
        bad = client.get("/v1/agents", params={"page_size": "100000"})
        assert bad.status_code == 400


def test_handoffs_name_agents_of_the_same_tenant(gateway: Server, dev: str) -> None:
    agents = sdk(gateway, dev).beta.agents
    target = agents.create(model="cloud", name="billing")
    source = agents.create(model="cloud", name="triage", handoffs=[target.id, target.id])
    assert source.handoffs == [target.id]
    status, body = error(lambda: agents.create(model="cloud", name="x", handoffs=["ag_nope"]))
    assert status == 400 and body["param"] == "handoffs[0]"
    foreign = sdk(gateway, key_in(gateway, "elsewhere")).beta.agents.create(model="cloud", name="f")
    status, body = error(lambda: agents.update(agent_id=source.id, handoffs=[foreign.id]))
    assert status == 400 and "no agent" in body["message"]
    status, body = error(lambda: agents.update(agent_id=source.id, handoffs=[source.id]))
    assert status == 400 and "itself" in body["message"]


# ---- bad input: clear 4xx naming the field ------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "web_search"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type", "code_interpreter"),
        ({"tools": [{"type": "teleport"}]}, "tools[0].type", "teleport"),
        ({"tools": [{"library_ids": []}]}, "tools[0].type", "missing"),
        ({"tools": [FUNCTION, {**FUNCTION}]}, "tools[1]", "two function tools"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
         "tools[0].function.name", "letters"),
        ({"tools": [{"type": "function", "function": {"name": "x" * 65}}]},
         "tools[0].function.name", "64"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 7}}}]},
         "tools[0].function.parameters", ""),
        ({"tools": [{"type": "document_library", "library_ids": []}]},
         "tools[0].library_ids", "1 to 32"),
        ({"tools": [LIBRARY, LIBRARY]}, "tools[1]", "one document_library tool"),
        ({"tools": [{"type": "connector", "connector_id": "crm",
                     "authorization": {"type": "api-key", "value": "s3cret"}}]},
         "tools[0].authorization", "credentials"),
        ({"tools": [{"type": "connector", "connector_id": "crm",
                     "tool_configuration": {"include": ["<script>"]}}]},
         "tools[0].tool_configuration.include", "tool name"),
        ({"tools": [{**CONNECTOR, "connector_id": "nope"}]}, "tools[0].connector_id",
         "no connector 'nope'"),
        ({"tools": [{**CONNECTOR, "connector_id": "theirs"}]}, "tools[0].connector_id",
         "registered in this tenant"),
        ({"tools": [{**CONNECTOR, "connector_id": "c" * 65}]}, "tools[0].connector_id", "64"),
        ({"tools": [{"type": "function", "function": {"name": "f", "description": "é" * 40_000}}]},
         "tools[0]", "65536"),
        ({"tools": [FUNCTION] * 129}, "tools", "129"),
        ({"completion_args": {"temperature": 9}}, "completion_args.temperature", ""),
        ({"completion_args": {"logit_bias": {}}}, "completion_args.logit_bias", ""),
        ({"limits": {"max_steps": 0}}, "limits.max_steps", ""),
        ({"limits": {"max_seconds": 1e9}}, "limits.max_seconds", ""),
        ({"limits": {"max_turns": 3}}, "limits.max_turns", ""),
        ({"metadata": {"souverain": {"limits": {"max_tool_calls": -1}}}},
         "metadata.souverain.limits", "max_tool_calls"),
        ({"metadata": {"souverain": {"other": 1}}}, "metadata", "reserved"),
        ({"limits": {"max_steps": 3}, "metadata": {"souverain": {"limits": {"max_steps": 4}}}},
         "limits", "disagree"),
        ({"instructions": "x" * 100_001}, "instructions", ""),
        ({"name": ""}, "name", ""),
        ({"handoffs": ["a"] * 33}, "handoffs", ""),
        ({"metadata": {"big": "x" * 20_000}}, "metadata", "16384"),
    ],
)  # fmt: skip
def test_bad_agents_are_refused_with_the_field_named(
    gateway: Server, dev: str, change: dict[str, Any], param: str, words: str
) -> None:
    body = {"model": "cloud", "name": "bad", **change}
    with http(gateway, dev) as client:
        answer = client.post("/v1/agents", json=body)
    assert answer.status_code == 400, answer.text
    error_body = answer.json()["error"]
    assert error_body["param"] == param and words in error_body["message"], error_body


def test_the_model_must_be_one_the_author_may_use(gateway: Server) -> None:
    scoped = key_in(gateway, "acme", models=["other"])
    agents = sdk(gateway, scoped).beta.agents
    status, body = error(lambda: agents.create(model="nope", name="x"))
    assert status == 404 and body["code"] == "model_not_found"
    status, body = error(lambda: agents.create(model="cloud", name="x"))  # outside its scopes
    assert status == 404 and body["code"] == "model_not_found"
    assert agents.create(model="other", name="x").model == "other"
    embedder = sdk(gateway, key_in(gateway, "acme")).beta.agents
    status, body = error(lambda: embedder.create(model="emb", name="x"))
    assert status == 400 and body["param"] == "model"


def test_odd_requests(gateway: Server, dev: str) -> None:
    agents = sdk(gateway, dev).beta.agents
    made = agents.create(model="cloud", name="odd")
    with http(gateway, dev) as client:
        for path, params in [
            (f"/v1/agents/{made.id}/version", {"version": "99"}),
            (f"/v1/agents/{made.id}/version", {"version": str(2**40)}),
            (f"/v1/agents/{made.id}/version", {"version": "-1"}),
        ]:
            answer = client.patch(path, params=params)
            assert answer.status_code in (400, 404), answer.text
        assert client.get(f"/v1/agents/{made.id}/versions/{2**40}").status_code == 404
        assert client.get("/v1/agents/" + "x" * 5000).status_code == 404
        assert (
            client.get(f"/v1/agents/{made.id}", params={"agent_version": "9" * 30}).status_code
            == 404
        )
        for alias in ("", "12", "a b", "x" * 65, "../etc"):
            answer = client.put(
                f"/v1/agents/{made.id}/aliases", params={"alias": alias, "version": 1}
            )
            assert answer.status_code == 400 and answer.json()["error"]["param"] == "alias"
        answer = client.put(f"/v1/agents/{made.id}/aliases", params={"alias": "ok", "version": 7})
        assert answer.status_code == 404
        answer = client.delete(f"/v1/agents/{made.id}/aliases", params={"alias": "never"})
        assert answer.status_code == 404
        answer = client.post("/v1/agents", content=b"[]")
        assert answer.status_code == 400
        answer = client.post(
            "/v1/agents", json={"model": "cloud", "name": "\u202eevil", "tools": "x"}
        )
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "tools"


# ---- tenancy and permissions ---------------------------------------------------------------------


def test_another_tenants_agent_is_404_everywhere(gateway: Server, dev: str) -> None:
    mine = sdk(gateway, dev).beta.agents.create(model="cloud", name="private")
    sdk(gateway, dev).beta.agents.create_version_alias(agent_id=mine.id, alias="live", version=1)
    theirs = sdk(gateway, key_in(gateway, "rival", role="admin")).beta.agents
    for call in (
        lambda: theirs.get(agent_id=mine.id),
        lambda: theirs.get(agent_id=mine.id, agent_version="live"),
        lambda: theirs.update(agent_id=mine.id, name="stolen"),
        lambda: theirs.delete(agent_id=mine.id),
        lambda: theirs.list_versions(agent_id=mine.id),
        lambda: theirs.get_version(agent_id=mine.id, version="1"),
        lambda: theirs.update_version(agent_id=mine.id, version=1),
        lambda: theirs.list_version_aliases(agent_id=mine.id),
        lambda: theirs.create_version_alias(agent_id=mine.id, alias="x", version=1),
        lambda: theirs.delete_version_alias(agent_id=mine.id, alias="live"),
    ):
        status, _ = error(call)
        assert status == 404
    assert mine.id not in {agent.id for agent in theirs.list(page_size=1000)}
    assert theirs.list(id=mine.id) == []
    same = sdk(gateway, dev).beta.agents.get(agent_id=mine.id)
    assert same.name == "private" and same.version == 1  # untouched


def test_agents_are_tenant_wide_and_writes_need_the_permission(gateway: Server, dev: str) -> None:
    made = sdk(gateway, dev).beta.agents.create(model="cloud", name="shared")
    reader = sdk(gateway, key_in(gateway, "acme", role="user")).beta.agents
    assert reader.get(agent_id=made.id).name == "shared"  # another user of the tenant
    assert made.id in {agent.id for agent in reader.list(page_size=1000)}
    for call in (
        lambda: reader.create(model="cloud", name="mine"),
        lambda: reader.update(agent_id=made.id, name="renamed"),
        lambda: reader.delete(agent_id=made.id),
        lambda: reader.update_version(agent_id=made.id, version=1),
        lambda: reader.create_version_alias(agent_id=made.id, alias="a", version=1),
    ):
        status, body = error(call)
        assert status == 403 and "agents.manage" in body["message"]
    unscoped = sdk(gateway, key_in(gateway, "acme", endpoints=["chat"])).beta.agents
    status, body = error(lambda: unscoped.get(agent_id=made.id))
    assert status == 403 and "agents" in body["message"]
    status, _ = error(lambda: sdk(gateway, "sk-sv-wrong").beta.agents.list())
    assert status == 401


def test_changes_leave_admin_leaves(gateway: Server, dev: str) -> None:
    agents = sdk(gateway, dev).beta.agents
    made = agents.create(model="cloud", name="audited")
    agents.update(agent_id=made.id, description="v2")
    agents.delete(agent_id=made.id)
    answer = httpx.get(gateway.url + "/admin/v1/audit/leaves", params={"limit": "1000"},
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    actions = [
        item["leaf"]["action"]
        for item in answer.json()["data"]
        if item["leaf"].get("target", {}).get("agent_id") == made.id
    ]
    assert actions == ["agent.create", "agent.update", "agent.delete"]


# ---- the seam the conversation runtime reads ----------------------------------------------------


def test_resolve_by_number_alias_or_current_and_only_in_its_tenant(
    gateway: Server, dev: str
) -> None:
    agents = sdk(gateway, dev).beta.agents
    made = agents.create(model="cloud", name="seam", tools=[FUNCTION],
                         metadata={"souverain": {"limits": {"max_tool_calls": 3}}})  # fmt: skip
    agents.update(agent_id=made.id, instructions="v2")  # limits kept from version 1
    agents.create_version_alias(agent_id=made.id, alias="stable", version=1)
    engine = open_database(sqlite_url(gateway.log.parent / "data"))
    try:
        registry = AgentRegistry(engine)
        current = registry.resolve("acme", made.id)
        assert current is not None and current.version == 2 and current.instructions == "v2"
        assert current.limits == {"max_tool_calls": 3}
        assert current.tools[0]["function"]["name"] == "get_weather"
        stable = registry.resolve("acme", made.id, "stable")
        assert stable is not None and stable.version == 1 and stable.instructions is None
        assert registry.resolve("acme", made.id, 1) == stable
        assert registry.resolve("acme", made.id, "1") == stable
        assert registry.resolve("acme", made.id, 3) is None
        assert registry.resolve("acme", made.id, "missing") is None
        assert registry.resolve("rival", made.id) is None
        with http(gateway, dev) as client:  # `{}` clears the limits (null: unchanged)
            answer = client.patch(f"/v1/agents/{made.id}", json={"limits": {}})
        assert answer.status_code == 200 and answer.json()["limits"] == {}
        cleared = registry.resolve("acme", made.id)
        assert cleared is not None and cleared.version == 3 and cleared.limits == {}
    finally:
        engine.dispose()
