"""Minting keys never sheds controls (issue 12, items 4 and 5), over real HTTP, on SQLite
and PostgreSQL.

A developer's key with an expiry, a classification floor, limits and a team, and a
developer signed in with an identity provider's token, each try to mint a key freer than
themselves. Omitted controls are inherited, looser ones refused (403, naming the field,
with an audit leaf), the parent's limits count the child's use, revoking the parent ends
the child; a token's keys belong to the person's directory user, live at most
`identity.token_key_max_lifetime_s`, and die when that user is disabled.

The model calls go to a recording upstream (a named fake; tests/recording_upstream.py).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .databases import server_database
from .recording_upstream import RecordingUpstream
from .test_oidc import AUDIENCE, ISSUER, RSA_KEY, JwksServer, jwk, token

LIFETIME_S = 7200  # identity.token_key_max_lifetime_s in this gateway
MAPPING = {
    "tenant_claim": "org",
    "groups_claim": "groups",
    "roles": {"gw-admin": "admin", "gw-dev": "developer"},
    "teams": {"team-acme": "acme-team"},
    "default_role": None,
}
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{time.monotonic_ns() % 10**6}"


@dataclass
class Gateway:
    server: Server
    database: str  # sqlite, postgresql
    developer: int  # a developer of tenant acme, member of acme-team
    team: str = "acme-team"

    def call(self, method: str, path: str, key: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.request(method, self.server.url + path, headers=headers, json=body, timeout=30)

    def ok(self, method: str, path: str, body: Any = None, key: str = ADMIN_KEY) -> Any:
        response = self.call(method, path, key, body)
        assert response.status_code in (200, 201), (method, path, response.text)
        return response.json()

    def mint(self, key: str, **body: Any) -> httpx.Response:
        return self.call("POST", "/admin/v1/keys", key, {"name": unique("k"), **body})

    def chat(self, key: str, model: str = "us") -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        return self.call("POST", "/v1/chat/completions", key, body)

    def parent(self, **controls: Any) -> dict[str, Any]:
        """A key of the developer, made by the owner with these controls."""
        body = {"user_id": self.developer, "tenant": "acme", **controls}
        return dict(self.ok("POST", "/admin/v1/keys", {"name": unique("parent"), **body}))


def developer_token(sub: str, *groups: str, **claims: Any) -> str:
    return token(sub=sub, org="acme", groups=list(groups or ("gw-dev", "team-acme")), **claims)


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = JwksServer()
    server.publish("/certs", [jwk(RSA_KEY, "rsa-1")])
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    yield server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest,
    upstream: RecordingUpstream,
    jwks: JwksServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp(f"minting-{request.param}")
    provider = {"name": "keycloak", "issuer": ISSUER, "audience": AUDIENCE,
                "jwks_url": jwks.url("/certs"), "claims": MAPPING}  # fmt: skip
    deployment = {"engine": "openai", "base_url": upstream.url}
    config = {
        "models": [
            {"id": "us", "deployments": [{**deployment, "name": "us", "jurisdiction": "US"}]},
            {"id": "other", "deployments": [{**deployment, "name": "o", "jurisdiction": "US"}]},
        ],
        "dlp": {"enabled": False},
        "identity": {"providers": [provider], "token_key_max_lifetime_s": LIFETIME_S},
    }
    with server_database(request.param, tmp) as url:
        server = start_server(tmp, config, env={"SOUVERAIN_DATABASE_URL": url})
        try:
            gateway = Gateway(server, request.param, developer=0)
            gateway.ok("POST", "/admin/v1/tenants", {"name": "acme"})
            team = gateway.ok("POST", "/admin/v1/teams",
                              {"name": "acme-team", "tenant": "acme",
                               "limits": {"budget_tokens": 100}})  # fmt: skip
            gateway.ok("POST", "/admin/v1/teams", {"name": "other-team", "tenant": "acme"})
            user = gateway.ok("POST", "/admin/v1/users",
                              {"name": "dev", "role": "developer", "tenant": "acme",
                               "teams": [team["id"]]})  # fmt: skip
            gateway.developer = user["id"]
            yield gateway
        finally:
            stop_server(server)


def escalation(response: httpx.Response, param: str) -> str:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "permission_error", "privilege_escalation", param,
    ), error  # fmt: skip
    return str(error["message"])


# ---- item 4: a key minted by a developer's key ---------------------------------------------


def test_a_minted_key_inherits_every_control_of_its_parent(gateway: Gateway) -> None:
    parent = gateway.parent(expires_in="1h", default_classification="restricted",
                            limits={"rpm": 1, "budget_tokens": 50}, team="acme-team")  # fmt: skip
    child = gateway.mint(parent["key"], name="dev-free")
    assert child.status_code == 201, child.text
    minted = child.json()
    assert minted["expires_at"] == parent["expires_at"]
    assert minted["default_classification"] == "restricted"
    assert minted["limits"]["rpm"] == 1 and minted["limits"]["budget_tokens"] == 50
    assert minted["team"] == "acme-team" and minted["parent_id"] == parent["id"]
    assert minted["user_id"] == gateway.developer
    # Restricted data does not go to the US with the child either.
    refused = gateway.chat(minted["key"])
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "policy_denied"


def test_the_parents_limits_count_the_childrens_calls(gateway: Gateway) -> None:
    parent = gateway.parent(limits={"rpm": 1})
    children = [gateway.mint(parent["key"]).json()["key"] for _ in range(3)]
    assert gateway.chat(parent["key"]).status_code == 200
    for child in children:  # a hundred keys do not make a hundred requests a minute
        response = gateway.chat(child)
        assert response.status_code == 429, response.text
        assert f"key '{parent['name']}'" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("ask", "param"),
    [
        ({"expires_in": "2h"}, "expires_in"),
        ({"expires_at": None}, "expires_at"),  # never
        ({"expires_at": 4_000_000_000}, "expires_at"),
        ({"default_classification": "public"}, "default_classification"),
        ({"default_classification": None}, "default_classification"),
        ({"max_classification": "restricted"}, "max_classification"),
        ({"max_classification": None}, "max_classification"),
        ({"limits": {"rpm": 2}}, "limits.rpm"),
        ({"limits": {"rpm": None}}, "limits.rpm"),  # absent is unlimited
        ({"limits": {"budget_tokens": 51}}, "limits.budget_tokens"),
        ({"limits": {"budget_period": "day"}}, "limits.budget_period"),
        ({"team": "other-team"}, "team"),
        ({"team": None}, "team"),
        ({"models": ["us", "other"]}, "models"),
        ({"models": None}, "models"),
        ({"role": "admin"}, "role"),
    ],
)
def test_asking_for_more_than_the_parent_is_refused_naming_the_field(
    gateway: Gateway, ask: dict[str, Any], param: str
) -> None:
    parent = gateway.parent(expires_in="1h", default_classification="internal",
                            max_classification="confidential", models=["us"], team="acme-team",
                            limits={"rpm": 1, "budget_tokens": 50, "budget_period": "month"})  # fmt: skip
    escalation(gateway.mint(parent["key"], **ask), param)


def test_asking_for_less_than_the_parent_is_allowed(gateway: Gateway) -> None:
    parent = gateway.parent(expires_in="1h", default_classification="internal",
                            max_classification="confidential", limits={"rpm": 5})  # fmt: skip
    response = gateway.mint(parent["key"], expires_in="30m", default_classification="confidential",
                            max_classification="confidential", limits={"rpm": 2, "tpm": 10})  # fmt: skip
    assert response.status_code == 201, response.text
    minted = response.json()
    assert minted["expires_at"] < parent["expires_at"]
    assert minted["limits"]["rpm"] == 2 and minted["limits"]["tpm"] == 10


def test_a_refused_escalation_leaves_an_audit_leaf(gateway: Gateway) -> None:
    parent = gateway.parent(limits={"rpm": 3})
    name = unique("escalation")
    response = gateway.call("POST", "/admin/v1/keys", parent["key"],
                            {"name": name, "limits": {"rpm": None}})  # fmt: skip
    escalation(response, "limits.rpm")
    query = "outcome=permission_error&limit=1000"
    leaves = [item["leaf"] for item in gateway.ok("GET", f"/admin/v1/audit/leaves?{query}")["data"]]
    found = [leaf for leaf in leaves if leaf.get("target", {}).get("name") == name]
    assert len(found) == 1, found
    # One leaf for the request, not one more from the generic refusal coverage.
    request_id = found[0]["request_id"]
    assert [leaf for leaf in leaves if leaf.get("request_id") == request_id] == found
    leaf = found[0]
    assert leaf["action"] == "key.create" and leaf["principal"] == f"key:{parent['id']}"
    assert (leaf["outcome"], leaf["code"], leaf["status"]) == (
        "permission_error", "privilege_escalation", 403,
    )  # fmt: skip
    assert leaf["target"]["field"] == "limits.rpm" and leaf["tenant"] == "acme"


def test_revoking_the_parent_ends_its_children(gateway: Gateway) -> None:
    parent = gateway.parent()
    child = gateway.mint(parent["key"]).json()
    grandchild = gateway.mint(child["key"]).json()
    assert gateway.chat(grandchild["key"]).status_code == 200  # and now cached
    gateway.ok("DELETE", f"/admin/v1/keys/{parent['id']}")
    for key in (child, grandchild):
        assert gateway.chat(key["key"]).status_code == 401
        assert gateway.ok("GET", f"/admin/v1/keys/{key['id']}")["revoked"] is True


def test_a_userless_developer_key_sees_and_revokes_the_keys_it_minted(gateway: Gateway) -> None:
    parent = gateway.ok("POST", "/admin/v1/keys",
                        {"name": unique("nouser"), "role": "developer", "tenant": "acme"})  # fmt: skip
    child = gateway.mint(parent["key"]).json()
    listed = gateway.ok("GET", "/admin/v1/keys", key=parent["key"])["data"]
    assert {key["id"] for key in listed} == {parent["id"], child["id"]}
    gateway.ok("DELETE", f"/admin/v1/keys/{child['id']}", key=parent["key"])
    assert gateway.chat(child["key"]).status_code == 401
    assert gateway.call("GET", "/admin/v1/keys/1", parent["key"]).status_code == 404


def test_keys_mint_keys_a_bounded_number_of_generations_deep(gateway: Gateway) -> None:
    key = gateway.parent()["key"]
    for _ in range(7):
        response = gateway.mint(key)
        assert response.status_code == 201, response.text
        key = response.json()["key"]
    assert gateway.chat(key).status_code == 200  # the eighth generation works
    escalation(gateway.mint(key), "name")


def test_admins_mint_keys_as_before(gateway: Gateway) -> None:
    admin = gateway.ok("POST", "/admin/v1/users",
                       {"name": unique("admin"), "role": "admin", "tenant": "acme"})  # fmt: skip
    admin_key = gateway.ok("POST", "/admin/v1/keys", {"name": unique("a"), "user_id": admin["id"],
                                                       "expires_in": "1h"})["key"]  # fmt: skip
    # A tenant admin mints for a user of its tenant, with controls of its choosing.
    minted = gateway.ok("POST", "/admin/v1/keys",
                        {"name": unique("svc"), "user_id": gateway.developer,
                         "limits": {"rpm": 1000}}, key=admin_key)  # fmt: skip
    assert minted["expires_at"] is None and minted["parent_id"] is None
    assert minted["limits"]["rpm"] == 1000
    # The owner mints anywhere.
    gateway.ok("POST", "/admin/v1/keys", {"name": unique("o"), "tenant": "acme"})


# ---- item 5: a key minted with an identity provider's token -----------------------------


def test_a_token_lists_only_its_own_keys(gateway: Gateway) -> None:
    gateway.parent()  # someone else's key in the same tenant
    jwt = developer_token(unique("sub"))
    assert gateway.ok("GET", "/admin/v1/keys", key=jwt)["data"] == []
    minted = gateway.mint(jwt).json()
    listed = gateway.ok("GET", "/admin/v1/keys", key=jwt)["data"]
    assert [key["id"] for key in listed] == [minted["id"]]
    assert gateway.call("GET", f"/admin/v1/keys/{gateway.parent()['id']}", jwt).status_code == 404


def test_a_token_mints_keys_bound_to_its_user_and_a_maximum_lifetime(gateway: Gateway) -> None:
    sub = unique("sub")
    jwt = developer_token(sub)
    before = time.time()
    minted = gateway.mint(jwt).json()
    assert minted["user_id"] is not None and minted["team"] == "acme-team"
    assert before + LIFETIME_S - 5 <= minted["expires_at"] <= time.time() + LIFETIME_S
    user = gateway.ok("GET", f"/admin/v1/users/{minted['user_id']}")
    assert (user["name"], user["role"], user["tenant"]) == (
        f"oidc:keycloak:{sub}", "developer", "acme",
    )  # fmt: skip
    # A later token of the same person finds the same user and sees the same keys.
    again = gateway.mint(developer_token(sub)).json()
    assert again["user_id"] == minted["user_id"]
    escalation(gateway.mint(jwt, expires_in="3h"), "expires_in")
    escalation(gateway.mint(jwt, expires_at=None), "expires_at")
    assert gateway.mint(jwt, expires_in="1h").status_code == 201
    escalation(gateway.mint(jwt, user_id=gateway.developer), "user_id")
    # The user was created with a leaf of its own, saying where it came from.
    query = "kind=admin&limit=1000"
    leaves = [item["leaf"] for item in gateway.ok("GET", f"/admin/v1/audit/leaves?{query}")["data"]]
    created = [leaf for leaf in leaves if leaf["action"] == "user.create"
               and leaf["target"].get("name") == user["name"]]  # fmt: skip
    assert len(created) == 1 and created[0]["target"]["from"] == "token", created


def test_a_refused_token_minting_creates_no_user(gateway: Gateway) -> None:
    sub = unique("sub")
    jwt = developer_token(sub)
    assert gateway.mint(jwt, tenant="default").status_code == 403  # another tenant
    escalation(gateway.mint(jwt, expires_in="30d"), "expires_in")
    users = gateway.ok("GET", "/admin/v1/users")["data"]
    assert f"oidc:keycloak:{sub}" not in {user["name"] for user in users}


def test_a_subject_too_long_for_a_user_name_is_bound_by_its_digest(gateway: Gateway) -> None:
    # On PostgreSQL this also proves the audit leaves of such a token are written: its
    # label is longer than audit_leaves.principal, whose column then holds the digest.
    sub = "s" * 255  # the longest `sub` OpenID Connect allows
    minted = gateway.mint(developer_token(sub)).json()
    user = gateway.ok("GET", f"/admin/v1/users/{minted['user_id']}")
    assert user["name"].startswith("oidc:sha256:") and len(user["name"]) <= 200
    assert gateway.mint(developer_token(sub)).json()["user_id"] == minted["user_id"]
    assert [
        key["id"] for key in gateway.ok("GET", "/admin/v1/keys", key=developer_token(sub))["data"]
    ] == [minted["id"], minted["id"] + 1]


def test_disabling_the_user_stops_the_keys_and_tokens_it_minted_with(gateway: Gateway) -> None:
    jwt = developer_token(unique("sub"))
    minted = gateway.mint(jwt).json()
    assert gateway.chat(minted["key"]).status_code == 200  # cached from now on
    assert gateway.chat(jwt).status_code == 200
    gateway.ok("PATCH", f"/admin/v1/users/{minted['user_id']}", {"disabled": True})
    assert gateway.chat(minted["key"]).status_code == 401
    assert gateway.chat(jwt).status_code == 401


def test_the_users_limits_apply_to_its_tokens(gateway: Gateway) -> None:
    jwt = developer_token(unique("sub"))
    minted = gateway.mint(jwt).json()
    gateway.ok("PATCH", f"/admin/v1/users/{minted['user_id']}", {"limits": {"rpm": 1}})
    assert gateway.chat(jwt).status_code == 200
    assert gateway.chat(minted["key"]).status_code == 429  # one budget for the person


def test_a_token_admin_mints_for_others_as_before_and_for_itself_bounded(
    gateway: Gateway,
) -> None:
    jwt = developer_token(unique("sub"), "gw-admin")
    for_other = gateway.ok("POST", "/admin/v1/keys",
                           {"name": unique("svc"), "user_id": gateway.developer}, key=jwt)  # fmt: skip
    assert for_other["expires_at"] is None and for_other["user_id"] == gateway.developer
    own = gateway.mint(jwt).json()
    assert own["user_id"] not in (None, gateway.developer)
    assert own["expires_at"] <= time.time() + LIFETIME_S
    escalation(gateway.mint(jwt, expires_in="90d"), "expires_in")


# ---- a parent's budget after a restart ---------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_parents_budget_counts_its_childrens_use_after_a_restart(
    upstream: RecordingUpstream, tmp_path: Path, database: str
) -> None:
    """A budget starts a period from the usage rows: the parent's must count the rows of
    the keys it minted, or a restart would hand the children its whole budget again."""
    config = {"models": [{"id": "us", "deployments": [
        {"name": "us", "engine": "openai", "base_url": upstream.url, "jurisdiction": "US"}]}]}  # fmt: skip
    with server_database(database, tmp_path) as url:
        env = {"SOUVERAIN_DATABASE_URL": url}
        server = start_server(tmp_path, config, env=env)
        try:
            gateway = Gateway(server, database, developer=0)
            parent = gateway.ok("POST", "/admin/v1/keys",
                                {"name": "budgeted", "role": "developer",
                                 "limits": {"budget_tokens": 20}})  # fmt: skip
            first, second = (gateway.mint(parent["key"]).json()["key"] for _ in range(2))
            assert gateway.chat(first).status_code == 200  # 15 tokens of the parent's 20
        finally:
            stop_server(server)
        server = start_server(tmp_path, config, env=env)  # same database
        try:
            refused = Gateway(server, database, developer=0).chat(second)
            assert refused.status_code == 429, refused.text
            assert "key 'budgeted'" in refused.json()["error"]["message"]
        finally:
            stop_server(server)
