"""The agents' `document_library` tool against a real app state: `build_state` on SQLite
and on PostgreSQL (pgvector) with the embedded e5 model, the app's own lifespan (ingest
worker, engines), libraries and documents made through the real routes (in process),
then `library_tools` bound and run as each caller.

Covers: one `search_library` tool per entry, passages with citations, the outcome's
classification (a document's `attributes.classification` claim, DLP findings), the
key's ceiling, access (another user's unshared library, another tenant's, an unknown
id, the auditor, a key without the `libraries` scope, a share revoked between bind
and run), malformed entries and hostile queries.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from souverain.agents.library_tool import MAX_QUERY_CHARS, TOOL_NAME, library_tools
from souverain.agents.tools import BoundTool, ToolInvocation, ToolOutcome
from souverain.app import build_state, create_app
from souverain.config import load_settings
from souverain.context import Principal
from souverain.errors import InvalidRequest, NotFound, PermissionDenied
from souverain.state import AppState

from .conftest import ADMIN_KEY
from .databases import server_database

pytestmark = pytest.mark.model
_names = itertools.count()
TRAVEL = "Die Erstattung der Reisekosten erfolgt binnen 30 Tagen nach Einreichung der Belege."
VAULT = "Le code du coffre-fort de la salle des archives est rangé dans le classeur bleu."
CONTACT = "Pour les remboursements de frais, écrire à comptabilite.frais@example.org."


@dataclass
class World:
    state: AppState
    http: httpx.AsyncClient
    keys: dict[str, str] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)

    async def ok(self, method: str, path: str, actor: str | None = None, **kwargs: Any) -> Any:
        key = self.keys[actor] if actor else ADMIN_KEY
        response = await self.http.request(
            method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs
        )
        assert response.status_code in (200, 201, 204), (method, path, response.text)
        return response.json() if response.content else None

    async def user(self, actor: str, tenant: str, role: str, **key: Any) -> None:
        name = f"{actor}{next(_names)}"
        user = await self.ok(
            "POST", "/admin/v1/users", json={"name": name, "role": role, "tenant": tenant}
        )
        created = await self.ok(
            "POST",
            "/admin/v1/keys",
            json={"name": name, "user_id": user["id"], "tenant": tenant, **key},
        )
        self.keys[actor], self.users[actor] = created["key"], user["id"]

    async def document(self, library: str, actor: str, name: str, body: str) -> str:
        library_id = self.libraries[library]
        files = {"file": (name, body.encode(), "text/markdown")}
        created = await self.ok("POST", f"/v1/libraries/{library_id}/documents", actor, files=files)
        path = f"/v1/libraries/{library_id}/documents/{created['id']}/status"
        for _ in range(1800):
            status = (await self.ok("GET", path, actor))["process_status"]
            if status not in ("todo", "in_progress"):
                assert status == "done", status
                self.documents[name] = created["id"]
                return str(created["id"])
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} not processed")

    async def principal(self, actor: str, endpoint: str = "libraries") -> Principal:
        headers = {"authorization": f"Bearer {self.keys[actor]}"}
        return (await self.state.pipeline.open(headers, endpoint)).principal

    async def bind(self, actor: str, *library: str) -> list[BoundTool]:
        ids = [self.libraries.get(name, name) for name in library]
        entry = {"type": "document_library", "library_ids": ids}
        return await library_tools(self.state, await self.principal(actor), entry)

    async def search(self, actor: str, query: Any, *library: str) -> ToolOutcome:
        (tool,) = await self.bind(actor, *library)
        return await tool.run(ToolInvocation("call0", TOOL_NAME, {"query": query}))


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp(f"library-tool-{request.param}")
    with server_database(request.param, tmp) as url:
        async for world in _world(tmp, url):
            yield world


async def _world(tmp: Path, database_url: str) -> AsyncIterator[World]:
    settings = load_settings(None, {"data_dir": tmp / "data"}, environ={})
    state = build_state(settings, database_url=database_url)
    state.keys.ensure_admin(ADMIN_KEY)
    app = create_app(settings, state)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://souverain", timeout=300
        ) as http:
            world = World(state, http)
            for tenant in ("acme", "globex"):
                await world.ok("POST", "/admin/v1/tenants", json={"name": tenant})
            await world.user("creator", "acme", "developer")
            await world.user("reader", "acme", "user")
            await world.user("stranger", "acme", "user")
            await world.user("auditor", "acme", "auditor")
            await world.user("globex", "globex", "admin")
            await world.user("chat_only", "acme", "developer", endpoints=["chat", "models"])
            await world.user("low", "acme", "user", max_classification="internal")
            for name in ("handbook", "empty"):
                created = await world.ok("POST", "/v1/libraries", "creator", json={"name": name})
                world.libraries[name] = created["id"]
            created = await world.ok("POST", "/v1/libraries", "globex", json={"name": "rivals"})
            world.libraries["rivals"] = created["id"]
            for actor in ("reader", "low"):
                await world.ok(
                    "PUT",
                    f"/v1/libraries/{world.libraries['handbook']}/share",
                    "creator",
                    json={
                        "level": "Viewer",
                        "share_with_uuid": str(world.users[actor]),
                        "share_with_type": "User",
                    },
                )
            await world.document("handbook", "creator", "travel.md", TRAVEL)
            vault = await world.document("handbook", "creator", "vault.md", VAULT)
            await world.document("handbook", "creator", "contact.md", CONTACT)
            await world.ok(
                "PUT",
                f"/v1/libraries/{world.libraries['handbook']}/documents/{vault}",
                "creator",
                json={"attributes": {"classification": "restricted"}},
            )
            await world.document("rivals", "globex", "plans.md", "Globex plans a new factory.")
            yield world


async def test_one_search_tool_naming_the_library(world: World) -> None:
    (tool,) = await world.bind("reader", "handbook")
    assert tool.kind == "document_library" and tool.spec.name == TOOL_NAME
    assert '"handbook"' in (tool.spec.description or "")
    query = tool.spec.parameters["properties"]["query"]
    assert query["type"] == "string" and query["maxLength"] == MAX_QUERY_CHARS
    assert tool.spec.parameters["required"] == ["query"] and not tool.spec.requires_approval


async def test_search_returns_cited_passages(world: World) -> None:
    outcome = await world.search("reader", "Wann werden Reisekosten erstattet?", "handbook")
    assert outcome.ok, outcome.output
    assert outcome.output.startswith("Passages found")
    assert "[1] travel.md (library 'handbook')" in outcome.output
    assert "binnen 30 Tagen" in outcome.output
    first = outcome.citations[0]
    assert first["type"] == "tool_reference" and first["tool"] == "document_library"
    assert first["title"] == "travel.md" and first["index"] == 1
    assert first["document_id"] == world.documents["travel.md"]
    assert first["library_id"] == world.libraries["handbook"]
    assert first["library_name"] == "handbook" and first["page"] is None
    assert first["char_start"] == 0 and first["char_end"] == len(TRAVEL)
    assert len(outcome.citations) == 3  # every document of the library, best first
    assert outcome.audit["tool"] == TOOL_NAME and outcome.audit["outcome"] == "ok"
    assert outcome.audit["libraries"] == [world.libraries["handbook"]]
    assert "Reisekosten" not in str(outcome.audit)  # never the query nor the passages


async def test_classification_is_the_highest_of_the_documents_returned(world: World) -> None:
    outcome = await world.search("reader", "code du coffre-fort", "handbook")
    assert outcome.ok
    levels = {c["document_name"]: c["classification"] for c in outcome.citations}
    # vault.md: its attributes claim restricted; contact.md: an e-mail address (DLP:
    # internal); travel.md: nothing found, the default level.
    assert levels == {"vault.md": "restricted", "contact.md": "internal", "travel.md": "public"}
    assert outcome.classification == "restricted"


async def test_passages_above_the_keys_ceiling_are_withheld(world: World) -> None:
    outcome = await world.search("low", "code du coffre-fort", "handbook")
    assert not outcome.ok and outcome.classification is None and not outcome.citations
    assert "classified 'restricted'" in outcome.output and "withheld" in outcome.output
    assert "classeur" not in outcome.output  # nothing of the passages
    assert outcome.audit["outcome"] == "withheld"


async def test_libraries_the_caller_cannot_see_are_404_naming_them(world: World) -> None:
    handbook, rivals = world.libraries["handbook"], world.libraries["rivals"]
    for actor, names in [
        ("stranger", ["handbook"]),  # same tenant, not shared with them
        ("globex", ["handbook"]),  # another tenant's admin
        ("creator", ["rivals"]),  # another tenant's library
        ("reader", ["handbook", "rivals"]),  # one good, one foreign
        ("creator", ["00000000-0000-4000-8000-000000000000"]),
    ]:
        with pytest.raises(NotFound) as caught:
            await world.bind(actor, *names)
        assert caught.value.status_code == 404 and caught.value.code == "library_not_found"
        unseen = names[-1]
        assert repr(world.libraries.get(unseen, unseen)) in caught.value.message
    assert handbook not in str(await _message(world, "creator", "rivals"))
    assert rivals in str(await _message(world, "creator", "rivals"))


async def _message(world: World, actor: str, library: str) -> str:
    try:
        await world.bind(actor, library)
    except NotFound as exc:
        return exc.message
    raise AssertionError("bound")


async def test_the_auditor_and_a_key_without_the_libraries_scope_are_refused(
    world: World,
) -> None:
    with pytest.raises(PermissionDenied) as caught:
        await world.bind("auditor", "handbook")
    assert caught.value.status_code == 403
    principal = await world.principal("chat_only", endpoint="chat")
    entry = {"type": "document_library", "library_ids": [world.libraries["handbook"]]}
    with pytest.raises(PermissionDenied) as caught:
        await library_tools(world.state, principal, entry)
    assert "libraries" in caught.value.message and caught.value.status_code == 403


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "document_library"},
        {"type": "document_library", "library_ids": []},
        {"type": "document_library", "library_ids": "handbook"},
        {"type": "document_library", "library_ids": [7]},
        {"type": "document_library", "library_ids": [{"id": "x"}]},
        {"type": "document_library", "library_ids": ["x" * 10_000]},
        {"type": "document_library", "library_ids": [str(n) for n in range(33)]},
    ],
)
async def test_malformed_entries_are_400(world: World, entry: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await library_tools(world.state, await world.principal("creator"), entry)
    assert caught.value.status_code == 400 and caught.value.param == "tools.library_ids"


async def test_duplicate_ids_bind_one_library(world: World) -> None:
    (tool,) = await world.bind("creator", "handbook", "handbook")
    outcome = await tool.run(ToolInvocation("c", TOOL_NAME, {"query": "Reisekosten"}))
    assert outcome.audit["libraries"] == [world.libraries["handbook"]]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("x" * 1_000_000, f"takes at most {MAX_QUERY_CHARS}"),
        ("Reisekosten " * 20, f"takes at most {MAX_QUERY_CHARS}"),
        ("   \n\t ", "non-empty"),
        ("", "non-empty"),
        (None, "needs a `query` string"),
        (["Reisekosten"], "needs a `query` string"),
        ({"$ne": ""}, "needs a `query` string"),
    ],
)
async def test_bad_queries_fail_cleanly(world: World, query: Any, reason: str) -> None:
    outcome = await world.search("reader", query, "handbook")
    assert not outcome.ok and reason in outcome.output, outcome.output
    assert len(outcome.output) < 300 and not outcome.citations
    assert outcome.audit["outcome"] == "bad_query"


async def test_no_result_is_a_failed_call_saying_so(world: World) -> None:
    outcome = await world.search("creator", "Reisekosten", "empty")
    assert not outcome.ok and outcome.audit["outcome"] == "no_result"
    assert outcome.output == "no passage of the library 'empty' matches 'Reisekosten'"


async def test_a_share_revoked_after_the_bind_fails_the_run(world: World) -> None:
    handbook = world.libraries["handbook"]
    share = {"share_with_uuid": str(world.users["reader"]), "share_with_type": "User"}
    (tool,) = await world.bind("reader", "handbook")
    await world.ok("DELETE", f"/v1/libraries/{handbook}/share", "creator", json=share)
    try:
        outcome = await tool.run(ToolInvocation("c", TOOL_NAME, {"query": "Reisekosten"}))
    finally:
        await world.ok(
            "PUT", f"/v1/libraries/{handbook}/share", "creator", json={**share, "level": "Viewer"}
        )
    assert not outcome.ok and outcome.audit["outcome"] == "error"
    assert "does not exist or you do not have access" in outcome.output
