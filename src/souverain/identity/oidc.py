"""Bearer JWTs from an institution's identity provider (Keycloak, Entra ID, ...).

A token is routed to its provider by its `iss` claim, checked against that provider's
signing keys (see `jwks.py`), its audience and its validity window, and then mapped to a
tenant, teams and one role through the provider's `claims:` table. Every failure raises
the same `AuthenticationFailed`, so a caller learns nothing about which check failed;
the reason goes to the DEBUG log, never the token itself.

Only asymmetric algorithms exist here (RS256, ES256, EdDSA): HMAC would let anyone who
knows a public key sign tokens, and "none" signs nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import jwt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import AuthenticationFailed, ConfigError
from .jwks import JwksCache, JwksFetcher, KeyRejected

logger = logging.getLogger(__name__)

ROLES = ("owner", "admin", "auditor", "developer", "user")  # highest privilege first
DEFAULT_TENANT = "default"  # a provider that names no tenant (matches Principal.tenant)
MAX_TOKEN_CHARS = 32 * 1024  # Keycloak tokens with many groups run to a few KB
FAILURE_MESSAGE = "missing or invalid API key"  # the same for every failure, on purpose
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp"]

Algorithm = Literal["RS256", "ES256", "EdDSA"]
ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256", "EdDSA")
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class ClaimMapping(BaseModel):
    """How one provider's claims become a tenant, teams and a role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # At most one of these two; with neither, every token is in tenant "default".
    tenant: str | None = Field(default=None, min_length=1)
    tenant_claim: str | None = Field(default=None, min_length=1)
    groups_claim: str = Field(default="groups", min_length=1)
    roles: dict[str, str] = {}
    teams: dict[str, str] = {}
    team_prefix: str | None = Field(default=None, min_length=1)
    default_role: str | None = "user"  # None: a token whose groups map to no role is refused

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: dict[str, str]) -> dict[str, str]:
        for group, role in roles.items():
            if role not in ROLES:
                raise ValueError(f"group {group!r} maps to {role!r}; roles are {', '.join(ROLES)}")
        return roles

    @field_validator("default_role")
    @classmethod
    def _known_default(cls, role: str | None) -> str | None:
        if role is not None and role not in ROLES:
            raise ValueError(f"{role!r} is not a role; roles are {', '.join(ROLES)}")
        return role

    @model_validator(mode="after")
    def _one_tenant_source(self) -> ClaimMapping:
        if self.tenant is not None and self.tenant_claim is not None:
            raise ValueError("set tenant or tenant_claim, not both")
        return self


class IdentityProviderConfig(BaseModel):
    """One trusted issuer of bearer tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    issuer: str = Field(min_length=1)  # compared exactly with the token's `iss`
    audience: str | list[str]  # the token's `aud` must contain one of these
    jwks_url: str
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(ALGORITHMS), min_length=1)
    leeway_s: float = Field(default=30, ge=0, le=300)
    jwks_cache_s: float = Field(default=300, gt=0)
    claims: ClaimMapping = ClaimMapping()

    @field_validator("audience")
    @classmethod
    def _some_audience(cls, audience: str | list[str]) -> str | list[str]:
        values = [audience] if isinstance(audience, str) else audience
        if not values or not all(values):
            raise ValueError("audience must be a non-empty string or list of strings")
        return audience

    @field_validator("jwks_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    provider: str
    issuer: str
    subject: str
    email: str | None
    name: str | None
    tenant: str
    teams: tuple[str, ...]
    role: str
    expires_at: float  # the token's `exp`, seconds since the epoch


class _Rejected(Exception):
    """A token failed a check; the message is the reason, for the debug log only."""


class OidcVerifier:
    """Verifies bearer JWTs from the configured providers; one per application."""

    def __init__(
        self,
        providers: Sequence[IdentityProviderConfig],
        *,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,  # for the key cache; tests pass a fake
    ) -> None:
        self._fetcher = JwksFetcher(timeout_s)
        self._providers: dict[str, tuple[IdentityProviderConfig, JwksCache]] = {}
        names: set[str] = set()
        for provider in providers:
            if provider.issuer in self._providers:
                raise ConfigError(f"two identity providers have the issuer {provider.issuer!r}")
            if provider.name in names:
                raise ConfigError(f"two identity providers are named {provider.name!r}")
            names.add(provider.name)
            cache = JwksCache(
                provider.name, provider.jwks_url, provider.jwks_cache_s, self._fetcher, clock
            )
            self._providers[provider.issuer] = (provider, cache)

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        """Three base64url segments: worth verifying as a JWT rather than as an API key."""
        return len(token) <= MAX_TOKEN_CHARS and _JWT_SHAPE.fullmatch(token) is not None

    async def verify(self, token: str) -> TokenIdentity:
        try:
            return await self._verify(token)
        except (_Rejected, KeyRejected) as error:  # fetch failures were logged at WARNING
            logger.debug("bearer token rejected: %s", error)
        # Raised outside the except block: no chained cause for anyone to render.
        raise AuthenticationFailed(FAILURE_MESSAGE)

    async def _verify(self, token: str) -> TokenIdentity:
        if not self.looks_like_jwt(token):
            raise _Rejected("not a JWT")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise _Rejected(f"malformed token ({error})") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _Rejected(f"algorithm {alg!r:.40} is never accepted")
        if "crit" in header:  # extensions we do not implement must not be ignored
            raise _Rejected("'crit' header present")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _Rejected("'kid' header is not a string")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self._providers:
            raise _Rejected(f"unknown issuer {issuer!r:.200}")
        provider, cache = self._providers[issuer]
        if alg not in provider.algorithms:
            raise _Rejected(f"algorithm {alg} not allowed for provider {provider.name!r}")

        key = await cache.key_for(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.alg],
                options={"require": REQUIRED_CLAIMS},
                audience=provider.audience,
                issuer=provider.issuer,
                leeway=provider.leeway_s,
            )
        except jwt.PyJWTError as error:
            raise _Rejected(f"provider {provider.name!r}: {error}") from None
        # Older PyJWT releases accept an `iat` in the future; do not depend on the version.
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > time.time() + provider.leeway_s:
            raise _Rejected("token issued in the future (iat)")
        return _identity(provider, claims)

    async def aclose(self) -> None:
        for _, cache in self._providers.values():
            await cache.aclose()
        await self._fetcher.aclose()


def _identity(provider: IdentityProviderConfig, claims: Mapping[str, Any]) -> TokenIdentity:
    subject, exp = claims["sub"], claims["exp"]
    if not isinstance(subject, str) or not subject:
        raise _Rejected("'sub' is not a non-empty string")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise _Rejected("'exp' is not a number")
    mapping = provider.claims
    groups = _groups(claim_at(claims, mapping.groups_claim))
    role = _role(mapping, groups)
    if role is None:
        raise _Rejected(f"groups {groups!r:.200} map to no role, and there is no default role")
    return TokenIdentity(
        provider=provider.name,
        issuer=provider.issuer,
        subject=subject,
        email=_string(claims.get("email")),
        name=_string(claims.get("name")) or _string(claims.get("preferred_username")),
        tenant=_tenant(mapping, claims),
        teams=_teams(mapping, groups),
        role=role,
        expires_at=float(exp),
    )


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted path ("realm_access.roles"), or None.

    A claim whose own name has dots (Auth0's "https://example.org/groups") is found
    under its full name first.
    """
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _groups(value: Any) -> list[str]:
    if isinstance(value, str):  # some providers send a single group as a string
        return [value]
    if isinstance(value, list):
        return [group for group in value if isinstance(group, str)]
    return []


def _tenant(mapping: ClaimMapping, claims: Mapping[str, Any]) -> str:
    if mapping.tenant_claim is None:
        return mapping.tenant or DEFAULT_TENANT
    tenant = _string(claim_at(claims, mapping.tenant_claim))
    if tenant is None:
        raise _Rejected(f"tenant claim {mapping.tenant_claim!r} missing or not a string")
    return tenant


def _role(mapping: ClaimMapping, groups: list[str]) -> str | None:
    mapped = {mapping.roles[group] for group in groups if group in mapping.roles}
    return next((role for role in ROLES if role in mapped), mapping.default_role)


def _teams(mapping: ClaimMapping, groups: list[str]) -> tuple[str, ...]:
    teams = {mapping.teams[group] for group in groups if group in mapping.teams}
    if mapping.team_prefix is not None:
        for group in groups:
            if group.startswith(mapping.team_prefix):
                team = group[len(mapping.team_prefix) :].strip("/")
                if team:
                    teams.add(team)
    return tuple(sorted(teams))
