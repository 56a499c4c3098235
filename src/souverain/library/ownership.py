"""What becomes of libraries when the identities they name are deleted.

The directory (identity/directory.py) calls these inside the transaction that deletes
the user, team or tenant, so both happen or neither does:

- a user: every share naming them is removed; the libraries they created either stay
  with the tenant (`keep`, the default: the creator link is cleared and the tenant's
  admins, who own every library of the tenant, decide) or are deleted with everything in
  them (`delete`);
- a team: every share naming it is removed;
- a tenant: its libraries are deleted with everything in them, and only when the caller
  said so (`delete`): there is no one left to keep them for.

Ids are never reused (store/tables.py), so nothing left behind can be inherited; these
remove what would otherwise point at nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from sqlalchemy import Connection, delete, func, select, update

from ..errors import Conflict, InvalidRequest
from ..store.tables import libraries, library_chunks, library_documents, library_shares

LibraryChoice = Literal["keep", "delete"]
CHOICES: tuple[str, ...] = get_args(LibraryChoice)


def library_choice(raw: str | None) -> LibraryChoice | None:
    """The `?libraries=` query parameter of a deletion: None when absent."""
    if raw is None:
        return None
    if raw not in CHOICES:
        raise InvalidRequest(
            f"libraries must be keep or delete, not {raw[:40]!r}", param="libraries"
        )
    return "delete" if raw == "delete" else "keep"


def delete_libraries(conn: Connection, library_ids: Sequence[str]) -> None:
    """Libraries and everything in them: documents (bytes, text), chunks (text and vectors;
    the keyword index and PostgreSQL's vector rows follow), shares."""
    if not library_ids:
        return
    ids = list(library_ids)
    conn.execute(delete(library_chunks).where(library_chunks.c.library_id.in_(ids)))
    conn.execute(delete(library_documents).where(library_documents.c.library_id.in_(ids)))
    conn.execute(delete(library_shares).where(library_shares.c.library_id.in_(ids)))
    conn.execute(delete(libraries).where(libraries.c.id.in_(ids)))


def forget_user(conn: Connection, user_id: int, tenant_id: int, choice: LibraryChoice) -> list[str]:
    """A user is being deleted: their shares go; the libraries they created in their
    tenant stay (creator link cleared) or go. Returns the ids of the libraries deleted."""
    _unshare(conn, "user", user_id)
    created = libraries.c.created_by_user_id == user_id
    doomed: list[str] = []
    if choice == "delete":
        mine = created & (libraries.c.tenant_id == tenant_id)  # never another tenant's
        doomed = list(conn.execute(select(libraries.c.id).where(mine)).scalars())
        delete_libraries(conn, doomed)
    conn.execute(update(libraries).where(created).values(created_by_user_id=None))
    return doomed


def forget_team(conn: Connection, team_id: int) -> None:
    _unshare(conn, "team", team_id)


def forget_tenant(
    conn: Connection, tenant_id: int, name: str, choice: LibraryChoice | None
) -> list[str]:
    """A tenant is being deleted: its libraries go with it, if the caller said so (409
    otherwise). Returns the ids of the libraries deleted."""
    if choice == "keep":
        raise InvalidRequest(
            "a deleted tenant's libraries cannot be kept: nobody would be left to own them "
            "(libraries=delete deletes them)",
            param="libraries",
        )
    owned = list(
        conn.execute(select(libraries.c.id).where(libraries.c.tenant_id == tenant_id)).scalars()
    )
    if owned and choice != "delete":
        documents = conn.execute(
            select(func.count())
            .select_from(library_documents)
            .where(library_documents.c.library_id.in_(owned))
        ).scalar_one()
        raise Conflict(
            f"tenant {name!r} still has {len(owned)} libraries with {documents} documents; "
            "delete it with ?libraries=delete to delete them too"
        )
    delete_libraries(conn, owned)
    _unshare(conn, "tenant", tenant_id)
    return owned


def _unshare(conn: Connection, target_type: str, target_id: int) -> None:
    conn.execute(
        delete(library_shares).where(
            (library_shares.c.target_type == target_type)
            & (library_shares.c.target_id == target_id)
        )
    )
