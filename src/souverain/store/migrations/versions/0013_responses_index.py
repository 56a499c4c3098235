"""Stored responses become an index into conversations (`agent_responses`, agents/store.py).

A response chain now runs on the conversation runtime: its turns' items are entries of a
conversation (`conversation_entries`, migration 0010). A row keeps what a conversation
does not: which conversation and which of its entries the response made (`entries`,
JSON ids), and the response object without its items (`body`: instructions, settings,
status, usage). The items' own copy (`input_items`) goes.

Rows written before this migration hold their items only in the dropped column and no
conversation: they are deleted (the Responses API had not been released with them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM agent_responses"))
    with op.batch_alter_table("agent_responses") as batch:
        batch.drop_column("input_items")
        batch.add_column(sa.Column("conversation_id", sa.String(64), nullable=False))
        batch.add_column(sa.Column("entries", sa.Text, nullable=False))
    op.create_index("agent_responses_conversation", "agent_responses", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("agent_responses_conversation", table_name="agent_responses")
    with op.batch_alter_table("agent_responses") as batch:
        batch.drop_column("entries")
        batch.drop_column("conversation_id")
        batch.add_column(sa.Column("input_items", sa.Text, nullable=False, server_default="[]"))
