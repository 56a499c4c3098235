"""Identity over real HTTP, on SQLite and on PostgreSQL: the RBAC matrix, tenant
isolation, keys (shown once, scopes, expiry, revocation), uniform 401s, bad admin input.

The model calls go to a recording upstream (a named fake; tests/recording_upstream.py).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from souverain.cli import cli
from souverain.store.tables import api_keys

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import server_database
from .recording_upstream import RecordingUpstream

ROLES = ("owner", "admin", "auditor", "developer", "user")
_names = itertools.count()


def unique(prefix: str = "x") -> str:
    return f"{prefix}{next(_names)}-{time.monotonic_ns() % 10**6}"


@dataclass
class World:
    """A running gateway with two tenants, and a key per role in tenant acme."""

    server: Server
    database_url: str
    ids: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # role (or label) -> key

    def call(
        self, method: str, path: str, key: str | None = None, body: Any = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or ADMIN_KEY}"}
        return httpx.request(
            method, self.server.url + path, headers=headers, json=body, timeout=30, **kwargs
        )

    def ok(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        response = self.call(method, path, key, body)
        assert response.status_code in (200, 201), (method, path, response.text)
        return response.json()

    def user_with_key(
        self, tenant: str, role: str, teams: list[int] | None = None
    ) -> tuple[int, str]:
        user = self.ok("POST", "/admin/v1/users",
                       {"name": unique(role), "role": role, "tenant": tenant, "teams": teams or []})  # fmt: skip
        key = self.ok("POST", "/admin/v1/keys",
                      {"name": unique("key"), "user_id": user["id"], "tenant": tenant})  # fmt: skip
        return user["id"], key["key"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    upstream: RecordingUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"identity-{request.param}")
    with server_database(request.param, tmp) as url:
        deployment = {"engine": "openai", "base_url": upstream.url, "jurisdiction": "FR"}
        config = {
            "models": [
                {"id": "cloud", "aliases": ["cloud-alias"], "deployments": [deployment]},
                {"id": "other", "aliases": ["other-alias"], "deployments": [deployment]},
                {"id": "emb", "type": "embeddings", "deployments": [deployment]},
            ],
            "dlp": {"enabled": False},
        }
        server = start_server(tmp, config, env={"SOUVERAIN_DATABASE_URL": url})
        world = World(server, url)
        try:
            for name in ("acme", "globex"):
                world.ids[name] = world.ok("POST", "/admin/v1/tenants", {"name": name})["id"]
            world.ids["payments"] = world.ok(
                "POST", "/admin/v1/teams", {"name": "payments", "tenant": "acme"})["id"]  # fmt: skip
            world.ids["research"] = world.ok(
                "POST", "/admin/v1/teams", {"name": "research", "tenant": "globex"})["id"]  # fmt: skip
            world.keys["owner"] = ADMIN_KEY
            for role in ROLES[1:]:
                user_id, key = world.user_with_key("acme", role, [world.ids["payments"]])
                world.ids[role] = user_id
                world.keys[role] = key
            world.ids["globex-admin"], world.keys["globex-admin"] = world.user_with_key(
                "globex", "admin"
            )
            yield world
        finally:
            stop_server(server)


# ---- the RBAC matrix ------------------------------------------------------------------------

Setup = Callable[[World], dict[str, Any]]


def _fresh_team(w: World) -> dict[str, Any]:
    return {"id": w.ok("POST", "/admin/v1/teams", {"name": unique("t"), "tenant": "acme"})["id"]}


def _fresh_user(w: World) -> dict[str, Any]:
    return {"id": w.ok("POST", "/admin/v1/users", {"name": unique("u"), "tenant": "acme"})["id"]}


def _fresh_member(w: World) -> dict[str, Any]:
    user = _fresh_user(w)["id"]
    w.ok("POST", f"/admin/v1/teams/{w.ids['payments']}/members", {"user_id": user})
    return {"id": user}


def _developer_key(w: World) -> dict[str, Any]:
    body = {"name": unique("dev"), "user_id": w.ids["developer"], "tenant": "acme"}
    return {"id": w.ok("POST", "/admin/v1/keys", body)["id"]}


def _fresh_tenant(w: World) -> dict[str, Any]:
    return {"id": w.ok("POST", "/admin/v1/tenants", {"name": unique("tenant")})["id"]}


def _nothing(w: World) -> dict[str, Any]:
    return {}


ADMINS = {"owner", "admin"}
READERS = {"owner", "admin", "auditor"}
KEY_HOLDERS = {"owner", "admin", "developer"}

# (route, method, path, body, setup, roles allowed). Bodies and paths are formatted with
# the world's ids and the setup's fresh object ("{id}").
MATRIX: list[tuple[str, str, str, Any, Setup, set[str]]] = [
    ("tenants.create", "POST", "/admin/v1/tenants", {"name": "{unique}"}, _nothing, {"owner"}),
    ("tenants.list", "GET", "/admin/v1/tenants", None, _nothing, READERS),
    ("tenants.get", "GET", "/admin/v1/tenants/{acme}", None, _nothing, READERS),
    ("tenants.update", "PATCH", "/admin/v1/tenants/{acme}", {"limits": {}}, _nothing, {"owner"}),
    ("tenants.delete", "DELETE", "/admin/v1/tenants/{id}", None, _fresh_tenant, {"owner"}),
    ("teams.create", "POST", "/admin/v1/teams", {"name": "{unique}"}, _nothing, ADMINS),
    ("teams.list", "GET", "/admin/v1/teams", None, _nothing, READERS),
    ("teams.get", "GET", "/admin/v1/teams/{payments}", None, _nothing, READERS),
    (
        "teams.update",
        "PATCH",
        "/admin/v1/teams/{id}",
        {"limits": {"rpm": 100}},
        _fresh_team,
        ADMINS,
    ),
    ("teams.delete", "DELETE", "/admin/v1/teams/{id}", None, _fresh_team, ADMINS),
    (
        "teams.add_member",
        "POST",
        "/admin/v1/teams/{payments}/members",
        {"user_id": "{id}"},
        _fresh_user,
        ADMINS,
    ),
    (
        "teams.remove_member",
        "DELETE",
        "/admin/v1/teams/{payments}/members/{id}",
        None,
        _fresh_member,
        ADMINS,
    ),
    ("users.create", "POST", "/admin/v1/users", {"name": "{unique}"}, _nothing, ADMINS),
    ("users.list", "GET", "/admin/v1/users", None, _nothing, READERS),
    ("users.get", "GET", "/admin/v1/users/{user}", None, _nothing, READERS),
    ("users.update", "PATCH", "/admin/v1/users/{id}", {"disabled": True}, _fresh_user, ADMINS),
    ("users.delete", "DELETE", "/admin/v1/users/{id}", None, _fresh_user, ADMINS),
    ("roles.list", "GET", "/admin/v1/roles", None, _nothing, READERS),
    ("keys.create", "POST", "/admin/v1/keys", {"name": "{unique}"}, _nothing, KEY_HOLDERS),
    ("keys.list", "GET", "/admin/v1/keys", None, _nothing, KEY_HOLDERS),
    ("keys.revoke", "DELETE", "/admin/v1/keys/{id}", None, _developer_key, KEY_HOLDERS),
    ("usage", "GET", "/admin/v1/usage", None, _nothing, READERS),
    ("audit.leaves", "GET", "/admin/v1/audit/leaves", None, _nothing, READERS),
    ("audit.checkpoint", "GET", "/admin/v1/audit/checkpoint", None, _nothing, READERS),
    ("audit.erase", "POST", "/admin/v1/audit/erase", {"subject": "nobody"}, _nothing, ADMINS),
    ("providers.list", "GET", "/admin/v1/providers", None, _nothing, ADMINS),
    (
        "providers.restore",
        "POST",
        "/admin/v1/providers/restore",
        {"deployment": "none"},
        _nothing,
        {"owner"},
    ),
]


def _fill(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        if template in ("{id}",):  # a bare id stays an int in JSON bodies
            return values["id"]
        return template.format(**values)
    if isinstance(template, dict):
        return {key: _fill(value, values) for key, value in template.items()}
    return template


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("route", "method", "path", "body", "setup", "allowed"),
    MATRIX,
    ids=[row[0] for row in MATRIX],
)
def test_rbac_matrix(
    world: World, role: str, route: str, method: str, path: str, body: Any, setup: Setup,
    allowed: set[str],
) -> None:  # fmt: skip
    values = {**world.ids, "user": world.ids["user"], "unique": unique(role), **setup(world)}
    response = world.call(method, _fill(path, values), world.keys[role], _fill(body, values))
    if role in allowed:
        assert response.status_code in (200, 201), (route, role, response.text)
    else:
        assert response.status_code == 403, (route, role, response.text)
        assert response.json()["error"]["type"] == "permission_error"


def test_every_admin_route_is_in_the_matrix(world: World) -> None:
    """A new admin route must be added to the matrix (and so get its RBAC test)."""
    from souverain.app import identity_routes

    covered = {(method, path.split("{")[0].rstrip("/")) for _, method, path, *_ in MATRIX}
    for route in identity_routes():
        for method in route.methods or ():
            if method == "HEAD":
                continue
            prefix = route.path.split("{")[0].rstrip("/")
            assert (method, prefix) in covered, (method, route.path)


# ---- tenant isolation -----------------------------------------------------------------------


def test_a_tenant_admin_never_sees_another_tenant(world: World) -> None:
    admin = world.keys["admin"]
    research, globex_admin = world.ids["research"], world.ids["globex-admin"]
    team_names = {team["name"] for team in world.ok("GET", "/admin/v1/teams", key=admin)["data"]}
    assert "payments" in team_names and "research" not in team_names
    users = world.ok("GET", "/admin/v1/users", key=admin)["data"]
    assert {user["tenant"] for user in users} == {"acme"}
    assert [t["name"] for t in world.ok("GET", "/admin/v1/tenants", key=admin)["data"]] == ["acme"]
    assert {k["tenant"] for k in world.ok("GET", "/admin/v1/keys", key=admin)["data"]} == {"acme"}
    for method, path, body in [
        ("GET", f"/admin/v1/teams/{research}", None),
        ("PATCH", f"/admin/v1/teams/{research}", {"limits": {"rpm": 1}}),
        ("DELETE", f"/admin/v1/teams/{research}", None),
        ("GET", f"/admin/v1/users/{globex_admin}", None),
        ("PATCH", f"/admin/v1/users/{globex_admin}", {"disabled": True}),
        ("DELETE", f"/admin/v1/users/{globex_admin}", None),
        ("GET", f"/admin/v1/tenants/{world.ids['globex']}", None),
        ("POST", f"/admin/v1/teams/{research}/members", {"user_id": world.ids["user"]}),
        ("POST", "/admin/v1/keys", {"name": "x", "team": "research"}),
        ("POST", "/admin/v1/keys", {"name": "x", "user_id": globex_admin}),
        ("POST", "/admin/v1/users", {"name": unique(), "teams": [research]}),
    ]:
        response = world.call(method, path, admin, body)
        assert response.status_code == 404, (method, path, response.text)  # as if absent
    globex_keys = world.ok("GET", "/admin/v1/keys", key=world.keys["globex-admin"])["data"]
    response = world.call("DELETE", f"/admin/v1/keys/{globex_keys[0]['id']}", admin)
    assert response.status_code == 404
    for body in ({"name": unique(), "tenant": "globex"},):
        assert world.call("POST", "/admin/v1/teams", admin, body).status_code == 403
    # ...and the objects are untouched.
    assert world.ok("GET", f"/admin/v1/teams/{research}")["limits"]["rpm"] is None
    assert world.ok("GET", f"/admin/v1/users/{globex_admin}")["disabled"] is False


def test_developers_manage_only_their_own_keys(world: World) -> None:
    developer = world.keys["developer"]
    mine = world.ok("POST", "/admin/v1/keys", {"name": unique("mine")}, key=developer)
    assert mine["user_id"] == world.ids["developer"] and mine["role"] == "developer"
    listed = world.ok("GET", "/admin/v1/keys", key=developer)["data"]
    assert {key["user_id"] for key in listed} == {world.ids["developer"]}
    for body in (
        {"name": "x", "user_id": world.ids["user"]},  # someone else's
        {"name": "x", "role": "admin"},  # more than they hold
        {"name": "x", "team": "not-mine"},
    ):
        response = world.call("POST", "/admin/v1/keys", developer, body)
        assert response.status_code in (403, 404), (body, response.text)
    user_key = world.ok("POST", "/admin/v1/keys", {"name": "u", "user_id": world.ids["user"]})
    assert world.call("DELETE", f"/admin/v1/keys/{user_key['id']}", developer).status_code == 404
    # A key the developer made for the team they belong to is billed there.
    billed = world.ok("POST", "/admin/v1/keys", {"name": "b", "team": "payments"}, key=developer)
    assert billed["team"] == "payments"


def test_nobody_grants_more_than_they_hold(world: World) -> None:
    admin = world.keys["admin"]
    assert world.call("POST", "/admin/v1/users", admin,
                      {"name": unique(), "role": "owner"}).status_code == 403  # fmt: skip
    assert world.call("POST", "/admin/v1/keys", admin,
                      {"name": "x", "role": "owner"}).status_code == 403  # fmt: skip
    # A key for a user never carries more than the user's role.
    response = world.call("POST", "/admin/v1/keys", admin,
                          {"name": "x", "user_id": world.ids["user"], "role": "admin"})  # fmt: skip
    assert response.status_code == 400
    scoped = world.ok("POST", "/admin/v1/keys",
                      {"name": unique(), "role": "admin", "models": ["cloud"]}, key=admin)  # fmt: skip
    response = world.call("POST", "/admin/v1/keys", scoped["key"],
                          {"name": "wider", "models": ["cloud", "other"]})  # fmt: skip
    assert response.status_code == 403 and "other" in response.json()["error"]["message"]


# ---- keys -----------------------------------------------------------------------------------


def test_a_key_is_shown_once_and_stored_only_as_a_hash(world: World) -> None:
    created = world.ok("POST", "/admin/v1/keys", {"name": unique("once")})
    secret = created["key"]
    assert secret.startswith("sk-sv-") and secret[:14] == created["prefix"]
    assert "key" not in world.ok("GET", f"/admin/v1/keys/{created['id']}")
    assert secret not in world.call("GET", "/admin/v1/keys").text
    engine = create_engine(world.database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.id == created["id"])).one()
    engine.dispose()
    assert secret not in json.dumps([str(value) for value in row])
    assert row.secret_hash != secret and len(row.secret_hash) == 64


def test_revocation_takes_effect_at_once(world: World) -> None:
    created = world.ok("POST", "/admin/v1/keys", {"name": unique("revoked")})
    assert world.call("GET", "/v1/models", created["key"]).status_code == 200  # now cached
    world.ok("DELETE", f"/admin/v1/keys/{created['id']}")
    assert world.call("GET", "/v1/models", created["key"]).status_code == 401


def test_a_disabled_or_demoted_user_loses_their_powers_at_once(world: World) -> None:
    user_id, key = world.user_with_key("acme", "admin")
    assert world.call("GET", "/admin/v1/teams", key).status_code == 200
    world.ok("PATCH", f"/admin/v1/users/{user_id}", {"role": "user"})
    assert world.call("GET", "/admin/v1/teams", key).status_code == 403  # the key follows
    assert world.call("GET", "/v1/models", key).status_code == 200
    world.ok("PATCH", f"/admin/v1/users/{user_id}", {"disabled": True})
    assert world.call("GET", "/v1/models", key).status_code == 401


def test_expired_keys_are_refused(world: World) -> None:
    past = world.ok(
        "POST", "/admin/v1/keys", {"name": unique(), "expires_at": int(time.time()) - 1}
    )
    assert world.call("GET", "/v1/models", past["key"]).status_code == 401
    soon = world.ok("POST", "/admin/v1/keys", {"name": unique(), "expires_in": "30d"})
    assert soon["expires_at"] > time.time() + 29 * 86400
    assert world.call("GET", "/v1/models", soon["key"]).status_code == 200


def test_model_scopes_hide_other_models(world: World) -> None:
    scoped = world.ok("POST", "/admin/v1/keys", {"name": unique(), "models": ["cloud"]})["key"]
    listed = [m["id"] for m in world.ok("GET", "/v1/models", key=scoped)["data"]]
    assert listed == ["cloud"]
    assert world.call("GET", "/v1/models/cloud-alias", scoped).status_code == 200
    chat = {"messages": [{"role": "user", "content": "bonjour"}], "max_tokens": 4}
    assert world.call("POST", "/v1/chat/completions", scoped,
                      {"model": "cloud-alias", **chat}).status_code == 200  # fmt: skip
    for name in ("other", "other-alias", "emb"):  # aliases do not get around the scope
        response = world.call("GET", f"/v1/models/{name}", scoped)
        assert response.status_code == 404, name
        response = world.call("POST", "/v1/chat/completions", scoped, {"model": name, **chat})
        assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


def test_endpoint_scopes_and_the_auditor_role(world: World) -> None:
    embed_only = world.ok("POST", "/admin/v1/keys",
                          {"name": unique(), "endpoints": ["embeddings"]})["key"]  # fmt: skip
    chat = {"model": "cloud", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
    assert world.call("POST", "/v1/chat/completions", embed_only, chat).status_code == 403
    assert world.call("POST", "/v1/embeddings", embed_only,
                      {"model": "emb", "input": "x"}).status_code == 200  # fmt: skip
    assert world.call("GET", "/admin/v1/keys", embed_only).status_code == 403
    auditor = world.keys["auditor"]  # reads usage and audit, calls no model
    assert world.call("POST", "/v1/chat/completions", auditor, chat).status_code == 403
    assert world.call("GET", "/v1/models", auditor).status_code == 403


def test_bad_credentials_all_get_the_same_401(world: World) -> None:
    revoked = world.ok("POST", "/admin/v1/keys", {"name": unique()})
    world.ok("DELETE", f"/admin/v1/keys/{revoked['id']}")
    expired = world.ok("POST", "/admin/v1/keys", {"name": unique(), "expires_at": 1})["key"]
    real = world.keys["user"]
    bodies = set()
    for headers in [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer sk-sv-unknownprefix" + "x" * 30},  # unknown prefix
        {"Authorization": f"Bearer {real[:-4]}abcd"},  # right prefix, wrong secret
        {"Authorization": f"Bearer {real}{real}"},  # too long
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": f"Bearer {revoked['key']}"},
        {"Authorization": f"Bearer {expired}"},
    ]:
        response = httpx.get(world.server.url + "/v1/models", headers=headers)
        assert response.status_code == 401, headers
        bodies.add(response.text)
    assert len(bodies) == 1


# ---- bad admin input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/admin/v1/teams", b"{not json", 400),
        ("POST", "/admin/v1/teams", b"[]", 400),
        ("POST", "/admin/v1/teams", {"name": "ok", "colour": "red"}, 400),  # unknown field
        ("POST", "/admin/v1/teams", {"name": "<script>"}, 400),
        ("POST", "/admin/v1/teams", {"name": "payments", "tenant": "acme"}, 409),  # exists
        ("POST", "/admin/v1/teams", {"name": "n", "tenant": "nowhere"}, 404),
        ("POST", "/admin/v1/users", {"name": "n", "role": "emperor"}, 400),
        ("POST", "/admin/v1/keys", {"name": "n", "expires_in": "soon"}, 400),
        ("POST", "/admin/v1/keys", {"name": "n", "limits": {"rpm": -1}}, 400),
        ("POST", "/admin/v1/keys", {"name": "n", "max_classification": "cosmic"}, 400),
        ("POST", "/admin/v1/keys", {"name": "n", "endpoints": ["teleport"]}, 400),
        ("GET", "/admin/v1/teams/abc", None, 404),
        ("GET", "/admin/v1/teams/99999999", None, 404),
        ("DELETE", "/admin/v1/keys/-1", None, 404),
        ("DELETE", f"/admin/v1/tenants/{10**30}", None, 404),
        ("GET", "/admin/v1/usage?group_by=colour", None, 400),
        ("GET", "/admin/v1/usage?start=yesterday", None, 400),
    ],
)
def test_bad_admin_input_is_a_clear_4xx(
    world: World, method: str, path: str, body: Any, status: int
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    response = httpx.request(method, world.server.url + path, headers=headers, content=content)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_an_oversized_admin_payload_is_refused(world: World) -> None:
    huge = {"name": "x" * (9 * 1024 * 1024)}
    assert world.call("POST", "/admin/v1/teams", body=huge).status_code == 413


def test_the_default_tenant_cannot_be_deleted_nor_a_tenant_in_use(world: World) -> None:
    default = next(
        t for t in world.ok("GET", "/admin/v1/tenants")["data"] if t["name"] == "default"
    )
    assert world.call("DELETE", f"/admin/v1/tenants/{default['id']}").status_code == 409
    assert world.call("DELETE", f"/admin/v1/tenants/{world.ids['acme']}").status_code == 409


# ---- the command line -----------------------------------------------------------------------


def test_keys_from_the_command_line(world: World) -> None:
    runner = CliRunner()
    server = ["--url", world.server.url, "--key", ADMIN_KEY]
    created = runner.invoke(cli, ["keys", "create", "ci-bot", *server, "--team", "payments",
                                  "--tenant", "acme", "--models", "cloud", "--expires", "30d",
                                  "--rpm", "60"])  # fmt: skip
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("sk-sv-")
    assert [m["id"] for m in world.ok("GET", "/v1/models", key=secret)["data"]] == ["cloud"]
    listed = runner.invoke(cli, ["keys", "list", *server])
    assert "ci-bot" in listed.output and secret not in listed.output
    key_id = next(
        k["id"] for k in world.ok("GET", "/admin/v1/keys")["data"] if k["name"] == "ci-bot"
    )
    assert runner.invoke(cli, ["keys", "revoke", str(key_id), *server]).exit_code == 0
    assert world.call("GET", "/v1/models", secret).status_code == 401
    refused = runner.invoke(cli, ["teams", "create", "x", "--url", world.server.url,
                                  "--key", world.keys["user"]])  # fmt: skip
    assert refused.exit_code != 0 and "403" in refused.output
