"""The database: tables, the engine, and migrations that only ever append.

Each migration is a function registered with `@migration`; applied ones are recorded
by name in `souverain_migrations`, so a new release adds functions and never edits old
ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)

metadata = MetaData()

migrations_table = Table(
    "souverain_migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", DateTime(timezone=True), server_default=func.now()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prefix", String(32), nullable=False, unique=True),  # not secret: the lookup key
    Column("secret_hash", String(64), nullable=False),  # HMAC-SHA256(pepper, whole key)
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("revoked", Boolean, nullable=False, default=False),
    # Classification scopes (policy): the level assumed for this key's requests, and the
    # highest it may send at all. NULL: the policy's default, and no ceiling.
    Column("default_classification", String(64), nullable=True),
    Column("max_classification", String(64), nullable=True),
)

provider_cuts = Table(
    "provider_cuts",
    metadata,
    Column("kind", String(16), primary_key=True),  # deployment, operator, jurisdiction
    Column("value", String(200), primary_key=True),
    Column("actor", String(200), nullable=False),
    Column("at", Float, nullable=False),
)

provider_cut_events = Table(  # who cut or restored what, and when; never updated
    "provider_cut_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", String(200), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", Float, nullable=False),
)

# The tamper-evident audit log (audit/). Leaves and checkpoints are append-only: the
# database refuses UPDATE and DELETE on them (triggers, see m004).
audit_leaves = Table(
    "audit_leaves",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),  # gap-free, from 0
    Column("at", Float, nullable=False),
    Column("tenant", String(200), nullable=False),
    Column("principal", String(200), nullable=True),
    Column("kind", String(32), nullable=False),  # request, admin, tombstone
    Column("model", String(200), nullable=True),
    Column("outcome", String(64), nullable=True),
    Column("data", Text, nullable=False),  # canonical JSON: the bytes that are hashed
    Column("leaf_hash", LargeBinary(32), nullable=False),
)
Index("audit_leaves_query", audit_leaves.c.tenant, audit_leaves.c.at)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("peaks", Text, nullable=False),  # the compact range at this size, to continue from
    Column("note", Text, nullable=False),  # C2SP signed note
    Column("at", Float, nullable=False),
)

APPEND_ONLY = ("audit_leaves", "audit_checkpoints")

# Retained request/response bodies, encrypted per data subject (audit/payloads.py). These
# rows are deletable on purpose: erasure destroys the subject's key and ciphertexts.
audit_subject_keys = Table(
    "audit_subject_keys",
    metadata,
    Column("subject", String(64), primary_key=True),  # keyed pseudonym, never the raw id
    Column("wrapped_key", LargeBinary, nullable=False),  # AES-GCM under the master key
    Column("at", Float, nullable=False),
)

audit_payloads = Table(
    "audit_payloads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", Integer, nullable=False, index=True),  # the leaf that references it
    Column("tenant", String(200), nullable=False),
    Column("subject", String(64), nullable=False, index=True),
    Column("ciphertext", LargeBinary, nullable=False),  # nonce || AES-GCM(data key, body)
    Column("at", Float, nullable=False),
)

Migration = Callable[[Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(function: Migration) -> Migration:
    MIGRATIONS.append((function.__name__, function))
    return function


@migration
def m001_api_keys(conn: Connection) -> None:
    migrations_table.create(conn, checkfirst=True)
    api_keys.create(conn, checkfirst=True)


@migration
def m002_provider_cuts(conn: Connection) -> None:
    provider_cuts.create(conn, checkfirst=True)
    provider_cut_events.create(conn, checkfirst=True)


@migration
def m003_key_classification(conn: Connection) -> None:
    existing = {c["name"] for c in inspect(conn).get_columns("api_keys")}
    for column in ("default_classification", "max_classification"):
        if column not in existing:
            conn.execute(text(f"ALTER TABLE api_keys ADD COLUMN {column} VARCHAR(64)"))


@migration
def m004_audit_log(conn: Connection) -> None:
    audit_leaves.create(conn, checkfirst=True)
    audit_checkpoints.create(conn, checkfirst=True)
    for table in APPEND_ONLY:
        for statement in append_only_ddl(conn.dialect.name, table):
            conn.execute(text(statement))


@migration
def m005_audit_payloads(conn: Connection) -> None:
    audit_subject_keys.create(conn, checkfirst=True)
    audit_payloads.create(conn, checkfirst=True)


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
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged audit leaf survives a crash
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def upgrade(engine: Engine) -> list[str]:
    """Apply the migrations not yet applied; return their names."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        migrations_table.create(conn, checkfirst=True)
        done = set(conn.execute(select(migrations_table.c.name)).scalars())
        for name, function in MIGRATIONS:
            if name in done:
                continue
            function(conn)
            conn.execute(migrations_table.insert().values(name=name))
            applied_now.append(name)
    return applied_now


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
