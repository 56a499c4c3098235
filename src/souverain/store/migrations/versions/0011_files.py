"""Files of the Files API (`files`, `file_chunks`).

A file belongs to one owner in one tenant (agents/store.py `Owner`); its bytes are kept
in the database in chunks of 1 MiB, so that every gateway replica sharing the database
can read a file another one received (replicas share no disk). Rows are deletable on
purpose: by their owner, by data subject for an erasure, and when they expire.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("num_lines", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("mimetype", sa.String(200), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
    )
    op.create_index("ix_files_subject", "files", ["subject"])
    op.create_index("files_owner", "files", ["tenant", "owner", "created_at"])
    op.create_table(
        "file_chunks",
        sa.Column("file_id", sa.String(64), primary_key=True),
        sa.Column("ordinal", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("file_chunks")
    op.drop_table("files")
