"""OIDC bearer tokens against a real gateway: a JWKS endpoint on loopback, signed JWTs.

The provider is set up the way Keycloak publishes roles (`realm_access.roles`): one
claim lists both the gateway roles and the team groups. Tenants and teams are created
through the admin API, as an operator would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from souverain.store.tables import usage

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream
from .test_oidc import AUDIENCE, ISSUER, RSA_KEY, JwksServer, jwk, token
from .test_quotas_http import admin, bearer, chat, create, refused, upstream_config, usage_rows

TENANT = "hospital"
MAPPING = {
    "tenant_claim": "org",
    "groups_claim": "realm_access.roles",
    "roles": {"gw-admin": "admin", "gw-user": "user"},
    "teams": {"team-cardio": "cardiology", "team-limited": "limited", "team-surgery": "surgery"},
    "default_role": None,
}


def jwt_for(sub: str, *groups: str, **claims: Any) -> str:
    values: dict[str, Any] = {"org": TENANT, "realm_access": {"roles": list(groups)}}
    return token(sub=sub, **{**values, **claims})


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    """The identity provider's key set, served from a loop of its own thread."""
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


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    provider = {"name": "keycloak", "issuer": ISSUER, "audience": AUDIENCE,
                "jwks_url": jwks.url("/certs"), "claims": MAPPING}  # fmt: skip
    config = upstream_config(upstream, identity={"providers": [provider]})
    server = start_server(tmp_path_factory.mktemp("oidc-gw"), config)
    create(server, "tenants", {"name": TENANT})
    create(server, "teams", {"name": "cardiology", "tenant": TENANT})
    create(server, "tenants", {"name": "elsewhere"})
    create(server, "teams", {"name": "secret-team", "tenant": "elsewhere"})
    yield server
    stop_server(server)


def test_a_signed_token_lists_models_and_chats(gateway: Server) -> None:
    bearer_token = jwt_for("alice", "gw-user", "team-cardio")
    models = httpx.get(gateway.v1 + "/models", headers=bearer(bearer_token), timeout=30)
    assert models.status_code == 200, models.text
    assert {m["id"] for m in models.json()["data"]} == {"cloud", "priced"}
    answer = chat(gateway, bearer_token, content="Bonjour")
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "Bonjour"
    streamed = chat(gateway, bearer_token, stream=True)
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text


def test_roles_come_from_the_mapped_groups(gateway: Server) -> None:
    as_admin = admin(gateway, "GET", "teams", key=jwt_for("bob", "gw-admin"))
    assert as_admin.status_code == 200, as_admin.text
    teams = {(t["tenant"], t["name"]) for t in as_admin.json()["data"]}
    assert teams == {(TENANT, "cardiology")}  # never the other tenant's team
    as_user = admin(gateway, "GET", "teams", key=jwt_for("carol", "gw-user"))
    assert as_user.status_code == 403, as_user.text
    assert as_user.json()["error"]["type"] == "permission_error"
    assert chat(gateway, jwt_for("dave", "gw-admin")).status_code == 200  # admins call models


REJECTED = {
    "wrong audience": lambda: jwt_for("eve", "gw-user", aud="another-app"),
    "expired": lambda: jwt_for("eve", "gw-user", exp=int(time.time()) - 600),
    "unknown tenant": lambda: jwt_for("eve", "gw-user", org="no-such-tenant"),
    "no mapped group": lambda: jwt_for("eve", "unrelated-group"),
    "unknown issuer": lambda: jwt_for("eve", "gw-user", iss="https://evil.example.com/realm"),
}


@pytest.mark.parametrize("make_token", REJECTED.values(), ids=REJECTED.keys())
def test_rejected_tokens_look_like_a_bad_api_key(gateway: Server, make_token: Any) -> None:
    bad_key = httpx.get(gateway.v1 + "/models", headers=bearer("sk-sv-" + "x" * 40), timeout=30)
    assert bad_key.status_code == 401
    for send in (
        lambda t: httpx.get(gateway.v1 + "/models", headers=bearer(t), timeout=30),
        lambda t: chat(gateway, t),
        lambda t: admin(gateway, "GET", "teams", key=t),
    ):
        response = send(make_token())
        assert response.status_code == 401, response.text
        assert response.content == bad_key.content
        assert dict(response.headers).keys() == dict(bad_key.headers).keys()


def test_team_limits_apply_to_token_callers(gateway: Server) -> None:
    create(gateway, "teams", {"name": "limited", "tenant": TENANT, "limits": {"rpm": 2}})
    frank = jwt_for("frank", "gw-user", "team-limited")
    grace = jwt_for("grace", "gw-user", "team-limited")
    assert chat(gateway, frank).status_code == 200
    assert chat(gateway, grace).status_code == 200
    message = refused(chat(gateway, frank), "requests_per_minute", "team 'limited'")
    assert message == "rate limit reached: team 'limited' allows 2 requests per minute"
    refused(chat(gateway, grace, stream=True), "requests_per_minute", "team 'limited'")
    assert chat(gateway, jwt_for("heidi", "gw-user", "team-cardio")).status_code == 200


def test_a_team_limit_patched_applies_to_a_cached_token_at_once(gateway: Server) -> None:
    team = create(gateway, "teams", {"name": "surgery", "tenant": TENANT})
    kate = jwt_for("kate", "gw-user", "team-surgery")
    for _ in range(2):  # verified once, then cached; no limits yet
        assert chat(gateway, kate).status_code == 200
    patched = admin(gateway, "PATCH", f"teams/{team['id']}", {"limits": {"rpm": 1}})
    assert patched.status_code == 200, patched.text
    assert chat(gateway, kate).status_code == 200
    refused(chat(gateway, kate), "requests_per_minute", "team 'surgery'")


def test_tenant_limits_apply_to_token_callers(gateway: Server) -> None:
    create(gateway, "tenants", {"name": "clinic", "limits": {"rpm": 1}})
    ivan = jwt_for("ivan", "gw-user", org="clinic")
    assert chat(gateway, ivan).status_code == 200
    refused(chat(gateway, jwt_for("judy", "gw-user", org="clinic")), "requests_per_minute",
            "tenant 'clinic'")  # fmt: skip


def test_usage_rows_carry_the_token_principal(gateway: Server) -> None:
    bearer_token = jwt_for("usage-oscar", "gw-user", "team-cardio")
    for _ in range(3):
        assert chat(gateway, bearer_token).status_code == 200
    report = usage_rows(gateway, "tenant,team,key")  # also writes the pending rows
    cardio = next(r for r in report if (r["tenant"], r["team"]) == (TENANT, "cardiology"))
    assert cardio["key"] is None and cardio["requests"] >= 3
    engine = create_engine(f"sqlite:///{gateway.log.parent / 'data' / 'souverain.db'}")
    with engine.connect() as conn:
        rows = conn.execute(
            select(usage.c.principal, usage.c.tenant, usage.c.team, usage.c.key_id,
                   usage.c.prompt_tokens, usage.c.completion_tokens)
            .where(usage.c.principal == "oidc:keycloak:usage-oscar")
        ).all()  # fmt: skip
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("oidc:keycloak:usage-oscar", TENANT, "cardiology", None, 10, 5)
    ] * 3
