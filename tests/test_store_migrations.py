"""Migrations (Alembic) on SQLite and PostgreSQL: fresh databases, databases made by the
releases before Alembic, and `souverain db upgrade`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text

from souverain.cli import cli
from souverain.identity.keys import KeyStore
from souverain.store.database import current_revision, open_database, upgrade

HEAD = "0003"


def _engine(database_url: str):  # type: ignore[no-untyped-def]
    return open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))


def test_a_fresh_database_is_upgraded_once(database_url: str) -> None:
    engine = _engine(database_url)
    assert upgrade(engine) == ["0001", "0002", "0003"]
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
    assert upgrade(engine) == ["0001", "0002", "0003"]
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
