"""Conversations of the Conversations API (`conversations`, `conversation_entries`).

A conversation belongs to one owner in one tenant (agents/store.py `Owner`), like a
stored response; its entries (messages, function calls and results, tool executions,
handoffs) are kept in order. `classification` is sticky: the highest level any of its
turns, tool results or library sources reached; every later model step claims it.
`pending` holds the tool calls waiting for a person's approval. Rows are deletable on
purpose: by their owner, by data subject for an erasure, and by age for retention.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("agent_version", sa.Integer, nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("classification", sa.String(64), nullable=True),
        sa.Column("pending", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_conversations_subject", "conversations", ["subject"])
    op.create_index("conversations_owner", "conversations", ["tenant", "owner"])
    op.create_index("conversations_updated", "conversations", ["updated_at"])
    op.create_table(
        "conversation_entries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "conversation_entries_order",
        "conversation_entries",
        ["conversation_id", "ordinal"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("conversation_entries")
    op.drop_table("conversations")
