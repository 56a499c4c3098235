"""The database engine, its URL, and upgrades (Alembic migrations in `migrations/`).

Tables are in `tables.py`. Migrations only ever append: a release adds a revision and
never edits an old one. `souverain db upgrade` applies them; `serve` does too at start.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text

from .private_files import DIRECTORY_MODE, FILE_MODE, private_sqlite_files
from .tables import APPEND_ONLY

MIGRATIONS = Path(__file__).parent / "migrations"
# A lock id of our own for pg_advisory_xact_lock: replicas starting together upgrade once.
_PG_UPGRADE_LOCK = 0x50_55_56_52


class MigrationRefused(Exception):
    """A migration cannot run on this database as it is (a PostgreSQL extension it needs
    is missing, say); the message says what to do. Nothing was applied."""


def append_only_ddl(dialect: str, table: str) -> list[str]:
    """Triggers that make the database itself refuse to change or remove rows."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for op in ("UPDATE", "DELETE")
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION souverain_append_only() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION souverain_append_only()",
        ]
    raise ValueError(f"no append-only triggers for the {dialect} dialect")


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'souverain.db').resolve()}"


def database_url(configured: str | None, data_dir: Path) -> str:
    """The configured URL (with psycopg 3 as PostgreSQL's driver), or SQLite in data_dir."""
    if not configured:
        return sqlite_url(data_dir)
    for prefix in ("postgresql://", "postgres://"):
        if configured.startswith(prefix):
            return "postgresql+psycopg://" + configured[len(prefix) :]
    return configured


def open_database(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        database = _sqlite_file(engine)
        if database is not None:  # created 0600 before SQLite opens it (private_files.py)
            database.parent.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
            private_sqlite_files(database)
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite database; None in memory."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged audit leaf survives a crash
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> list[str]:
    """Apply the migrations not yet applied, in one transaction; return their revisions.

    Concurrent starts are serialised (PostgreSQL: an advisory lock; SQLite: a file lock
    next to the database), so replicas starting together do not race.
    """
    config = alembic_config()
    applied: list[str] = []
    with _upgrade_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_UPGRADE_LOCK})
        config.attributes["connection"] = conn
        config.attributes["applied"] = applied
        command.upgrade(config, revision)
    return applied


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[None]:
    database = _sqlite_file(engine) if engine.dialect.name == "sqlite" else None
    if database is None:
        yield
        return
    lock = os.open(f"{database}.upgrade-lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    with os.fdopen(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def grant_audit_writer(conn: Connection, role: str) -> None:
    """PostgreSQL: let `role` read and append to the audit log, and nothing else.

    With the triggers this is two locks: even someone who drops the triggers cannot
    change rows through a connection that uses this role.
    """
    quoted = conn.dialect.identifier_preparer.quote(role)
    for table in APPEND_ONLY:
        conn.execute(text(f"REVOKE ALL ON {table} FROM {quoted}"))
        conn.execute(text(f"GRANT SELECT, INSERT ON {table} TO {quoted}"))


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
