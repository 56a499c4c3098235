"""Who may do what with a library, over real HTTP, on SQLite and PostgreSQL: the platform
owner, the creator, the tenant's admin, a member of a team it is shared with (viewer,
editor), a user of the tenant without a share, another tenant's admin, and an auditor,
each trying to list, read, search, upload to and delete from one library."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import server_database

pytestmark = pytest.mark.model
_names = itertools.count()
SECRET = "Le code du coffre est rangé dans le classeur bleu."
ACTORS = ("owner", "creator", "admin", "viewer", "editor", "stranger", "globex", "auditor")
# actor: listed, get, search named, hits when searching everything, upload, delete a
# document, delete the library
EXPECTED: dict[str, tuple[bool | int, ...]] = {
    "owner": (True, 200, 200, True, 201, 204, 200),
    "creator": (True, 200, 200, True, 201, 204, 200),
    "admin": (True, 200, 200, True, 201, 204, 200),
    "viewer": (True, 200, 200, True, 403, 403, 403),
    "editor": (True, 200, 200, True, 201, 204, 403),
    "stranger": (False, 404, 404, False, 404, 404, 404),
    "globex": (False, 404, 404, False, 404, 404, 404),
    "auditor": (403, 403, 403, 403, 403, 403, 403),
}


@dataclass
class World:
    server: Server
    keys: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, actor: str = "owner", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys.get(actor, ADMIN_KEY)}"}
        return httpx.request(method, self.server.url + path, headers=headers, timeout=60, **kwargs)

    def ok(self, method: str, path: str, actor: str = "owner", **kwargs: Any) -> Any:
        response = self.call(method, path, actor, **kwargs)
        assert response.status_code in (200, 201, 204), (method, path, response.text)
        return response.json() if response.content else None

    def user_key(self, tenant: str, role: str, teams: list[int] | None = None, **key: Any) -> str:
        name = f"{role}{next(_names)}"
        user = self.ok(
            "POST",
            "/admin/v1/users",
            json={"name": name, "role": role, "tenant": tenant, "teams": teams or []},
        )
        created = self.ok(
            "POST",
            "/admin/v1/keys",
            json={"name": name, "user_id": user["id"], "tenant": tenant, **key},
        )
        return str(created["key"])

    def upload(self, library_id: str, actor: str, name: str, body: str) -> httpx.Response:
        files = {"file": (name, body.encode(), "text/markdown")}
        return self.call("POST", f"/v1/libraries/{library_id}/documents", actor, files=files)

    def processed(self, library_id: str, document_id: str) -> None:
        path = f"/v1/libraries/{library_id}/documents/{document_id}/status"
        for _ in range(600):
            status = self.ok("GET", path, "creator")["process_status"]
            if status not in ("todo", "in_progress"):
                assert status == "done"
                return
            time.sleep(0.1)
        raise AssertionError(f"{document_id} not processed")

    def library_with_document(self, name: str) -> tuple[str, str]:
        library = self.ok("POST", "/v1/libraries", "creator", json={"name": name})
        for team, level in (("payments", "Viewer"), ("editors", "Editor")):
            self.ok(
                "PUT",
                f"/v1/libraries/{library['id']}/share",
                "creator",
                json={
                    "level": level,
                    "share_with_uuid": self.keys[f"team:{team}"],
                    "share_with_type": "Workspace",
                },
            )
        document = self.upload(library["id"], "creator", "coffre.md", SECRET).json()
        self.processed(library["id"], document["id"])
        return library["id"], document["id"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"library-acl-{request.param}")
    with server_database(request.param, tmp) as url:
        server = start_server(tmp, {"dlp": {"enabled": False}}, env={"SOUVERAIN_DATABASE_URL": url})
        world = World(server)
        try:
            for tenant in ("acme", "globex"):
                world.ok("POST", "/admin/v1/tenants", json={"name": tenant})
            teams = {}
            for team in ("payments", "editors", "others"):
                teams[team] = world.ok(
                    "POST", "/admin/v1/teams", json={"name": team, "tenant": "acme"}
                )["id"]
                world.keys[f"team:{team}"] = str(teams[team])
            world.keys["creator"] = world.user_key("acme", "developer", [teams["others"]])
            world.keys["admin"] = world.user_key("acme", "admin")
            world.keys["viewer"] = world.user_key("acme", "user", [teams["payments"]])
            world.keys["editor"] = world.user_key("acme", "user", [teams["editors"]])
            world.keys["stranger"] = world.user_key("acme", "user", [teams["others"]])
            world.keys["globex"] = world.user_key("globex", "admin")
            world.keys["auditor"] = world.user_key("acme", "auditor")
            yield world
        finally:
            stop_server(server)


def _status_or_bool(response: httpx.Response, found: bool) -> bool | int:
    return found if response.status_code == 200 else response.status_code


@pytest.mark.parametrize("actor", ACTORS)
def test_access_matrix(world: World, actor: str) -> None:
    library_id, document_id = world.library_with_document(f"coffre-{actor}")
    base = f"/v1/libraries/{library_id}"
    listed = world.call("GET", "/v1/libraries", actor)
    in_list = listed.status_code == 200 and library_id in {
        lib["id"] for lib in listed.json()["data"]
    }
    named = world.call(
        "POST",
        "/v1/libraries/search",
        actor,
        json={"query": "code du coffre", "library_ids": [library_id]},
    )
    everything = world.call("POST", "/v1/libraries/search", actor, json={"query": "code du coffre"})
    hits = everything.status_code == 200 and any(
        hit["library_id"] == library_id for hit in everything.json()["data"]
    )
    if named.status_code == 200:  # the chunk, found by whoever may read it
        assert named.json()["data"][0]["text"] == SECRET
    else:
        assert SECRET not in named.text
    assert SECRET not in everything.text or hits
    got_library = world.call("GET", base, actor)
    uploaded = world.upload(library_id, actor, "note.md", "Une note ajoutée.")
    if uploaded.status_code == 201:
        world.processed(library_id, uploaded.json()["id"])
    deleted = world.call("DELETE", f"{base}/documents/{document_id}", actor)
    dropped = world.call("DELETE", base, actor)
    got = (
        _status_or_bool(listed, in_list),
        got_library.status_code,
        named.status_code,
        _status_or_bool(everything, hits),
        uploaded.status_code,
        deleted.status_code,
        dropped.status_code,
    )
    assert got == EXPECTED[actor], actor
    for response in (listed, got_library, named, everything, uploaded, deleted, dropped):
        if response.status_code in (403, 404):  # nothing about the library leaks in errors
            assert SECRET not in response.text and "coffre-" not in response.text


def test_documents_of_other_libraries_are_404(world: World) -> None:
    first, document_id = world.library_with_document("first")
    second = world.ok("POST", "/v1/libraries", "creator", json={"name": "second"})["id"]
    response = world.call("GET", f"/v1/libraries/{second}/documents/{document_id}", "creator")
    assert response.status_code == 404
    text = world.call(
        "GET", f"/v1/libraries/{first}/documents/{document_id}/text_content", "viewer"
    )
    assert text.json()["text"] == SECRET


def test_a_key_without_the_libraries_scope_is_refused(world: World) -> None:
    key = world.user_key("acme", "developer", endpoints=["chat", "embeddings"])
    response = httpx.get(
        world.server.url + "/v1/libraries", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 403 and "libraries" in response.json()["error"]["message"]


def test_sharing_is_for_owners_and_within_the_tenant(world: World) -> None:
    library_id, _ = world.library_with_document("shared")
    share = {
        "level": "Editor",
        "share_with_uuid": world.keys["team:payments"],
        "share_with_type": "Workspace",
    }
    assert (
        world.call("PUT", f"/v1/libraries/{library_id}/share", "editor", json=share).status_code
        == 403
    )
    assert (
        world.call("PUT", f"/v1/libraries/{library_id}/share", "admin", json=share).status_code
        == 200
    )
    # A team of another tenant, named by id: refused, nothing is shared across tenants.
    globex_team = world.ok(
        "POST", "/admin/v1/teams", json={"name": "research", "tenant": "globex"}
    )["id"]
    other = {**share, "share_with_uuid": str(globex_team)}
    response = world.call("PUT", f"/v1/libraries/{library_id}/share", "creator", json=other)
    assert response.status_code == 400
    shares = world.ok("GET", f"/v1/libraries/{library_id}/share", "viewer")["data"]
    assert ("Editor", "Workspace", world.keys["team:payments"]) in {
        (s["role"], s["share_with_type"], s["share_with_uuid"]) for s in shares
    }
    # Unsharing takes the access away at once.
    world.ok(
        "DELETE",
        f"/v1/libraries/{library_id}/share",
        "creator",
        json={"share_with_uuid": world.keys["team:payments"], "share_with_type": "Workspace"},
    )
    assert world.call("GET", f"/v1/libraries/{library_id}", "viewer").status_code == 404


def test_embeddings_go_through_the_pipeline_as_the_uploader(world: World) -> None:
    """A key that may not use the embeddings model cannot have documents embedded: the
    document fails with the pipeline's reason. Other uploads show up in usage."""
    library = world.ok("POST", "/v1/libraries", "creator", json={"name": "scoped"})
    chat_only = world.user_key("acme", "developer", models=["smollm2-135m-instruct"])
    world.keys["chat-only"] = chat_only
    tenant_id = world.ok("GET", f"/v1/libraries/{library['id']}", "creator")["tenant_id"]
    world.ok(
        "PUT",
        f"/v1/libraries/{library['id']}/share",
        "creator",
        json={"level": "Editor", "share_with_uuid": tenant_id, "share_with_type": "Org"},
    )
    document = world.upload(library["id"], "chat-only", "n.md", "Texte à indexer.").json()
    path = f"/v1/libraries/{library['id']}/documents/{document['id']}"
    for _ in range(300):
        status = world.ok("GET", path + "/status", "creator")
        if status["process_status"] not in ("todo", "in_progress"):
            break
        time.sleep(0.1)
    assert status["process_status"] == "error"
    assert "multilingual-e5-small" in status["process_error"]
    assert "do not have access" in status["process_error"]
    world.library_with_document("counted")  # embedded as the creator: usage rows
    for _ in range(100):  # the usage recorder writes in the background
        usage = world.ok("GET", "/admin/v1/usage?group_by=endpoint,model&tenant=acme")["data"]
        rows = [row for row in usage if row["endpoint"] == "libraries"]
        if rows:
            break
        time.sleep(0.1)
    assert rows and rows[0]["model"] == "multilingual-e5-small" and rows[0]["requests"] > 0
