"""Migrations (Alembic) on SQLite and PostgreSQL: fresh databases, databases made by the
releases before Alembic, and `souverain db upgrade`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from souverain.cli import cli
from souverain.identity.keys import KeyStore
from souverain.store.database import current_revision, open_database, upgrade

HEAD = "0015"
ALL = [
    f"{n:04d}" for n in range(1, 16)
]  # 0011 files, 0012 jobs, 0013-0014 conversations, 0015 ingest jobs


def _engine(database_url: str):  # type: ignore[no-untyped-def]
    return open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))


def test_a_fresh_database_is_upgraded_once(database_url: str) -> None:
    engine = _engine(database_url)
    assert upgrade(engine) == ALL
    assert upgrade(engine) == []  # nothing twice
    assert current_revision(engine) == HEAD
    tables = set(inspect(engine).get_table_names())
    assert {"tenants", "teams", "users", "team_members", "api_keys", "usage",
            "audit_leaves", "provider_cuts"} <= tables  # fmt: skip
    engine.dispose()


def test_a_database_from_before_alembic_keeps_its_keys(database_url: str) -> None:
    """Releases before Alembic created the baseline tables themselves and recorded no
    revision: the baseline finds its tables, and the old keys work afterwards."""
    engine = _engine(database_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))  # as an old release left it
    keys = KeyStore(engine, b"pepper")
    old_key = "sk-sv-oldrelease" + "k" * 30
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_keys (prefix, secret_hash, name, role, revoked) "
                "VALUES (:prefix, :hash, 'legacy', 'admin', false)"
            ),
            {"prefix": old_key[:14], "hash": keys._hash(old_key)},
        )
    assert upgrade(engine) == ALL
    principal = keys.lookup(old_key)
    assert principal is not None
    assert (principal.role, principal.tenant, principal.name) == ("admin", "default", "legacy")
    engine.dispose()


def test_db_upgrade_command(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert "applied: 0001, 0002" in first.output and HEAD in first.output
    again = runner.invoke(cli, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert "applied: nothing" in again.output


def test_a_refused_migration_is_a_clear_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without pgvector refuses migration 0003 (the real refusal is checked by
    hand: this machine's PostgreSQL has pgvector). The commands print its message."""
    from souverain.store import database

    def refuse(engine: object, revision: str = "head") -> list[str]:
        raise database.MigrationRefused("the pgvector extension is missing: install it")

    monkeypatch.setattr(database, "upgrade", refuse)
    result = CliRunner().invoke(cli, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error: the pgvector extension is missing: install it" in result.output
    assert "Traceback" not in result.output


def _insert(conn: Connection, table: str, **values: object) -> int:
    columns = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    returned = conn.execute(
        text(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id"), values
    )
    return int(returned.scalar_one())


def test_an_existing_database_keeps_its_rows_and_never_reuses_a_deleted_id(
    database_url: str,
) -> None:
    """A database at 0003 with identities, a key, a library and its shares, upgraded: every
    row is still there with its id, shares naming a deleted user are gone, and the next
    user, team, tenant and key get ids above any ever seen (SQLite handed out the id of
    the newest row again once it was deleted)."""
    engine = _engine(database_url)
    assert upgrade(engine, "0003") == ["0001", "0002", "0003"]
    identity = {"created_at": 1.0}
    with engine.begin() as conn:
        acme = _insert(conn, "tenants", name="acme", **identity)
        team = _insert(conn, "teams", tenant_id=acme, name="payments", **identity)
        kept = _insert(conn, "users", tenant_id=acme, kind="user", name="kept", role="admin",
                       disabled=False, **identity)  # fmt: skip
        gone = _insert(conn, "users", tenant_id=acme, kind="user", name="gone", role="user",
                       disabled=False, **identity)  # fmt: skip
        conn.execute(text("INSERT INTO team_members VALUES (:t, :u)"), {"t": team, "u": kept})
        key = _insert(conn, "api_keys", prefix="sk-sv-abcdefgh", secret_hash="h" * 64,
                      name="k", role="admin", revoked=False, tenant_id=acme, user_id=kept)  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO libraries (id, tenant_id, name, owner_type, created_by, "
                "created_by_user_id, embedding_model, revision, created_at, updated_at) "
                "VALUES ('lib-1', :t, 'private', 'User', 'key:9', :u, 'emb', 0, 1, 1)"
            ),
            {"t": acme, "u": gone},
        )
        for target_type, target_id in (("user", gone), ("user", kept), ("team", team)):
            conn.execute(
                text("INSERT INTO library_shares VALUES ('lib-1', :type, :id, 'viewer', 'x', 1)"),
                {"type": target_type, "id": target_id},
            )
        # A user deleted long ago is still named by a usage row (and a label that names
        # no key id must not trip the migration).
        conn.execute(
            text(
                "INSERT INTO usage (at, day, tenant, user_id, principal, endpoint, "
                "prompt_tokens, completion_tokens, cost, latency_ms, status, outcome) "
                "VALUES (1, '2026-01-01', 'acme', 40, 'key:None', 'chat', 1, 1, 0, 1, 200, 'ok')"
            )
        )
        # The newest user is deleted (as Directory.delete_user did): on SQLite the next
        # INSERT would have handed `gone` out again.
        conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": gone})
    assert upgrade(engine, "0004") == ["0004"]  # later revisions are tested on their own

    with engine.begin() as conn:
        names = conn.execute(text("SELECT id, name FROM users ORDER BY id")).all()
        assert [tuple(row) for row in names] == [(kept, "kept")]
        assert conn.execute(text("SELECT id, name FROM teams")).one() == (team, "payments")
        assert (
            conn.execute(text("SELECT user_id FROM api_keys WHERE id = :k"), {"k": key}).scalar()
            == kept
        )
        assert conn.execute(text("SELECT * FROM team_members")).one() == (team, kept)
        shares = conn.execute(text("SELECT target_type, target_id FROM library_shares")).all()
        assert sorted(tuple(row) for row in shares) == [("team", team), ("user", kept)]
        assert _insert(conn, "users", tenant_id=acme, kind="user", name="new", role="user",
                       disabled=False, **identity) > 40  # fmt: skip
        # `key:9` names a key in the library's creator column: key ids start above it.
        assert _insert(conn, "api_keys", prefix="sk-sv-zzzzzzzz", secret_hash="z" * 64,
                       name="k2", role="user", revoked=False) > 9  # fmt: skip
        newest_tenant = _insert(conn, "tenants", name="globex", **identity)
        conn.execute(text("DELETE FROM tenants WHERE id = :t"), {"t": newest_tenant})
        assert _insert(conn, "tenants", name="initech", **identity) > newest_tenant
    with pytest.raises(IntegrityError), engine.begin() as conn:  # constraints kept
        _insert(conn, "teams", tenant_id=acme, name="payments", **identity)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _insert(conn, "api_keys", prefix="sk-sv-other", secret_hash="h" * 64, name="dup",
                role="user", revoked=False)  # fmt: skip
    assert "api_keys_secret_hash" in {
        index["name"] for index in inspect(engine).get_indexes("api_keys")
    }
    engine.dispose()
