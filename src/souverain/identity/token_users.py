"""The directory entry of a person who signs in with an identity provider's token.

A token names a subject (`oidc:<provider>:<sub>`), not a directory user, and the gateway
never hears when the provider disables someone. So the first time a signed-in person
mints an API key, a user named after the subject is created in the token's tenant (the
same label usage rows and audit leaves carry), and the key belongs to it:

- the person's later tokens act as that user: they list only that user's keys, and its
  limits apply to them;
- disabling the user (`PATCH /admin/v1/users/{id} {"disabled": true}`) stops at once the
  keys and the tokens of that person; deleting it revokes the keys;
- the user's role follows the provider: it is set to the token's role at each minting
  (so a demotion at the provider reaches the keys at the next minting, and in any case
  when they expire, `identity.token_key_max_lifetime_s`).

An admin may create that user beforehand (same name) to set limits on, or disable,
someone who has not signed in yet.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from sqlalchemy import Connection, Engine, Row, select, update
from sqlalchemy.exc import IntegrityError

from ..context import Principal
from ..store.tables import users
from .directory import new_id

MAX_NAME = 200  # users.name


def user_name(subject: str) -> str:
    """The directory name for a token subject: the label itself, or a digest of a label
    too long for the column (a `sub` may be up to 255 characters)."""
    if len(subject) <= MAX_NAME:
        return subject
    return "oidc:sha256:" + hashlib.sha256(subject.encode()).hexdigest()


def find(conn: Connection, tenant_id: int, subject: str) -> Row[Any] | None:
    query = select(users).where(
        (users.c.tenant_id == tenant_id) & (users.c.name == user_name(subject))
    )
    row: Row[Any] | None = conn.execute(query).first()
    return row


def existing(engine: Engine, principal: Principal) -> dict[str, Any] | None:
    """The token principal's directory user as it stands (id, role), or None."""
    assert principal.tenant_id is not None
    with engine.connect() as conn:
        row = find(conn, principal.tenant_id, principal.subject)
    return None if row is None else {"id": row.id, "role": row.role}


def bind(engine: Engine, principal: Principal) -> tuple[int, bool]:
    """The id of a token principal's directory user, created if need be, its role set to
    the token's; and whether anything changed (cached principals must then be forgotten:
    the person's tokens now act as that user, its keys with that role)."""
    assert principal.tenant_id is not None
    name = user_name(principal.subject)
    for _ in range(2):  # a concurrent first minting may create it between our two steps
        try:
            with engine.begin() as conn:
                row = find(conn, principal.tenant_id, principal.subject)
                if row is None:
                    created = conn.execute(
                        users.insert().values(
                            tenant_id=principal.tenant_id,
                            kind="user",
                            name=name,
                            role=principal.role,
                            disabled=False,
                            created_at=time.time(),
                        )
                    )
                    return new_id(created), True
                if row.role == principal.role:
                    return int(row.id), False
                conn.execute(update(users).where(users.c.id == row.id).values(role=principal.role))
                return int(row.id), True
        except IntegrityError:
            continue
    raise RuntimeError(f"could not create the directory user {name!r}")
