"""Baseline: API keys, the kill switch, and the audit log (what releases before Alembic
created with their own migration list; on such a database each step finds its table)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from souverain.store.database import append_only_ddl

revision = "0001"
down_revision = None


def _create(name: str, *columns: sa.Column[object] | sa.Constraint) -> bool:
    if sa.inspect(op.get_bind()).has_table(name):
        return False
    op.create_table(name, *columns)
    return True


def upgrade() -> None:
    _create(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prefix", sa.String(32), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("default_classification", sa.String(64), nullable=True),
        sa.Column("max_classification", sa.String(64), nullable=True),
    )
    _create(
        "provider_cuts",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    _create(
        "provider_cut_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    if _create(
        "audit_leaves",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("principal", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    ):
        op.create_index("audit_leaves_query", "audit_leaves", ["tenant", "at"])
    _create(
        "audit_checkpoints",
        sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("peaks", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for table in ("audit_leaves", "audit_checkpoints"):
        for statement in append_only_ddl(dialect, table):
            op.execute(statement)
    _create(
        "audit_subject_keys",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    if _create(
        "audit_payloads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    ):
        op.create_index("ix_audit_payloads_seq", "audit_payloads", ["seq"])
        op.create_index("ix_audit_payloads_subject", "audit_payloads", ["subject"])
