"""MCP connectors a tenant admin registers (`connectors`, connectors/store.py).

A connector is an MCP server the gateway may call on an agent's behalf: a streamable
HTTP URL, or (owner only) a command run on the gateway host over stdio. Its headers and
environment are secrets: kept sealed with the gateway's connector key (`secret`), never
returned nor logged. A name is unique within its tenant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "connectors",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("command", sa.Text, nullable=True),
        sa.Column("secret", sa.LargeBinary, nullable=True),
        sa.Column("secret_names", sa.Text, nullable=False, server_default="[]"),
        sa.Column("timeout_s", sa.Float, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("tenant", "name", name="connectors_tenant_name"),
    )


def downgrade() -> None:
    op.drop_table("connectors")
