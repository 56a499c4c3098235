"""API keys: random, prefixed, shown once, stored only as a peppered hash.

A key looks like `sk-sv-<8 lookup chars><32 secret chars>`. Its first 14 characters
are a non-secret prefix used to find the row; the whole key is checked by comparing
HMAC-SHA256(pepper, key) in constant time. An unknown prefix costs the same HMAC and
comparison as a wrong secret, so timing does not tell them apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import string
import time
from pathlib import Path

from sqlalchemy import Engine, delete, select

from ..context import Principal
from ..errors import AuthenticationFailed
from ..store.database import api_keys

KEY_SCHEME = "sk-sv-"
PREFIX_LENGTH = len(KEY_SCHEME) + 8
MIN_KEY_LENGTH = 20
_ALPHABET = string.ascii_letters + string.digits
CACHE_SECONDS = 30.0
ENV_KEY_NAME = "admin (SOUVERAIN_ADMIN_KEY)"


def generate_key() -> str:
    return KEY_SCHEME + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def load_pepper(data_dir: Path, environ: dict[str, str] | None = None) -> bytes:
    """The server-side secret mixed into every key hash: env var, or a 0600 file."""
    env = os.environ if environ is None else environ
    if env.get("SOUVERAIN_PEPPER"):
        return env["SOUVERAIN_PEPPER"].encode()
    path = data_dir / "pepper"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class KeyStore:
    def __init__(self, engine: Engine, pepper: bytes) -> None:
        self._engine = engine
        self._pepper = pepper
        self._dummy_hash = self._hash("sk-sv-dummy-key-for-constant-time")
        # hash -> (principal, expiry). Revocation arrives with the admin API and clears it.
        self._cache: dict[str, tuple[Principal, float]] = {}

    def _hash(self, key: str) -> str:
        return hmac.new(self._pepper, key.encode(), hashlib.sha256).hexdigest()

    def create(
        self,
        *,
        name: str,
        role: str,
        key: str | None = None,
        default_classification: str | None = None,
        max_classification: str | None = None,
    ) -> str:
        key = key or generate_key()
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"an API key must be at least {MIN_KEY_LENGTH} characters long")
        with self._engine.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    prefix=key[:PREFIX_LENGTH],
                    secret_hash=self._hash(key),
                    name=name,
                    role=role,
                    default_classification=default_classification,
                    max_classification=max_classification,
                )
            )
        return key

    def ensure_admin(self, env_key: str | None) -> str | None:
        """Make sure an admin can log in; return a newly generated key to show once."""
        with self._engine.begin() as conn:
            if env_key:
                conn.execute(delete(api_keys).where(api_keys.c.name == ENV_KEY_NAME))
                conn.execute(delete(api_keys).where(api_keys.c.prefix == env_key[:PREFIX_LENGTH]))
            else:
                has_admin = conn.execute(
                    select(api_keys.c.id).where(api_keys.c.role == "admin", ~api_keys.c.revoked)
                ).first()
                if has_admin:
                    return None
        if env_key:
            self.create(name=ENV_KEY_NAME, role="admin", key=env_key)
            return None
        return self.create(name="bootstrap admin", role="admin")

    def cached(self, key: str) -> Principal | None:
        """The principal for a key verified in the last few seconds, without the database."""
        entry = self._cache.get(self._hash(key))
        if entry and entry[1] > time.monotonic():
            return entry[0]
        return None

    def lookup(self, key: str) -> Principal | None:
        digest = self._hash(key)
        with self._engine.connect() as conn:
            row = conn.execute(
                select(api_keys).where(api_keys.c.prefix == key[:PREFIX_LENGTH])
            ).first()
        stored = row.secret_hash if row is not None else self._dummy_hash
        matches = hmac.compare_digest(stored, digest)
        if row is None or not matches or row.revoked:
            return None
        principal = Principal(
            key_id=row.id,
            name=row.name,
            role=row.role,
            default_classification=row.default_classification,
            max_classification=row.max_classification,
        )
        self._cache[digest] = (principal, time.monotonic() + CACHE_SECONDS)
        return principal


class Authenticator:
    """The identity stage: a bearer key in, a `Principal` out, or 401 with no hint why."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    async def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 512:
            raise AuthenticationFailed("missing or invalid API key")
        principal = self._keys.cached(token) or await asyncio.to_thread(self._keys.lookup, token)
        if principal is None:
            raise AuthenticationFailed("missing or invalid API key")
        return principal
