"""Stored responses of the Responses API (`agent_responses`, agents/store.py).

`POST /v1/responses` keeps each response (unless `store` is false) so that
`previous_response_id` can continue it and `GET /v1/responses/{id}` can return it; a
row belongs to one owner in one tenant. Rows are deletable on purpose: by their owner
(`DELETE /v1/responses/{id}`), by subject for an erasure, and by age for retention.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "agent_responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("previous_id", sa.String(64), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("classification", sa.String(64), nullable=True),
        sa.Column("input_items", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_agent_responses_subject", "agent_responses", ["subject"])
    op.create_index("agent_responses_owner", "agent_responses", ["tenant", "owner"])
    op.create_index("agent_responses_created", "agent_responses", ["created_at"])
