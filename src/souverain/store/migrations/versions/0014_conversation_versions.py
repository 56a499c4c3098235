"""Conversations get a version (agents/conversation_writes.py, conversation_cache.py).

`version` is bumped by every write of a conversation: a turn's write is a conditional
update on the version it read (a concurrent turn's write is merged, never overwritten),
and a replica's cached history is checked against it. `entry_count` is the next entry's
ordinal (a turn appends without reading the entries back); `rewritten` is the version
at which an old entry last changed (a call's confirmation status), so a cached copy
older than that is read again whole. Existing rows get their count from their entries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    for name in ("version", "entry_count", "rewritten"):
        op.add_column(
            "conversations", sa.Column(name, sa.Integer, nullable=False, server_default="0")
        )
    op.execute(
        sa.text(
            "UPDATE conversations SET version = 1, entry_count = (SELECT "
            "COALESCE(MAX(conversation_entries.ordinal) + 1, 0) FROM conversation_entries "
            "WHERE conversation_entries.conversation_id = conversations.id)"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        for name in ("rewritten", "entry_count", "version"):
            batch.drop_column(name)
