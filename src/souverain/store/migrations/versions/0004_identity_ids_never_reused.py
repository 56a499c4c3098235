"""Identity ids are never reused, and shares that name a deleted identity are removed.

SQLite gives a new row the largest id plus one unless the table is AUTOINCREMENT: after
the newest user was deleted, the next user got its id, and with it every library share
and creator link that named the old one. SQLite cannot add AUTOINCREMENT to a table, so
tenants, teams, users and api_keys are rebuilt (batch mode: copy, drop, rename), rows and
ids kept. The counter then starts above every id any table still mentions, so an id
deleted before this upgrade is not handed out again either.

PostgreSQL's sequences never hand an id out twice: nothing to rebuild there; a sequence
behind an id some table mentions (a restored or hand-edited database) is moved past it.
On both, shares whose user, team or tenant no longer exists are deleted (they would
otherwise wait for an id to come back).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

# For each identity table, the columns elsewhere that hold its ids (table, column or
# expression, condition). `key:<id>` labels name API keys in creator and principal columns.
KEY_LABEL = "key_label"
MENTIONS: dict[str, list[tuple[str, str, str]]] = {
    "tenants": [
        ("teams", "tenant_id", ""),
        ("users", "tenant_id", ""),
        ("api_keys", "tenant_id", ""),
        ("usage", "tenant_id", ""),
        ("libraries", "tenant_id", ""),
        ("library_shares", "target_id", "target_type = 'tenant'"),
    ],
    "teams": [
        ("team_members", "team_id", ""),
        ("api_keys", "team_id", ""),
        ("usage", "team_id", ""),
        ("library_shares", "target_id", "target_type = 'team'"),
    ],
    "users": [
        ("team_members", "user_id", ""),
        ("api_keys", "user_id", ""),
        ("usage", "user_id", ""),
        ("libraries", "created_by_user_id", ""),
        ("library_documents", "uploaded_by_user_id", ""),
        ("library_shares", "target_id", "target_type = 'user'"),
    ],
    "api_keys": [
        ("usage", "key_id", ""),
        ("usage", "principal", KEY_LABEL),
        ("libraries", "created_by", KEY_LABEL),
        ("library_documents", "uploaded_by", KEY_LABEL),
        ("audit_leaves", "principal", KEY_LABEL),
    ],
}
ORPHAN_SHARES = [
    "DELETE FROM library_shares WHERE target_type = 'user' "
    "AND target_id NOT IN (SELECT id FROM users)",
    "DELETE FROM library_shares WHERE target_type = 'team' "
    "AND target_id NOT IN (SELECT id FROM teams)",
    "DELETE FROM library_shares WHERE target_type = 'tenant' "
    "AND target_id NOT IN (SELECT id FROM tenants)",
]


def _key_label(dialect: str, column: str) -> tuple[str, str]:
    """The key id in a `key:<id>` label, and the condition that it is one."""
    if dialect == "postgresql":
        return f"CAST(substr({column}, 5) AS BIGINT)", f"{column} ~ '^key:[0-9]{{1,18}}$'"
    return f"CAST(substr({column}, 5) AS INTEGER)", f"{column} GLOB 'key:[0-9]*'"


def _highest_mentioned(conn: sa.Connection, table: str) -> int:
    queries = [f"SELECT max(id) FROM {table}"]
    for other, column, condition in MENTIONS[table]:
        if condition == KEY_LABEL:
            column, condition = _key_label(conn.dialect.name, column)
        where = f" WHERE {condition}" if condition else ""
        queries.append(f"SELECT max({column}) FROM {other}{where}")
    found = [conn.execute(sa.text(query)).scalar() for query in queries]
    return max((int(value) for value in found if value is not None), default=0)


def _set_sqlite_sequence(conn: sa.Connection, table: str, value: int) -> None:
    params = {"name": table, "seq": value}
    done = conn.execute(
        sa.text("UPDATE sqlite_sequence SET seq = max(seq, :seq) WHERE name = :name"), params
    ).rowcount
    if not done:
        conn.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"), params
        )


def _advance_postgres_sequence(conn: sa.Connection, table: str, value: int) -> None:
    sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
    name = sequence.scalar()
    if name is None or value < 1:
        return
    conn.execute(
        sa.text(
            "SELECT setval(CAST(:s AS regclass), :v) WHERE :v > "
            "coalesce(pg_sequence_last_value(CAST(:s AS regclass)), 0)"
        ),
        {"s": name, "v": value},
    )


def upgrade() -> None:
    conn = op.get_bind()
    # Counted before any change, and before orphan shares go: they mention ids too.
    highest = {table: _highest_mentioned(conn, table) for table in MENTIONS}
    for table in MENTIONS:
        if conn.dialect.name == "sqlite":
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass
            _set_sqlite_sequence(conn, table, highest[table])
        elif conn.dialect.name == "postgresql":
            _advance_postgres_sequence(conn, table, highest[table])
    for statement in ORPHAN_SHARES:
        op.execute(statement)
