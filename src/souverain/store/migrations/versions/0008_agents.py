"""Agents of the Agents API (`agents`, `agent_versions`, `agent_aliases`; agents/registry.py).

`POST /v1/agents` registers an agent for a tenant; every update writes a new immutable
version (so a conversation can name the exact version it ran), and aliases name a version
for deployments ("prod" -> 3). Agents are tenant-wide: the tenant column scopes every read.
Deleting an agent deletes its versions and aliases with it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("agents_tenant", "agents", ["tenant", "created_at"])
    op.create_table(
        "agent_versions",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "agent_aliases",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_aliases")
    op.drop_table("agent_versions")
    op.drop_index("agents_tenant", table_name="agents")
    op.drop_table("agents")
