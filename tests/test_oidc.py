"""OIDC bearer tokens against a real JWKS endpoint on loopback, with real keys.

The JWKS server is aiohttp.web on port 0; its documents change during a test to model
key rotation and outages, and it counts the requests it gets. The key cache runs on a
fake clock, so the 10 s refresh ration is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from souverain.errors import AuthenticationFailed, ConfigError
from souverain.identity.jwks import FAILURE_BACKOFF_S, REFRESH_MIN_INTERVAL_S
from souverain.identity.oidc import (
    ClaimMapping,
    IdentityProviderConfig,
    OidcVerifier,
    TokenIdentity,
)

ISSUER = "https://idp.example.org/realms/staff"
OTHER_ISSUER = "https://login.example.net/tenant-b/v2.0"
AUDIENCE = "souverain"
MESSAGE = "missing or invalid API key"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_NEXT = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # after rotation
ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # never published
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def jwk(private: PrivateKey, kid: str | None, **extra: Any) -> dict[str, Any]:
    public = private.public_key()
    data: dict[str, Any]
    if isinstance(public, rsa.RSAPublicKey):
        data = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(public, as_dict=True)
    if kid is not None:
        data["kid"] = kid
    return {**data, "use": "sig", **extra}


STANDARD_KEYS = [jwk(RSA_KEY, "rsa-1"), jwk(EC_KEY, "ec-1"), jwk(ED_KEY, "ed-1")]


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims; an override of None removes the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "f3b1c2d4-alice",
        "exp": now + 300,
        "iat": now,
        "email": "alice@example.org",
        "name": "Alice Martin",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def token(
    key: PrivateKey = RSA_KEY, alg: str = "RS256", kid: str | None = "rsa-1", **overrides: Any
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_token(
    header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    """A token built without PyJWT, for the attacks PyJWT refuses to produce."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


class JwksServer:
    """A real JWKS endpoint: paths -> bodies, changeable mid-test, counting requests."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.status = 200
        self.delay = 0.0
        self.requests: Counter[str] = Counter()
        self.port = 0
        self._runner: web.AppRunner | None = None

    def publish(self, path: str, keys: list[dict[str, Any]]) -> None:
        self.bodies[path] = json.dumps({"keys": keys}).encode()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        body = self.bodies.get(request.path)
        if body is None:
            return web.Response(status=404)
        return web.Response(body=body, status=self.status, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()  # same port on restart
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def server() -> AsyncIterator[JwksServer]:
    jwks = JwksServer()
    jwks.publish("/a", STANDARD_KEYS)
    await jwks.start()
    yield jwks
    await jwks.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


Factory = Callable[..., OidcVerifier]


@pytest.fixture
async def make_verifier(server: JwksServer, clock: FakeClock) -> AsyncIterator[Factory]:
    made: list[OidcVerifier] = []

    def make(*providers: IdentityProviderConfig, **settings: Any) -> OidcVerifier:
        verifier = OidcVerifier(providers or [provider(server)], clock=clock, **settings)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


def provider(server: JwksServer, path: str = "/a", **fields: Any) -> IdentityProviderConfig:
    config: dict[str, Any] = {
        "name": "staff",
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_url": server.url(path),
    }
    config.update(fields)
    return IdentityProviderConfig.model_validate(config)


async def rejected(verifier: OidcVerifier, bearer: str) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        await verifier.verify(bearer)
    assert caught.value.message == MESSAGE
    assert caught.value.__cause__ is None


# --- accepted tokens --------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "alg", "kid"),
    [(RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1"), (ED_KEY, "EdDSA", "ed-1")],
)
async def test_each_algorithm_is_accepted(
    make_verifier: Factory, key: PrivateKey, alg: str, kid: str
) -> None:
    exp = int(time.time()) + 600
    identity = await make_verifier().verify(token(key, alg, kid, exp=exp))
    assert identity == TokenIdentity(
        provider="staff",
        issuer=ISSUER,
        subject="f3b1c2d4-alice",
        email="alice@example.org",
        name="Alice Martin",
        tenant="default",
        teams=(),
        role="user",
        expires_at=float(exp),
    )


async def test_audience_list_and_token_aud_list(make_verifier: Factory, server: JwksServer) -> None:
    verifier = make_verifier(provider(server, audience=["other-app", AUDIENCE]))
    assert (await verifier.verify(token(aud=["account", AUDIENCE]))).subject == "f3b1c2d4-alice"
    await rejected(verifier, token(aud=["account", "grafana"]))


async def test_token_without_kid_uses_the_only_key_for_its_algorithm(
    make_verifier: Factory, server: JwksServer
) -> None:
    verifier = make_verifier()
    # One Ed25519 key published: unambiguous.
    assert (await verifier.verify(token(ED_KEY, "EdDSA", kid=None))).role == "user"
    server.publish("/b", [jwk(RSA_KEY, None), jwk(RSA_NEXT, None)])
    ambiguous = make_verifier(provider(server, "/b"))
    await rejected(ambiguous, token(RSA_KEY, kid=None))


# --- rejections --------------------------------------------------------------------


def _none_token(alg: str) -> str:
    return hand_token({"alg": alg, "typ": "JWT"}, claims(), lambda _: b"")


def _hmac_with_public_key(encoding: serialization.Encoding, fmt: serialization.PublicFormat) -> str:
    """The classic confusion: HS256 keyed with the RSA public key the IdP publishes."""
    secret = RSA_KEY.public_key().public_bytes(encoding, fmt)
    return hand_token(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
        claims(),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )


def _tampered() -> str:
    header, _, signature = token().split(".")
    payload = b64(json.dumps(claims(sub="mallory")).encode())
    return f"{header}.{payload}.{signature}"


REJECTED: dict[str, Callable[[], str]] = {
    "empty": lambda: "",
    "not a jwt": lambda: "sk-sv-not-a-jwt-at-all",
    "two segments": lambda: token().rsplit(".", 1)[0],
    "header not json": lambda: "bm90IGpzb24." + token().split(".", 1)[1],
    "payload not json": lambda: token().split(".")[0] + ".bm90IGpzb24." + token().split(".")[2],
    "alg none": lambda: _none_token("none"),
    "alg None": lambda: _none_token("None"),
    "alg none with a signature": lambda: hand_token({"alg": "none"}, claims(), lambda _: b"sig"),
    "HS256 keyed with the PEM public key": lambda: _hmac_with_public_key(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ),
    "HS256 keyed with the PKCS1 public key": lambda: _hmac_with_public_key(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    ),
    "HS256 keyed with the DER public key": lambda: _hmac_with_public_key(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ),
    "RS384 (not accepted)": lambda: token(RSA_KEY, "RS384"),
    "ES256 signature on the RSA kid": lambda: token(EC_KEY, "ES256", kid="rsa-1"),
    "RS256 signature on the EC kid": lambda: token(RSA_KEY, "RS256", kid="ec-1"),
    "EdDSA header on the RSA kid": lambda: token(ED_KEY, "EdDSA", kid="rsa-1"),
    "unknown issuer": lambda: token(iss="https://evil.example.com/realms/staff"),
    "issuer with a trailing slash": lambda: token(iss=ISSUER + "/"),
    "wrong audience": lambda: token(aud="grafana"),
    "expired": lambda: token(exp=int(time.time()) - 120),
    "not yet valid (nbf)": lambda: token(nbf=int(time.time()) + 120),
    "issued in the future (iat)": lambda: token(iat=int(time.time()) + 120),
    "missing iss": lambda: token(iss=None),
    "missing sub": lambda: token(sub=None),
    "missing aud": lambda: token(aud=None),
    "missing exp": lambda: token(exp=None),
    "empty sub": lambda: token(sub=""),
    "unknown kid": lambda: token(ATTACKER, kid="rsa-9"),
    "signed by another key under a known kid": lambda: token(ATTACKER, kid="rsa-1"),
    "payload changed after signing": _tampered,
    "crit header": lambda: jwt.encode(
        claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1", "crit": ["exp"]}
    ),
}


@pytest.mark.parametrize("make_token", REJECTED.values(), ids=REJECTED.keys())
async def test_rejections_all_look_the_same(
    make_verifier: Factory, make_token: Callable[[], str]
) -> None:
    verifier = make_verifier()
    assert (await verifier.verify(token())).subject  # the verifier does accept good tokens
    await rejected(verifier, make_token())


async def test_algorithm_not_allowed_for_this_provider(
    make_verifier: Factory, server: JwksServer
) -> None:
    verifier = make_verifier(provider(server, algorithms=["ES256"]))
    assert (await verifier.verify(token(EC_KEY, "ES256", "ec-1"))).role == "user"
    await rejected(verifier, token(RSA_KEY, "RS256", "rsa-1"))
    await rejected(verifier, token(ED_KEY, "EdDSA", "ed-1"))


async def test_unusable_published_keys_are_skipped(
    make_verifier: Factory, server: JwksServer
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    secret = b"shared-secret-0123456789abcdef01"
    server.publish(
        "/a",
        [
            jwk(RSA_KEY, "rsa-1"),
            jwk(RSA_NEXT, "enc-1", use="enc"),
            jwk(weak, "weak-1"),
            jwk(EC_KEY, "ec-384-claimed", alg="ES384"),
            {"kty": "oct", "kid": "hs-1", "k": b64(secret), "use": "sig"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        ],
    )
    verifier = make_verifier()
    assert (await verifier.verify(token())).subject
    await rejected(verifier, token(RSA_NEXT, kid="enc-1"))
    with warnings.catch_warnings():  # recent PyJWT warns about signing with a weak key
        warnings.simplefilter("ignore")
        weak_token = token(weak, kid="weak-1")
    await rejected(verifier, weak_token)
    await rejected(verifier, token(EC_KEY, "ES256", kid="ec-384-claimed"))
    await rejected(
        verifier, jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "hs-1"})
    )


async def test_leeway_applies_to_exp_nbf_and_iat(
    make_verifier: Factory, server: JwksServer
) -> None:
    now = int(time.time())
    verifier = make_verifier(provider(server, leeway_s=30))
    assert await verifier.verify(token(exp=now - 10))
    assert await verifier.verify(token(nbf=now + 10))
    assert await verifier.verify(token(iat=now + 10))
    await rejected(verifier, token(exp=now - 60))
    await rejected(verifier, token(nbf=now + 60))
    strict = make_verifier(provider(server, leeway_s=0))
    await rejected(strict, token(exp=now - 10))
    await rejected(strict, token(nbf=now + 10))
    await rejected(strict, token(iat=now + 10))


async def test_the_reason_is_logged_at_debug_without_the_token(
    make_verifier: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = make_verifier()
    expired = token(exp=int(time.time()) - 600)
    caplog.set_level(logging.DEBUG, logger="souverain.identity")
    await rejected(verifier, expired)
    reasons = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("expired" in reason for reason in reasons)
    assert all(part not in caplog.text for part in expired.split("."))


# --- claim mapping -----------------------------------------------------------------


async def mapped(
    make_verifier: Factory, server: JwksServer, mapping: dict[str, Any], **token_claims: Any
) -> TokenIdentity:
    verifier = make_verifier(provider(server, claims=mapping))
    return await verifier.verify(token(**token_claims))


async def test_fixed_tenant(make_verifier: Factory, server: JwksServer) -> None:
    identity = await mapped(make_verifier, server, {"tenant": "ministry"}, tid="ignored")
    assert identity.tenant == "ministry"


async def test_tenant_from_a_nested_claim(make_verifier: Factory, server: JwksServer) -> None:
    mapping = {"tenant_claim": "organisation.id"}
    identity = await mapped(make_verifier, server, mapping, organisation={"id": "hospital-3"})
    assert identity.tenant == "hospital-3"
    verifier = make_verifier(provider(server, claims=mapping))
    await rejected(verifier, token())  # no tenant claim
    await rejected(verifier, token(organisation={"id": 42}))


async def test_highest_role_among_groups_wins(make_verifier: Factory, server: JwksServer) -> None:
    roles = {"staff": "user", "auditors": "auditor", "devs": "developer", "ops": "admin"}
    mapping = {"roles": roles}
    for groups, role in [
        (["staff"], "user"),
        (["staff", "devs"], "developer"),
        (["devs", "auditors", "staff"], "auditor"),
        (["staff", "ops", "auditors"], "admin"),
        (["unmapped"], "user"),  # default_role
    ]:
        identity = await mapped(make_verifier, server, mapping, groups=groups)
        assert identity.role == role, groups


async def test_groups_to_teams_and_team_prefix(make_verifier: Factory, server: JwksServer) -> None:
    mapping = {"teams": {"eng-all": "engineering"}, "team_prefix": "/teams/"}
    groups = ["/teams/payments", "/teams/risk/eu", "eng-all", "/other/x", "/teams/"]
    identity = await mapped(make_verifier, server, mapping, groups=groups)
    assert identity.teams == ("engineering", "payments", "risk/eu")


async def test_keycloak_realm_roles(make_verifier: Factory, server: JwksServer) -> None:
    mapping = {
        "groups_claim": "realm_access.roles",
        "roles": {"gateway-admin": "admin"},
        "default_role": None,
    }
    identity = await mapped(
        make_verifier,
        server,
        mapping,
        realm_access={"roles": ["offline_access", "gateway-admin"]},
        groups=["ignored"],
    )
    assert identity.role == "admin"


async def test_dotted_claim_name_is_found_whole(make_verifier: Factory, server: JwksServer) -> None:
    mapping = {"groups_claim": "https://example.org/groups", "roles": {"sre": "owner"}}
    identity = await mapped(
        make_verifier, server, mapping, **{"https://example.org/groups": ["sre"]}
    )
    assert identity.role == "owner"


async def test_no_default_role_refuses_unmapped_tokens(
    make_verifier: Factory, server: JwksServer
) -> None:
    mapping = {"roles": {"gw-users": "user"}, "default_role": None}
    verifier = make_verifier(provider(server, claims=mapping))
    assert (await verifier.verify(token(groups=["gw-users"]))).role == "user"
    await rejected(verifier, token(groups=["someone-else"]))
    await rejected(verifier, token())  # no groups claim at all
    assert (await mapped(make_verifier, server, {"default_role": "developer"})).role == "developer"


# --- the key set: rotation, rationing, outages -------------------------------------


async def test_rotated_key_verifies_after_one_refresh(
    make_verifier: Factory, server: JwksServer, clock: FakeClock
) -> None:
    verifier = make_verifier()
    assert await verifier.verify(token())
    assert server.requests["/a"] == 1
    server.publish("/a", [jwk(RSA_NEXT, "rsa-2")])  # rotation: rsa-1 retired
    clock.advance(REFRESH_MIN_INTERVAL_S)
    server.delay = 0.05  # so that the concurrent calls overlap the fetch
    rotated = [token(RSA_NEXT, kid="rsa-2") for _ in range(8)]
    identities = await asyncio.gather(*(verifier.verify(t) for t in rotated))
    assert {identity.subject for identity in identities} == {"f3b1c2d4-alice"}
    assert server.requests["/a"] == 2  # concurrent refreshes coalesced into one
    assert await verifier.verify(token(RSA_NEXT, kid="rsa-2"))
    assert server.requests["/a"] == 2  # now cached
    await rejected(verifier, token())  # the retired key no longer verifies


async def test_unknown_kid_spam_fetches_at_most_once_per_interval(
    make_verifier: Factory, server: JwksServer, clock: FakeClock
) -> None:
    verifier = make_verifier()
    assert await verifier.verify(token())
    spam = [token(ATTACKER, kid=f"spam-{i}") for i in range(25)]

    async def attack() -> None:
        for bearer in spam:
            await rejected(verifier, bearer)
        await asyncio.gather(*(rejected(verifier, bearer) for bearer in spam))

    await attack()
    assert server.requests["/a"] == 1  # within 10 s of the first fetch: no refresh
    clock.advance(REFRESH_MIN_INTERVAL_S)
    await attack()
    assert server.requests["/a"] == 2
    clock.advance(REFRESH_MIN_INTERVAL_S - 0.5)
    await attack()
    assert server.requests["/a"] == 2
    clock.advance(0.5)
    await attack()
    assert server.requests["/a"] == 3
    assert await verifier.verify(token())  # good tokens were never affected


async def test_unknown_issuer_never_fetches(make_verifier: Factory, server: JwksServer) -> None:
    verifier = make_verifier()
    for i in range(5):
        await rejected(verifier, token(iss=f"https://evil.example.com/{i}"))
    assert server.requests["/a"] == 0


async def test_cache_expires_after_jwks_cache_s(
    make_verifier: Factory, server: JwksServer, clock: FakeClock
) -> None:
    verifier = make_verifier(provider(server, jwks_cache_s=60))
    assert await verifier.verify(token())
    clock.advance(59)
    assert await verifier.verify(token())
    assert server.requests["/a"] == 1
    clock.advance(1)
    assert await verifier.verify(token())
    assert server.requests["/a"] == 2


async def test_jwks_outage_fails_closed_then_recovers(
    make_verifier: Factory,
    server: JwksServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    verifier = make_verifier(provider(server, jwks_cache_s=60))
    assert await verifier.verify(token())
    await server.stop()
    clock.advance(60)  # the cached set is now stale; it must not be used
    caplog.set_level(logging.WARNING, logger="souverain.identity")
    await rejected(verifier, token())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and server.url("/a") in warnings[0].getMessage()
    assert all(r.exc_info is None for r in warnings)  # the reason, not a stack trace
    await server.start()
    clock.advance(FAILURE_BACKOFF_S)
    assert (await verifier.verify(token())).subject == "f3b1c2d4-alice"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html>maintenance</html>"),
        (200, b'{"keys": "nope"}'),
        (200, b"[]"),
        (503, json.dumps({"keys": STANDARD_KEYS}).encode()),
        (200, json.dumps({"keys": STANDARD_KEYS, "pad": " " * (1 << 20)}).encode()),
    ],
    ids=["not json", "keys not a list", "not an object", "HTTP 503", "over 1 MiB"],
)
async def test_garbage_jwks_fails_closed_and_is_retried(
    make_verifier: Factory, server: JwksServer, clock: FakeClock, status: int, body: bytes
) -> None:
    good = server.bodies["/a"]
    server.bodies["/a"], server.status = body, status
    verifier = make_verifier()
    await rejected(verifier, token())
    await rejected(verifier, token())
    assert server.requests["/a"] == 1  # a failed fetch is not retried at once
    server.bodies["/a"], server.status = good, 200
    clock.advance(FAILURE_BACKOFF_S)
    assert await verifier.verify(token())
    assert server.requests["/a"] == 2


async def test_slow_jwks_endpoint_times_out(make_verifier: Factory, server: JwksServer) -> None:
    server.delay = 0.5
    verifier = make_verifier(timeout_s=0.1)
    started = time.monotonic()
    await rejected(verifier, token())
    assert time.monotonic() - started < 0.4


async def test_two_providers_with_their_own_keys_and_mappings(
    make_verifier: Factory, server: JwksServer
) -> None:
    server.publish("/b", [jwk(EC_KEY, "b-ec")])
    staff = provider(server, "/a", claims={"tenant": "ministry"})
    partner = provider(
        server,
        "/b",
        name="partner",
        issuer=OTHER_ISSUER,
        audience="api://souverain",
        algorithms=["ES256"],
        claims={"tenant_claim": "tid", "roles": {"partner-devs": "developer"}},
    )
    verifier = make_verifier(staff, partner)
    first = await verifier.verify(token())
    second = await verifier.verify(
        token(
            EC_KEY,
            "ES256",
            "b-ec",
            iss=OTHER_ISSUER,
            aud="api://souverain",
            tid="acme",
            groups=["partner-devs"],
        )
    )
    assert (first.provider, first.tenant, first.role) == ("staff", "ministry", "user")
    assert (second.provider, second.tenant, second.role) == ("partner", "acme", "developer")
    assert server.requests == Counter({"/a": 1, "/b": 1})
    # Each issuer's tokens verify only with its own keys and audience.
    await rejected(
        verifier,
        token(RSA_KEY, "RS256", "rsa-1", iss=OTHER_ISSUER, aud="api://souverain", tid="acme"),
    )
    await rejected(
        verifier,
        token(EC_KEY, "ES256", "ec-1", iss=OTHER_ISSUER, aud="api://souverain", tid="acme"),
    )
    await rejected(verifier, token(EC_KEY, "ES256", "b-ec", iss=OTHER_ISSUER, tid="acme"))


# --- configuration and shape -------------------------------------------------------


def test_looks_like_jwt() -> None:
    assert OidcVerifier.looks_like_jwt(token())
    assert OidcVerifier.looks_like_jwt(_none_token("none"))  # routed here, then refused
    for not_jwt in ["", "sk-sv-abc", "a.b", "a.b.c.d", "a b.c.d", "a.b.c\n", "a+b.c.d", "x" * 40]:
        assert not OidcVerifier.looks_like_jwt(not_jwt), not_jwt
    assert not OidcVerifier.looks_like_jwt("a." + "b" * 40_000 + ".c")


def test_config_errors_name_the_key() -> None:
    base: dict[str, Any] = {
        "name": "x",
        "issuer": ISSUER,
        "audience": "a",
        "jwks_url": "https://idp/jwks",
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"claims": {"tenants": "oops"}}, "tenants"),
        ({"clams": {}}, "clams"),
        ({"claims": {"roles": {"g": "superuser"}}}, "roles"),
        ({"claims": {"default_role": "root"}}, "default_role"),
        ({"algorithms": ["HS256"]}, "algorithms"),
        ({"algorithms": []}, "algorithms"),
        ({"jwks_url": "file:///etc/passwd"}, "jwks_url"),
        ({"audience": []}, "audience"),
    ]
    for bad, key in cases:
        with pytest.raises(ValidationError) as caught:
            IdentityProviderConfig.model_validate({**base, **bad})
        assert key in str(caught.value), bad
    with pytest.raises(ValidationError, match="not both"):
        ClaimMapping(tenant="a", tenant_claim="tid")
    config = IdentityProviderConfig.model_validate(base)
    with pytest.raises(ValidationError):
        config.issuer = "changed"


async def test_two_providers_may_not_share_an_issuer(server: JwksServer) -> None:
    with pytest.raises(ConfigError, match="issuer"):
        OidcVerifier([provider(server), provider(server, name="again")])
