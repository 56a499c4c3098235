"""A deleted identity's id is never handed out again, and what it owned or was given goes
with it: over real HTTP, on SQLite and on PostgreSQL.

SQLite used to give a new row the id of the newest deleted one: a new user inherited the
deleted user's private library and the libraries shared with them, a new tenant the
deleted tenant's libraries and documents. Also: shares name only users, teams and the
tenant of the library's own tenant.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import server_database
from .recording_upstream import RecordingUpstream

_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@dataclass
class Gateway:
    server: Server

    def call(
        self, method: str, path: str, key: str = ADMIN_KEY, body: Any = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.request(
            method, self.server.url + path, headers=headers, json=body, timeout=30, **kwargs
        )

    def ok(self, method: str, path: str, key: str = ADMIN_KEY, body: Any = None, **kw: Any) -> Any:
        response = self.call(method, path, key, body, **kw)
        assert response.status_code in (200, 201), (method, path, response.text)
        return response.json()

    def tenant(self) -> int:
        return int(self.ok("POST", "/admin/v1/tenants", body={"name": unique("tenant")})["id"])

    def team(self, tenant: str) -> int:
        return int(
            self.ok("POST", "/admin/v1/teams", body={"name": unique("team"), "tenant": tenant})[
                "id"
            ]
        )

    def user(self, tenant: str, role: str = "user", teams: list[int] | None = None) -> int:
        body = {"name": unique(role), "role": role, "tenant": tenant, "teams": teams or []}
        return int(self.ok("POST", "/admin/v1/users", body=body)["id"])

    def key(self, tenant: str, user_id: int) -> str:
        body = {"name": unique("key"), "user_id": user_id, "tenant": tenant}
        return str(self.ok("POST", "/admin/v1/keys", body=body)["key"])

    def tenant_name(self, tenant_id: int) -> str:
        return str(self.ok("GET", f"/admin/v1/tenants/{tenant_id}")["name"])

    def library(self, key: str) -> str:
        library_id = str(self.ok("POST", "/v1/libraries", key, {"name": unique("lib")})["id"])
        files = {"file": ("note.md", b"# Note\n\nLe code du coffre est 4521.\n", "text/markdown")}
        uploaded = self.call("POST", f"/v1/libraries/{library_id}/documents", key, files=files)
        assert uploaded.status_code in (200, 201), uploaded.text
        return library_id

    def share(self, key: str, library_id: str, kind: str, target: int | str) -> httpx.Response:
        body = {"level": "Viewer", "share_with_uuid": str(target), "share_with_type": kind}
        return self.call("PUT", f"/v1/libraries/{library_id}/share", key, body)

    def visible(self, key: str) -> set[str]:
        listed = self.ok("GET", "/v1/libraries", key)["data"]
        return {library["id"] for library in listed}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest,
    upstream: RecordingUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp(f"id-reuse-{request.param}")
    with server_database(request.param, tmp) as url:
        deployment = {"engine": "openai", "base_url": upstream.url, "jurisdiction": "FR"}
        config = {
            "models": [
                {"id": "cloud", "deployments": [deployment]},
                {"id": "emb", "type": "embeddings", "deployments": [deployment]},
            ],
            "dlp": {"enabled": False},
        }
        server = start_server(tmp, config, env={"SOUVERAIN_DATABASE_URL": url})
        try:
            yield Gateway(server)
        finally:
            stop_server(server)


def test_a_new_user_inherits_nothing_from_a_deleted_user(gateway: Gateway) -> None:
    tenant = gateway.tenant_name(gateway.tenant())
    admin = gateway.key(tenant, gateway.user(tenant, "admin"))
    shared = gateway.library(admin)
    leaver_id = gateway.user(tenant)  # the newest user: SQLite handed its id out again
    leaver = gateway.key(tenant, leaver_id)
    private = gateway.library(leaver)
    assert gateway.share(admin, shared, "User", leaver_id).status_code == 200
    assert gateway.visible(leaver) == {private, shared}

    gateway.ok("DELETE", f"/admin/v1/users/{leaver_id}")
    newcomer_id = gateway.user(tenant)
    newcomer = gateway.key(tenant, newcomer_id)
    assert newcomer_id != leaver_id
    assert gateway.visible(newcomer) == set()
    for library_id in (private, shared):
        assert gateway.call("GET", f"/v1/libraries/{library_id}", newcomer).status_code == 404
    # By default the leaver's libraries stay with the tenant (its admins own them), and
    # the share that named the leaver is gone.
    assert gateway.visible(admin) == {private, shared}
    shares = gateway.ok("GET", f"/v1/libraries/{shared}/share", admin)["data"]
    assert [s["share_with_uuid"] for s in shares if s["role"] != "Owner"] == []


def test_a_deleted_users_libraries_can_be_deleted_with_them(gateway: Gateway) -> None:
    tenant = gateway.tenant_name(gateway.tenant())
    admin = gateway.key(tenant, gateway.user(tenant, "admin"))
    leaver_id = gateway.user(tenant)
    private = gateway.library(gateway.key(tenant, leaver_id))
    refused = gateway.call("DELETE", f"/admin/v1/users/{leaver_id}?libraries=maybe")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "libraries"
    gateway.ok("DELETE", f"/admin/v1/users/{leaver_id}?libraries=delete")
    assert gateway.call("GET", f"/v1/libraries/{private}", admin).status_code == 404
    assert gateway.call("GET", f"/v1/libraries/{private}").status_code == 404  # the owner


def test_a_new_team_inherits_no_share_of_a_deleted_team(gateway: Gateway) -> None:
    tenant = gateway.tenant_name(gateway.tenant())
    admin = gateway.key(tenant, gateway.user(tenant, "admin"))
    library = gateway.library(admin)
    old_team = gateway.team(tenant)
    assert gateway.share(admin, library, "Workspace", old_team).status_code == 200
    gateway.ok("DELETE", f"/admin/v1/teams/{old_team}")
    new_team = gateway.team(tenant)
    assert new_team != old_team
    member = gateway.key(tenant, gateway.user(tenant, teams=[new_team]))
    assert gateway.visible(member) == set()


def test_a_tenant_with_libraries_is_deleted_only_when_told_what_becomes_of_them(
    gateway: Gateway,
) -> None:
    old_tenant = gateway.tenant()
    name = gateway.tenant_name(old_tenant)
    admin_id = gateway.user(name, "admin")
    library = gateway.library(gateway.key(name, admin_id))
    gateway.ok("DELETE", f"/admin/v1/users/{admin_id}")  # its keys are revoked

    refused = gateway.call("DELETE", f"/admin/v1/tenants/{old_tenant}")
    assert refused.status_code == 409, refused.text
    assert "libraries=delete" in refused.json()["error"]["message"]
    assert gateway.call("GET", f"/v1/libraries/{library}").status_code == 200  # untouched
    bad = gateway.call("DELETE", f"/admin/v1/tenants/{old_tenant}?libraries=keep")
    assert bad.status_code == 400, bad.text  # keep them where? the tenant is going
    gateway.ok("DELETE", f"/admin/v1/tenants/{old_tenant}?libraries=delete")
    assert gateway.call("GET", f"/v1/libraries/{library}").status_code == 404

    new_tenant = gateway.tenant()
    assert new_tenant != old_tenant
    new_name = gateway.tenant_name(new_tenant)
    new_admin = gateway.key(new_name, gateway.user(new_name, "admin"))
    assert gateway.visible(new_admin) == set()


def test_a_tenant_with_active_keys_or_members_is_still_refused(gateway: Gateway) -> None:
    tenant = gateway.tenant()
    name = gateway.tenant_name(tenant)
    gateway.user(name)
    for query in ("", "?libraries=delete"):
        response = gateway.call("DELETE", f"/admin/v1/tenants/{tenant}{query}")
        assert response.status_code == 409, response.text


def test_shares_name_only_the_librarys_own_tenant(gateway: Gateway) -> None:
    acme = gateway.tenant_name(gateway.tenant())
    globex_id = gateway.tenant()
    globex = gateway.tenant_name(globex_id)
    admin = gateway.key(acme, gateway.user(acme, "admin"))
    member = gateway.user(acme)  # shares name it by its ASCII id only
    library = gateway.library(admin)
    foreign_team = gateway.team(globex)
    foreign_user = gateway.user(globex)
    for kind, target in [
        ("Workspace", foreign_team),
        ("User", foreign_user),
        ("Org", globex_id),
        ("User", 10**12),  # no such user anywhere
        ("Workspace", 10**12),
        ("User", "-1"),
        ("User", "".join(chr(0xFF10 + int(d)) for d in str(member))),  # full-width digits
        ("User", f"{member} "),
    ]:
        response = gateway.share(admin, library, kind, target)
        assert response.status_code == 400, (kind, target, response.text)
        assert response.json()["error"]["param"] == "share_with_uuid"
    foreign = gateway.key(globex, foreign_user)
    assert gateway.call("GET", f"/v1/libraries/{library}", foreign).status_code == 404
    shares = gateway.ok("GET", f"/v1/libraries/{library}/share", admin)["data"]
    assert [s["role"] for s in shares] == ["Owner"]
