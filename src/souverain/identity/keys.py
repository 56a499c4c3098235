"""API keys: random, prefixed, shown once, stored only as a peppered hash.

A key looks like `sk-sv-<40 random chars>`. The database holds HMAC-SHA256(pepper, key)
under a unique index, and a key is looked up by that hash: an unknown key and a wrong
secret behind a known prefix take the very same path (one HMAC, one index miss), so
timing tells nothing about which prefixes exist (measured: bench/auth_quota.py). The
first 14 characters are kept, not secret, to show which key is which.

A verified key is cached for a few seconds; any change to keys, users, teams or tenants
clears the cache at once (and, with Redis, on every replica: `identity/invalidation.py`).

A key minted by a non-admin key names that key (`parent_id`, identity/minting.py): it is
usable only while every key above it is, and each of those keys' own limits counts its
use too, so minting keys neither outlives a revocation nor multiplies a limit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import string
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Row, delete, select, update

from ..context import Principal
from ..store.tables import api_keys, team_members, teams, tenants, users
from .demands import ancestor_demands, demands
from .directory import DEFAULT_TENANT, LIMIT_FIELDS, default_tenant_id, new_id
from .rbac import effective_role

KEY_SCHEME = "sk-sv-"
PREFIX_LENGTH = len(KEY_SCHEME) + 8
MIN_KEY_LENGTH = 20
MAX_KEY_LENGTH = 512
_ALPHABET = string.ascii_letters + string.digits
ENV_KEY_NAME = "owner (SOUVERAIN_ADMIN_KEY)"
# Keys minting keys minting keys...: a chain deeper than this is refused at minting and
# unusable at lookup (each generation is one more indexed query at each cache miss).
MAX_GENERATIONS = 8


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
    def __init__(self, engine: Engine, pepper: bytes, *, cache_s: float = 30.0) -> None:
        self._engine = engine
        self._pepper = pepper
        self.cache_s = cache_s
        self.caching = True  # off while replicas cannot tell each other of revocations
        self._cache: dict[str, tuple[Principal, float]] = {}  # hash -> (principal, until)
        self.on_forget: list[Callable[[], None]] = []  # other caches of this process
        self.broadcast: Callable[[], Awaitable[None]] | None = None  # tells other replicas

    def _hash(self, key: str) -> str:
        return hmac.new(self._pepper, key.encode(), hashlib.sha256).hexdigest()

    # ---- writing ------------------------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        role: str,
        key: str | None = None,
        tenant_id: int | None = None,
        user_id: int | None = None,
        team_id: int | None = None,
        expires_at: float | None = None,
        models: list[str] | None = None,
        endpoints: list[str] | None = None,
        default_classification: str | None = None,
        max_classification: str | None = None,
        limits: dict[str, Any] | None = None,
        parent_id: int | None = None,
    ) -> tuple[int, str]:
        """Store a new key; return its id and the key itself (the only time it is seen)."""
        key = key or generate_key()
        if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH:
            raise ValueError(f"an API key must be {MIN_KEY_LENGTH}-{MAX_KEY_LENGTH} characters")
        with self._engine.begin() as conn:
            tenant_id = tenant_id or default_tenant_id(conn)
            result = conn.execute(
                api_keys.insert().values(
                    prefix=key[:PREFIX_LENGTH],
                    secret_hash=self._hash(key),
                    name=name,
                    role=role,
                    revoked=False,
                    tenant_id=tenant_id,
                    user_id=user_id,
                    team_id=team_id,
                    expires_at=expires_at,
                    models=json.dumps(models) if models is not None else None,
                    endpoints=json.dumps(endpoints) if endpoints is not None else None,
                    default_classification=default_classification,
                    max_classification=max_classification,
                    parent_id=parent_id,
                    **{k: v for k, v in (limits or {}).items() if k in LIMIT_FIELDS},
                )
            )
            key_id = new_id(result)
        return key_id, key

    def revoke(self, key_id: int) -> bool:
        """Revoke a key and every key minted from it, however deep (they would be
        unusable anyway; marking them says so in every listing)."""
        with self._engine.begin() as conn:
            family = key_family(conn, key_id)
            done = conn.execute(
                update(api_keys).where(api_keys.c.id.in_(family)).values(revoked=True)
            ).rowcount
        self.forget()  # here at once; the caller then tells the other replicas
        return bool(done)

    def generation(self, key_id: int) -> int:
        """How many keys stand above this one, itself included (1: minted by no key)."""
        parent: int | None = key_id
        depth = 0
        with self._engine.connect() as conn:
            while parent is not None and depth <= MAX_GENERATIONS:
                depth += 1
                parent = conn.execute(
                    select(api_keys.c.parent_id).where(api_keys.c.id == parent)
                ).scalar()
        return depth

    def ensure_admin(self, env_key: str | None) -> str | None:
        """Make sure the platform owner can log in; return a new key to show once.

        `SOUVERAIN_ADMIN_KEY` replaces any key created from it before; without it, the
        first start creates one owner key and prints it.
        """
        with self._engine.begin() as conn:
            if env_key and self._env_key_kept(conn, env_key):
                return None
            if env_key:
                conn.execute(
                    delete(api_keys).where(
                        (api_keys.c.name == ENV_KEY_NAME)
                        | (api_keys.c.prefix == env_key[:PREFIX_LENGTH])
                    )
                )
            else:
                has_owner = conn.execute(
                    select(api_keys.c.id).where(
                        api_keys.c.role.in_(("owner", "admin")), ~api_keys.c.revoked
                    )
                ).first()
                if has_owner:
                    return None
        if env_key:
            self.create(name=ENV_KEY_NAME, role="owner", key=env_key)
            return None
        return self.create(name="bootstrap owner", role="owner")[1]

    def _env_key_kept(self, conn: Any, env_key: str) -> bool:
        """The same SOUVERAIN_ADMIN_KEY as at the last start keeps its row: its id is who
        owns what it made (conversations, files, batches), so a new row at every start
        would leave those behind."""
        row = conn.execute(
            select(api_keys.c.secret_hash).where(
                (api_keys.c.name == ENV_KEY_NAME)
                & (api_keys.c.prefix == env_key[:PREFIX_LENGTH])
                & (api_keys.c.role == "owner")
                & ~api_keys.c.revoked
            )
        ).first()
        return row is not None and hmac.compare_digest(row.secret_hash, self._hash(env_key))

    async def invalidate(self) -> None:
        """A key, role or limit changed: forget what every replica has cached."""
        self.forget()
        if self.broadcast is not None:
            await self.broadcast()

    def forget(self) -> None:
        """Forget every principal cached in this process."""
        self._cache.clear()
        for listener in self.on_forget:
            listener()

    # ---- reading ------------------------------------------------------------------------

    def describe(
        self,
        *,
        tenant_id: int | None,
        user_id: int | None = None,
        key_id: int | None = None,
        minted_by: int | None = None,
    ) -> list[dict[str, Any]]:
        """Keys as the admin API shows them (never the secret nor its hash).

        `minted_by`: that key and the keys it minted, only."""
        query = _KEY_QUERY.order_by(api_keys.c.id)
        if minted_by is not None:
            query = query.where((api_keys.c.id == minted_by) | (api_keys.c.parent_id == minted_by))
        if tenant_id is not None:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        if user_id is not None:
            query = query.where(api_keys.c.user_id == user_id)
        if key_id is not None:
            query = query.where(api_keys.c.id == key_id)
        with self._engine.connect() as conn:
            return [_key_dict(row) for row in conn.execute(query)]

    def cached(self, key: str) -> Principal | None:
        """The principal for a key verified in the last few seconds, without the database."""
        if not self.caching:
            return None
        entry = self._cache.get(self._hash(key))
        if entry and entry[1] > time.monotonic():
            expires_at = entry[0].expires_at
            if expires_at is None or expires_at > time.time():
                return entry[0]
        return None

    def lookup(self, key: str) -> Principal | None:
        digest = self._hash(key)
        with self._engine.connect() as conn:
            row = conn.execute(_KEY_QUERY.where(api_keys.c.secret_hash == digest)).first()
            # The index found the hash; comparing again costs nothing and keeps the check
            # explicit and constant-time.
            if row is None or not hmac.compare_digest(row.secret_hash, digest):
                return None
            if not _usable(row):
                return None
            role = effective_role(row.role, row.user_role)
            if role is None:
                return None
            ancestors = _ancestors(conn, row.parent_id)
            if ancestors is None:  # a key above it was revoked, expired or is gone
                return None
            member_of = _team_names(conn, row.user_id) if row.user_id else ()
            team_limits = _team_rows(conn, row.team_id)
        principal = Principal(
            key_id=row.id,
            name=row.name,
            role=role,
            tenant=row.tenant_name or DEFAULT_TENANT,
            subject=f"key:{row.id}",
            tenant_id=row.tenant_id,
            user_id=row.user_id,
            team=row.team_name,
            team_id=row.team_id,
            teams=tuple(sorted({*member_of, *([row.team_name] if row.team_name else [])})),
            models=_scope(row.models),
            endpoints=_scope(row.endpoints),
            default_classification=row.default_classification,
            max_classification=row.max_classification,
            quotas=demands(row, team_limits) + ancestor_demands(ancestors),
            expires_at=row.expires_at,
        )
        self._cache[digest] = (principal, time.monotonic() + self.cache_s)
        return principal


_KEY_QUERY = (
    select(
        api_keys,
        users.c.role.label("user_role"),
        users.c.disabled.label("user_disabled"),
        users.c.name.label("user_name"),
        *[users.c[f].label(f"user_{f}") for f in LIMIT_FIELDS],
        tenants.c.name.label("tenant_name"),
        *[tenants.c[f].label(f"tenant_{f}") for f in LIMIT_FIELDS],
        teams.c.name.label("team_name"),
    )
    .outerjoin(users, users.c.id == api_keys.c.user_id)
    .outerjoin(tenants, tenants.c.id == api_keys.c.tenant_id)
    .outerjoin(teams, teams.c.id == api_keys.c.team_id)
)


def key_family(conn: Any, key_id: int) -> set[int]:
    """A key and every key minted from it, however deep (what its own limits cover)."""
    family, generation = {key_id}, [key_id]
    for _ in range(MAX_GENERATIONS):
        query = select(api_keys.c.id).where(api_keys.c.parent_id.in_(generation))
        generation = [child for child in conn.execute(query).scalars() if child not in family]
        if not generation:
            break
        family.update(generation)
    return family


def _ancestors(conn: Any, parent_id: int | None) -> list[Row[Any]] | None:
    """The keys above a minted key, nearest first; None if any of them is unusable (or
    the chain is longer than any minting allows)."""
    found: list[Row[Any]] = []
    while parent_id is not None:
        if len(found) >= MAX_GENERATIONS:
            return None
        row = conn.execute(_KEY_QUERY.where(api_keys.c.id == parent_id)).first()
        if row is None or not _usable(row) or effective_role(row.role, row.user_role) is None:
            return None
        found.append(row)
        parent_id = row.parent_id
    return found


def _usable(row: Row[Any]) -> bool:
    if row.revoked or row.user_disabled:
        return False
    return row.expires_at is None or row.expires_at > time.time()


def _key_dict(row: Row[Any]) -> dict[str, Any]:
    data = row._mapping
    return {
        "object": "api_key",
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix.split("~")[0],
        "role": row.role,
        "tenant": row.tenant_name,
        "tenant_id": row.tenant_id,
        "user_id": row.user_id,
        "team": row.team_name,
        "models": json.loads(row.models) if row.models else None,
        "endpoints": json.loads(row.endpoints) if row.endpoints else None,
        "expires_at": int(row.expires_at) if row.expires_at is not None else None,
        "created_at": int(row.created_at.timestamp()) if row.created_at else None,
        "revoked": bool(row.revoked),
        "parent_id": row.parent_id,
        "default_classification": row.default_classification,
        "max_classification": row.max_classification,
        "limits": {field: data[field] for field in LIMIT_FIELDS},
    }


def _scope(stored: str | None) -> frozenset[str] | None:
    return None if stored is None else frozenset(json.loads(stored))


def _team_names(conn: Any, user_id: int) -> tuple[str, ...]:
    query = (
        select(teams.c.name)
        .join(team_members, team_members.c.team_id == teams.c.id)
        .where(team_members.c.user_id == user_id)
    )
    return tuple(conn.execute(query).scalars())


def _team_rows(conn: Any, team_id: int | None) -> Row[Any] | None:
    if team_id is None:
        return None
    row: Row[Any] | None = conn.execute(select(teams).where(teams.c.id == team_id)).first()
    return row
