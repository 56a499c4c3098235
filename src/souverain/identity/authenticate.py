"""The identity stage: a bearer credential in, a `Principal` out, or 401 with no hint why.

Two kinds of credential: Souverain API keys (`sk-sv-…`, keys.py) and JWTs from the
institution's identity providers (oidc.py). A token's tenant must exist in the
directory, and the limits of that tenant and of the token's teams apply to it. Once the
person has minted a key, the token acts as their directory user (token_users.py): a
disabled user's tokens are refused, and that user's limits apply.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from sqlalchemy import Engine, select

from ..context import Principal
from ..errors import AuthenticationFailed
from ..quotas.limits import Demand, Scope
from ..store.tables import teams, tenants
from .demands import limits_from
from .directory import LIMIT_FIELDS
from .keys import KEY_SCHEME, MAX_KEY_LENGTH, KeyStore
from .oidc import OidcVerifier, TokenIdentity
from .token_users import find as find_token_user

FAILED = "missing or invalid API key"
MAX_TOKEN_LENGTH = 16 * 1024  # JWTs with many groups are long; anything longer is not ours


class Authenticator:
    def __init__(self, keys: KeyStore, database: Engine, oidc: OidcVerifier | None = None) -> None:
        self._keys = keys
        self._database = database
        self._oidc = oidc
        # sha256(token) -> (principal, until): a token is verified once per cache period.
        self._tokens: dict[bytes, tuple[Principal, float]] = {}
        keys.on_forget.append(self._tokens.clear)

    async def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed(FAILED)
        is_key = token.startswith(KEY_SCHEME)
        if self._oidc is not None and not is_key and OidcVerifier.looks_like_jwt(token):
            return await self._from_token(token)
        if len(token) > MAX_KEY_LENGTH:
            raise AuthenticationFailed(FAILED)
        principal = self._keys.cached(token) or await asyncio.to_thread(self._keys.lookup, token)
        if principal is None:
            raise AuthenticationFailed(FAILED)
        return principal

    async def aclose(self) -> None:
        if self._oidc is not None:
            await self._oidc.aclose()

    async def _from_token(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        now = time.time()
        cached = self._tokens.get(digest) if self._keys.caching else None
        if cached and cached[1] > now:
            return cached[0]
        assert self._oidc is not None
        identity = await self._oidc.verify(token)
        principal = await asyncio.to_thread(self._principal, identity)
        if len(self._tokens) > 10_000:  # bounded: many users, short-lived tokens
            self._tokens.clear()
        self._tokens[digest] = (principal, min(identity.expires_at, now + self._keys.cache_s))
        return principal

    def _principal(self, identity: TokenIdentity) -> Principal:
        subject = f"oidc:{identity.provider}:{identity.subject}"
        with self._database.connect() as conn:
            tenant = conn.execute(select(tenants).where(tenants.c.name == identity.tenant)).first()
            if tenant is None:  # the IdP names a tenant we do not have: refuse, do not guess
                raise AuthenticationFailed(FAILED)
            team_rows = conn.execute(
                select(teams).where(
                    (teams.c.tenant_id == tenant.id) & teams.c.name.in_(identity.teams)
                )
            ).all()
            user = find_token_user(conn, tenant.id, subject)
        if user is not None and user.disabled:  # disabled in the directory: all of it stops
            raise AuthenticationFailed(FAILED)
        demands: list[Demand] = []
        if user is not None:
            demands.extend(_demand(Scope("user", str(user.id), user.name), user._mapping))
        for row in team_rows:
            demands.extend(_demand(Scope("team", str(row.id), row.name), row._mapping))
        demands.extend(_demand(Scope("tenant", str(tenant.id), tenant.name), tenant._mapping))
        return Principal(
            key_id=None,
            name=identity.name or identity.email or identity.subject,
            role=identity.role,
            tenant=tenant.name,
            subject=subject,
            tenant_id=tenant.id,
            user_id=user.id if user is not None else None,
            team=team_rows[0].name if team_rows else None,
            team_id=team_rows[0].id if team_rows else None,
            teams=identity.teams,
            quotas=tuple(demands),
            expires_at=identity.expires_at,
        )


def _demand(scope: Scope, values: Any) -> list[Demand]:
    limits = limits_from({field: values[field] for field in LIMIT_FIELDS})
    return [] if limits is None else [Demand(scope, limits)]
