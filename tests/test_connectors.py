"""MCP connectors against a real MCP server (tests/mcp_server.py, the official `mcp` SDK's
MCPServer, in its own process over streamable HTTP and stdio) and a real `souverain serve`
over loopback: registration through the admin API and the CLI, live tool listing, the
binder agents use (allow-list, approval flag, timeouts, tool errors), the address rule (a
redirect to another host is refused, and nothing reaches it), RBAC, tenant isolation, and
secrets that never come back in a response, an audit leaf or the server's log.

The gateway's model calls (none here) would go to a recording upstream (a named fake).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from souverain.agents.tools import ToolInvocation
from souverain.app import build_state
from souverain.cli import cli
from souverain.config import load_settings
from souverain.connectors.schemas import ConnectorCreate
from souverain.connectors.service import connector_service
from souverain.connectors.tools import connector_tools
from souverain.context import Principal
from souverain.errors import InvalidRequest, NotFound
from souverain.state import AppState

from . import mcp_server
from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import server_database
from .recording_upstream import RecordingUpstream

MCP_TOKEN = "mcp-" + "s3cr3t" * 6  # the connector's secret header value
BASE = "/admin/v1/connectors"
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{time.monotonic_ns() % 10**6}"


@dataclass
class World:
    server: Server
    mcp: mcp_server.RunningServer
    keys: dict[str, str] = field(default_factory=dict)

    def call(
        self, method: str, path: str, key: str = ADMIN_KEY, body: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.request(method, self.server.url + path, headers=headers, json=body, timeout=30)

    def ok(self, method: str, path: str, key: str = ADMIN_KEY, body: Any = None) -> Any:
        response = self.call(method, path, key, body)
        assert response.status_code in (200, 201), (method, path, response.text)
        return response.json()

    def key_for(self, tenant: str, role: str) -> str:
        user = self.ok(
            "POST", "/admin/v1/users", body={"name": unique(role), "role": role, "tenant": tenant}
        )
        body = {"name": unique("key"), "user_id": user["id"], "tenant": tenant}
        return str(self.ok("POST", "/admin/v1/keys", body=body)["key"])

    def http_connector(self, key: str, **fields: Any) -> dict[str, Any]:
        body = {"name": unique("crm"), "url": self.mcp.mcp_url,
                "headers": {"Authorization": f"Bearer {MCP_TOKEN}"}, **fields}  # fmt: skip
        return dict(self.ok("POST", BASE, key, body))


@pytest.fixture(scope="module")
def mcp() -> Iterator[mcp_server.RunningServer]:
    """The real MCP server, its `/mcp` guarded by MCP_TOKEN."""
    server = mcp_server.start(token=MCP_TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    mcp: mcp_server.RunningServer,
    upstream: RecordingUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"connectors-{request.param}")
    config = {
        "models": [{"id": "cloud", "deployments": [upstream.deployment()]}],
        "dlp": {"enabled": False},
    }
    with server_database(request.param, tmp) as url:
        server = start_server(tmp, config, env={"SOUVERAIN_DATABASE_URL": url})
        try:
            w = World(server, mcp)
            for tenant in ("acme", "globex"):
                w.ok("POST", "/admin/v1/tenants", body={"name": tenant})
            w.keys = {
                "admin": w.key_for("acme", "admin"),
                "developer": w.key_for("acme", "developer"),
                "auditor": w.key_for("acme", "auditor"),
                "globex": w.key_for("globex", "admin"),
            }
            yield w
        finally:
            stop_server(server)


# ---- the admin API -------------------------------------------------------------------------


def test_register_list_get_tools_delete(world: World) -> None:
    admin = world.keys["admin"]
    created = world.http_connector(admin, description="the CRM", timeout_s=5)
    assert created["object"] == "connector" and created["id"].startswith("conn_")
    assert created["tenant"] == "acme" and created["transport"] == "http"
    assert created["headers"] == {"Authorization": "********"}
    listed = world.ok("GET", BASE, admin)["data"]
    assert created["id"] in {c["id"] for c in listed}
    assert world.ok("GET", f"{BASE}/{created['name']}", admin)["id"] == created["id"]
    tools = world.ok("GET", f"{BASE}/{created['id']}/tools", admin)
    by_name = {tool["name"]: tool for tool in tools["data"]}
    assert {"get_iban", "add", "slow", "fail"} <= set(by_name)
    assert by_name["add"]["input_schema"]["properties"].keys() == {"a", "b"}
    deleted = world.ok("DELETE", f"{BASE}/{created['id']}", admin)
    assert deleted == {"object": "connector", "id": created["id"], "deleted": True}
    assert world.call("GET", f"{BASE}/{created['id']}", admin).status_code == 404


def test_name_is_unique_per_tenant(world: World) -> None:
    name = unique("dup")
    world.http_connector(world.keys["admin"], name=name)
    again = world.call("POST", BASE, world.keys["admin"], {"name": name, "url": world.mcp.mcp_url})
    assert again.status_code == 409, again.text
    assert world.http_connector(world.keys["globex"], name=name)["tenant"] == "globex"


def test_the_secret_header_reaches_the_server(world: World) -> None:
    """Without the header the server answers 401, and the gateway says so (502)."""
    bare = world.ok(
        "POST", BASE, world.keys["admin"], {"name": unique("bare"), "url": world.mcp.mcp_url}
    )
    response = world.call("GET", f"{BASE}/{bare['id']}/tools", world.keys["admin"])
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "connector_error" and "HTTP 401" in error["message"]


@pytest.mark.parametrize(
    "change",
    [
        {"url": "ftp://127.0.0.1/mcp"},
        {"url": "javascript:alert(1)"},
        {"url": "http://user:pw@127.0.0.1/mcp"},
        {"url": "http://127.0.0.1/mcp?api_key=x"},
        {"url": "http://127.0.0.1:99999/mcp"},
        {"url": "http://127.0.0.1/m cp"},
        {"url": None},
        {"name": "../etc"},
        {"name": "x" * 65},
        {"timeout_s": 0},
        {"timeout_s": 301},
        {"headers": {"Authorization": "Bearer a\r\nX-Evil: 1"}},
        {"headers": {"Host": "evil.example"}},
        {"headers": {"Bad Name": "x"}},
        {"headers": {f"X-{i}": "v" for i in range(33)}},
        {"command": "/bin/sh"},
        {"extra": 1},
        {"transport": "websocket"},
    ],
)
def test_bad_registrations_are_400(world: World, change: dict[str, Any]) -> None:
    body = {"name": unique("bad"), "url": world.mcp.mcp_url, **change}
    response = world.call(
        "POST", BASE, world.keys["admin"], {k: v for k, v in body.items() if v is not None}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_rbac(world: World) -> None:
    for role in ("developer", "auditor"):
        for method, path in (("GET", BASE), ("POST", BASE)):
            body = {"name": unique("r"), "url": world.mcp.mcp_url} if method == "POST" else None
            response = world.call(method, path, world.keys[role], body)
            assert response.status_code == 403, (role, method, response.text)
    assert world.call("GET", BASE, "sk-sv-not-a-key").status_code == 401
    # A key whose scopes leave out the `connectors` endpoints, even an admin's.
    admin = world.ok(
        "POST", "/admin/v1/users", body={"name": unique("a"), "role": "admin", "tenant": "acme"}
    )
    body = {"name": unique("k"), "user_id": admin["id"], "tenant": "acme", "endpoints": ["admin"]}
    scoped = world.ok("POST", "/admin/v1/keys", body=body)["key"]
    refused = world.call("GET", BASE, scoped)
    assert refused.status_code == 403 and "connectors" in refused.json()["error"]["message"]
    body = {**body, "name": unique("k"), "endpoints": ["admin", "connectors"]}
    allowed = world.ok("POST", "/admin/v1/keys", body=body)["key"]
    assert world.call("GET", BASE, allowed).status_code == 200


def test_stdio_is_for_the_owner_only(world: World) -> None:
    program, *args = mcp_server.stdio_command()
    body = {"name": unique("local"), "transport": "stdio", "command": program, "args": args,
            "env": {"LOCAL_TOKEN": MCP_TOKEN}}  # fmt: skip
    refused = world.call("POST", BASE, world.keys["admin"], body)
    assert refused.status_code == 403 and "owner" in refused.json()["error"]["message"]
    created = world.ok("POST", BASE, ADMIN_KEY, {**body, "tenant": "acme"})
    assert created["tenant"] == "acme" and created["env"] == {"LOCAL_TOKEN": "********"}
    assert created["command"] == program and created["args"] == args
    tools = world.ok("GET", f"{BASE}/{created['id']}/tools", world.keys["admin"])["data"]
    assert "get_iban" in {tool["name"] for tool in tools}


def test_another_tenant_gets_404(world: World) -> None:
    theirs = world.http_connector(world.keys["admin"])
    stranger = world.keys["globex"]
    for method, suffix in (("GET", ""), ("GET", "/tools"), ("DELETE", "")):
        for ref in (theirs["id"], theirs["name"]):
            response = world.call(method, f"{BASE}/{ref}{suffix}", stranger)
            assert response.status_code == 404, (method, suffix, response.text)
    assert theirs["id"] not in {c["id"] for c in world.ok("GET", BASE, stranger)["data"]}
    assert world.call("GET", f"{BASE}/{'x' * 5000}", stranger).status_code in (404, 414)
    owner_view = world.ok("GET", BASE, ADMIN_KEY)["data"]
    assert theirs["id"] in {c["id"] for c in owner_view}  # the platform owner sees every tenant


def test_a_redirect_to_another_host_is_refused_and_never_followed(world: World) -> None:
    body = {"name": unique("moved"), "url": world.mcp.redirect_url,
            "headers": {"Authorization": f"Bearer {MCP_TOKEN}"}}  # fmt: skip
    created = world.ok("POST", BASE, world.keys["admin"], body)
    response = world.call("GET", f"{BASE}/{created['id']}/tools", world.keys["admin"])
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "connector_redirect_refused"
    assert f"localhost:{world.mcp.port}/trap" in error["message"]
    assert "registered with" in error["message"]
    assert world.mcp.hits() == 0  # nothing reached the other host


def test_cli_add_list_tools_remove(world: World) -> None:
    runner = CliRunner()
    server = ["--url", world.server.url, "--key", world.keys["admin"]]
    name = unique("cli")
    added = runner.invoke(cli, ["connectors", "add", name, *server, "--mcp-url", world.mcp.mcp_url,
                                "--header", f"Authorization: Bearer {MCP_TOKEN}", "--timeout", "5"])  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["name"] == name and MCP_TOKEN not in added.output
    listed = runner.invoke(cli, ["connectors", "list", *server])
    assert listed.exit_code == 0 and name in listed.output and MCP_TOKEN not in listed.output
    tools = runner.invoke(cli, ["connectors", "tools", name, *server])
    assert tools.exit_code == 0 and "get_iban" in tools.output, tools.output
    removed = runner.invoke(cli, ["connectors", "remove", name, *server])
    assert removed.exit_code == 0 and removed.output.startswith("removed conn_")
    gone = runner.invoke(cli, ["connectors", "remove", name, *server])
    assert gone.exit_code != 0 and "404" in gone.output
    both = runner.invoke(cli, ["connectors", "add", "x", *server])
    assert both.exit_code != 0 and "exactly one of --mcp-url and --command" in both.output


def test_secrets_never_in_responses_leaves_or_log(world: World) -> None:
    """Runs last in this module: every registration above carried the secret."""
    admin = world.keys["admin"]
    for connector in world.ok("GET", BASE, ADMIN_KEY)["data"]:
        assert MCP_TOKEN not in json.dumps(connector)
        assert MCP_TOKEN not in world.call("GET", f"{BASE}/{connector['id']}", ADMIN_KEY).text
    leaves = world.ok("GET", "/admin/v1/audit/leaves?limit=1000", ADMIN_KEY)["data"]
    actions = [leaf["leaf"].get("action") for leaf in leaves]
    assert "connector.create" in actions and "connector.delete" in actions
    assert MCP_TOKEN not in json.dumps(leaves)
    assert MCP_TOKEN not in world.server.log.read_text(errors="replace")
    assert world.call("GET", BASE, admin).status_code == 200


# ---- the binder the agent runtime calls ---------------------------------------------------


@pytest.fixture(scope="module")
def app_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppState]:
    """An app's state in this process (its own SQLite store): the binder runs here."""
    tmp = tmp_path_factory.mktemp("connector-binder")
    overrides = {"data_dir": tmp, "models": [{"id": "cloud", "deployments": [
        {"engine": "openai", "base_url": "http://127.0.0.1:9/v1", "jurisdiction": "FR"}]}]}  # fmt: skip
    state = build_state(load_settings(None, overrides, environ={}))
    yield state
    state.database.dispose()


def _principal(tenant: str) -> Principal:
    return Principal(key_id=1, name="alice", role="user", tenant=tenant, subject="key:1")


def _register(state: AppState, mcp: mcp_server.RunningServer, **fields: Any) -> str:
    body = ConnectorCreate.model_validate({"name": unique("bound"), "url": mcp.mcp_url,
        "headers": {"Authorization": f"Bearer {MCP_TOKEN}"}, **fields})  # fmt: skip
    return connector_service(state).store.create("acme", None, body, "test").name


async def test_binder_allow_list_approval_and_a_real_call(
    mcp: mcp_server.RunningServer, app_state: AppState
) -> None:
    name = _register(app_state, mcp)
    entry = {"type": "connector", "connector_id": name, "tool_configuration": {
        "include": ["get_iban", "add", "fail"], "exclude": ["fail"],
        "requires_confirmation": ["get_iban"]}}  # fmt: skip
    bound = await connector_tools(app_state, _principal("acme"), entry)
    specs = {tool.spec.name: tool for tool in bound}
    assert set(specs) == {"get_iban", "add"} and {t.kind for t in bound} == {"connector"}
    assert specs["get_iban"].spec.requires_approval and not specs["add"].spec.requires_approval
    assert "customer" in specs["get_iban"].spec.parameters["properties"]
    outcome = await specs["get_iban"].run(ToolInvocation("call1", "get_iban", {"customer": "Ada"}))
    assert outcome.ok and mcp_server.IBAN in outcome.output
    assert outcome.audit["connector"] == name and outcome.audit["tool"] == "get_iban"
    assert outcome.audit["latency_ms"] > 0 and outcome.audit["outcome"] == "ok"
    assert "Ada" not in json.dumps(outcome.audit)  # never arguments nor results
    added = await specs["add"].run(ToolInvocation("call2", "add", {"a": 2, "b": 40}))
    assert added.ok and added.output == "42"
    everything = await connector_tools(
        app_state, _principal("acme"), {"type": "connector", "connector_id": name}
    )
    assert {tool.spec.name for tool in everything} == {"get_iban", "add", "slow", "fail"}


async def test_binder_tool_errors_and_timeouts_are_outcomes(
    mcp: mcp_server.RunningServer, app_state: AppState
) -> None:
    acme, entry = _principal("acme"), {"type": "connector"}
    steady = await connector_tools(
        app_state, acme, {**entry, "connector_id": _register(app_state, mcp)}
    )
    fail = next(tool for tool in steady if tool.spec.name == "fail")
    failed = await fail.run(ToolInvocation("c1", "fail", {"reason": "nope"}))
    assert not failed.ok and failed.output.startswith("the tool failed")
    assert failed.audit["outcome"] == "error"
    hasty = _register(app_state, mcp, timeout_s=2)
    slow = next(t for t in await connector_tools(app_state, acme, {**entry, "connector_id": hasty})
                if t.spec.name == "slow")  # fmt: skip
    started = time.monotonic()
    late = await slow.run(ToolInvocation("c2", "slow", {"seconds": 20}))
    assert time.monotonic() - started < 8
    assert not late.ok and "did not answer within 2 s" in late.output
    assert late.audit["outcome"] == "connector_timeout"


async def test_binder_refusals(mcp: mcp_server.RunningServer, app_state: AppState) -> None:
    name = _register(app_state, mcp)
    acme = _principal("acme")
    with pytest.raises(NotFound):
        await connector_tools(
            app_state, _principal("globex"), {"type": "connector", "connector_id": name}
        )
    with pytest.raises(NotFound):
        await connector_tools(app_state, acme, {"type": "connector", "connector_id": "nope"})
    bad_entries: list[dict[str, Any]] = [
        {"type": "connector"},
        {"type": "connector", "connector_id": ["x"]},
        {"type": "connector", "connector_id": name, "tool_configuration": {"include": ["nope"]}},
        {"type": "connector", "connector_id": name, "tool_configuration": {"include": "add"}},
        {"type": "connector", "connector_id": name, "tool_configuration": {"other": []}},
        {
            "type": "connector",
            "connector_id": name,
            "authorization": {"type": "api-key", "value": "k"},
        },
    ]
    for entry in bad_entries:
        with pytest.raises(InvalidRequest):
            await connector_tools(app_state, acme, entry)


async def test_binder_redirect_is_refused(
    mcp: mcp_server.RunningServer, app_state: AppState, tmp_path: Path
) -> None:
    body = ConnectorCreate.model_validate({"name": unique("moved"), "url": mcp.redirect_url})
    name = connector_service(app_state).store.create("acme", None, body, "test").name
    with pytest.raises(Exception, match="registered with") as raised:
        await connector_tools(
            app_state, _principal("acme"), {"type": "connector", "connector_id": name}
        )
    assert getattr(raised.value, "code", None) == "connector_redirect_refused"
    assert mcp.hits() == 0


def test_function_names_the_model_calls_are_valid_and_unique() -> None:
    from mcp_types import Tool

    from souverain.connectors.tools import _function_name

    taken: set[str] = set()
    schema = {"type": "object", "properties": {}}
    names = [_function_name(Tool(name=n, input_schema=schema), taken) for n in
             ("crm.find", "crm_find", "crm/find", "é" * 100, "")]  # fmt: skip
    assert names[:3] == ["crm_find", "crm_find_2", "crm_find_3"]
    assert len(set(names)) == 5 and all(len(n) <= 64 for n in names)


def test_secrets_sealed_at_rest_and_a_wrong_key_is_a_clear_503(
    mcp: mcp_server.RunningServer, app_state: AppState
) -> None:
    import secrets as token_source

    from sqlalchemy import select

    from souverain.connectors.sealing import Sealer
    from souverain.connectors.store import ConnectorStore
    from souverain.errors import StageUnavailable
    from souverain.store.work_tables import connectors

    name = _register(app_state, mcp)
    with app_state.database.connect() as conn:
        row = conn.execute(select(connectors).where(connectors.c.name == name)).mappings().one()
    assert MCP_TOKEN.encode() not in row["secret"] and MCP_TOKEN not in json.dumps(
        {k: v for k, v in row.items() if k != "secret"}
    )
    other = ConnectorStore(app_state.database, Sealer(token_source.token_bytes(32)))
    shown = other.get("acme", name, secrets=False)  # showing it needs no key
    assert shown is not None and shown.public()["headers"] == {"Authorization": "********"}
    with pytest.raises(StageUnavailable, match=r"connectors\.key"):
        other.get("acme", name)
