"""Every refusal of an authenticated caller and every change leaves one leaf, with its
true outcome, over real HTTP on SQLite and PostgreSQL: endpoint scopes, 400s on model
routes, grounding on a library the caller cannot read, document renames and attribute
changes, reads of document text, a failed team-member removal, a change that failed
after its leaf was written; and nothing for a caller who is not authenticated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .audit_world import AuditWorld, audit_world
from .recording_upstream import RecordingUpstream

TEXT = "# Procédure\n\nLe coffre se trouve au deuxième étage, bureau 214.\n"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    upstream: RecordingUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AuditWorld]:
    tmp = tmp_path_factory.mktemp(f"audit-coverage-{request.param}")
    with audit_world(request.param, tmp, upstream) as world:
        yield world


class Since:
    """The leaves written after this point (read as the owner, who sees every tenant)."""

    def __init__(self, world: AuditWorld) -> None:
        self.world = world
        self.after = max((item["index"] for item in world.leaves()), default=-1) + 1

    def leaves(self, **query: Any) -> list[dict[str, Any]]:
        items = self.world.leaves(after=str(self.after), **query)
        return [item["leaf"] for item in items]


def test_an_endpoint_scope_refusal_leaves_one_leaf(world: AuditWorld) -> None:
    world.keys["acme:embeddings-only"] = world.user_key("acme", "user", endpoints=["embeddings"])
    since = Since(world)
    refused = world.chat("acme:embeddings-only")
    assert refused.status_code == 403
    (leaf,) = since.leaves()
    assert leaf["kind"] == "refusal" and leaf["tenant"] == "acme" and leaf["endpoint"] == "chat"
    assert leaf["outcome"] == "permission_error" and leaf["status"] == 403
    assert leaf["route"] == "POST /v1/chat/completions"
    # The tenant's own admin finds it; the other tenant's does not.
    mine = [item["leaf"] for item in world.leaves("acme:admin", kind="refusal")]
    assert leaf["request_id"] in {m["request_id"] for m in mine}
    theirs = world.leaves("globex:admin", kind="refusal")
    assert leaf["request_id"] not in {item["leaf"]["request_id"] for item in theirs}


def test_a_bad_body_on_a_model_route_leaves_one_leaf(world: AuditWorld) -> None:
    for path, body in (
        ("/v1/chat/completions", {"model": "cloud"}),
        ("/v1/embeddings", {"model": "emb", "input": {"not": "text"}}),
        ("/v1/fim/completions", "[not json"),
    ):
        since = Since(world)
        kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"content": body}
        assert world.call("POST", path, "acme:user", **kwargs).status_code == 400
        (leaf,) = since.leaves()
        assert leaf["outcome"] == "invalid_request_error" and leaf["status"] == 400, path
        assert leaf["route"] == f"POST {path}" and leaf["tenant"] == "acme"
    # A refusal the pipeline records itself (a model that cannot chat) stays one leaf.
    since = Since(world)
    assert world.chat("acme:user", model="emb").status_code == 400
    (leaf,) = since.leaves()
    assert leaf["kind"] == "request" and leaf["model"] == "emb" and leaf["status"] == 400


def test_a_stranger_leaves_no_leaf(world: AuditWorld) -> None:
    since = Since(world)
    world.keys["nobody"] = "sk-sv-" + "x" * 40
    assert world.chat("nobody").status_code == 401
    assert world.call("GET", "/admin/v1/users", "nobody").status_code == 401
    assert since.leaves() == []


def test_removing_a_non_member_is_refused_and_not_logged_as_done(world: AuditWorld) -> None:
    team = world.ok("POST", "/admin/v1/teams", "acme:admin", json={"name": "ops"})
    user = world.ok("POST", "/admin/v1/users", "acme:admin", json={"name": "dora"})
    path = f"/admin/v1/teams/{team['id']}/members/{user['id']}"
    since = Since(world)
    assert world.call("DELETE", path, "acme:admin").status_code == 404
    (leaf,) = since.leaves()
    assert leaf["kind"] == "refusal" and leaf["outcome"] == "not_found_error"
    assert leaf["route"] == f"DELETE {path}"
    world.ok("POST", f"/admin/v1/teams/{team['id']}/members", "acme:admin",
             json={"user_id": user["id"]})  # fmt: skip
    since = Since(world)
    world.ok("DELETE", path, "acme:admin")
    (leaf,) = since.leaves()
    assert leaf["action"] == "team.remove_member" and leaf["kind"] == "admin"


def test_documents_renames_attributes_and_text_reads_are_recorded(world: AuditWorld) -> None:
    library = world.ok("POST", "/v1/libraries", "acme:developer", json={"name": "procédures"})
    documents = f"/v1/libraries/{library['id']}/documents"
    files = {"file": ("coffre.md", TEXT.encode(), "text/markdown")}
    document = world.ok("POST", documents, "acme:developer", files=files)
    world.processed(library["id"], document["id"], "acme:developer")
    one = f"{documents}/{document['id']}"

    since = Since(world)
    world.ok("PATCH", one, "acme:developer", json={"name": "Dossier Jeanne Dupont.md"})
    world.ok("PATCH", one, "acme:developer", json={"attributes": {"service": "RH"}})
    renamed, tagged = since.leaves()
    for leaf, fields in ((renamed, ["name"]), (tagged, ["attributes"])):
        assert leaf["action"] == "library.document.update" and leaf["tenant"] == "acme"
        assert leaf["target"] == {"library": library["id"], "document": document["id"],
                                  "fields": fields}  # fmt: skip
    assert "Jeanne" not in str(renamed) and "RH" not in str(tagged)  # which fields, not values

    since = Since(world)
    text = world.ok("GET", f"{one}/text_content", "acme:developer")["text"]
    (read,) = since.leaves()
    assert read["kind"] == "read" and read["action"] == "library.document.read_text"
    assert read["target"]["document"] == document["id"] and read["target"]["chars"] == len(text)
    assert "coffre" not in str(read)

    since = Since(world)
    assert world.call("POST", f"{one}/reprocess", "acme:developer").status_code == 204
    world.processed(library["id"], document["id"], "acme:developer")
    (again,) = since.leaves(kind="admin")  # (its embeddings calls have leaves of their own)
    assert again["action"] == "library.document.reprocess"

    # Someone who may not change it: one refusal leaf, no change leaf.
    since = Since(world)
    refused = world.call("PATCH", one, "acme:user", json={"name": "x.md"})
    assert refused.status_code in (403, 404)
    (leaf,) = since.leaves()
    assert leaf["kind"] == "refusal" and leaf["status"] == refused.status_code

    # Grounding on a library the caller cannot read is a refusal with a leaf.
    since = Since(world)
    grounded = world.chat("globex:user", library_ids=[library["id"]])
    assert grounded.status_code == 404
    (leaf,) = since.leaves()
    assert leaf["kind"] == "refusal" and leaf["tenant"] == "globex" and leaf["status"] == 404

    # A change that was recorded and then failed gets a second leaf with the outcome.
    stranger = world.ok("POST", "/admin/v1/users", "acme:admin", json={"name": "erin"})
    since = Since(world)
    unshare = world.call("DELETE", f"/v1/libraries/{library['id']}/share", "acme:developer",
                         json={"share_with_uuid": str(stranger["id"]), "share_with_type": "User"})  # fmt: skip
    assert unshare.status_code == 404
    intent, outcome = since.leaves()
    assert intent["action"] == outcome["action"] == "library.unshare"
    assert "outcome" not in intent and outcome["outcome"] == "not_found_error"
    assert outcome["corrects"] == intent["seq"] and outcome["kind"] == "admin"
