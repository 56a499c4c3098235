"""Document libraries: libraries, their shares, documents and chunks with vectors, and
the keyword index (SQLite: an FTS5 table kept in step by triggers; PostgreSQL: a
tsvector column with a GIN index, filled by the application).

Vectors: SQLite keeps a float32 blob per chunk (searched in memory); PostgreSQL a
table of pgvector `vector`s beside the chunks, narrow so that the vectors stay inline
and an exact scan reads them densely (its HNSW indexes, one per dimension, are made by
the application when it first writes vectors of that dimension: library/pgvectors.py).
PostgreSQL therefore needs the pgvector extension: installed on the server, and
created here (which needs a role allowed to: the owner of the database, or a
superuser beforehand with `CREATE EXTENSION vector`)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from souverain.store.database import MigrationRefused

revision = "0003"
down_revision = "0002"

SQLITE_FTS = [
    # External content: the text lives once, in library_chunks; library_id is carried
    # (unindexed) so that the access filter applies inside the MATCH query.
    "CREATE VIRTUAL TABLE library_chunks_fts USING fts5(text, library_id UNINDEXED, "
    "content='library_chunks', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER library_chunks_fts_insert AFTER INSERT ON library_chunks BEGIN "
    "INSERT INTO library_chunks_fts(rowid, text, library_id) "
    "VALUES (new.id, new.text, new.library_id); END",
    "CREATE TRIGGER library_chunks_fts_delete AFTER DELETE ON library_chunks BEGIN "
    "INSERT INTO library_chunks_fts(library_chunks_fts, rowid, text, library_id) "
    "VALUES ('delete', old.id, old.text, old.library_id); END",
]
NO_PGVECTOR = (
    "document libraries need the pgvector extension on PostgreSQL, and this server "
    "does not have it: install it (scripts/install-pgvector.sh, or your distribution's "
    "postgresql-<version>-pgvector package), then run `souverain db upgrade` again"
)
POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE library_chunk_vectors ("
    " chunk_id integer PRIMARY KEY REFERENCES library_chunks (id) ON DELETE CASCADE,"
    " library_id varchar(36) NOT NULL, vec vector NOT NULL)",
    # Inline up to a page (~2,000 dimensions) rather than in TOAST: a scan then reads
    # each vector where its row is.
    "ALTER TABLE library_chunk_vectors ALTER COLUMN vec SET STORAGE MAIN",
    "CREATE INDEX ix_library_chunk_vectors_library_id ON library_chunk_vectors (library_id)",
    "ALTER TABLE library_chunks ADD COLUMN tsv tsvector",
    "CREATE INDEX library_chunks_tsv ON library_chunks USING gin (tsv)",
]


def upgrade() -> None:
    op.create_table(
        "libraries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("owner_type", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_by_user_id", sa.Integer, nullable=True),
        sa.Column("chunk_size", sa.Integer, nullable=True),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_libraries_tenant_id", "libraries", ["tenant_id"])
    op.create_table(
        "library_shares",
        sa.Column("library_id", sa.String(36), sa.ForeignKey("libraries.id"), primary_key=True),
        sa.Column("target_type", sa.String(16), primary_key=True),
        sa.Column("target_id", sa.Integer, primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "library_documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("library_id", sa.String(36), sa.ForeignKey("libraries.id"), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mime_type", sa.String(200), nullable=False),
        sa.Column("extension", sa.String(32), nullable=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("page_starts", sa.Text, nullable=True),
        sa.Column("number_of_pages", sa.Integer, nullable=True),
        sa.Column("chunk_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attributes", sa.Text, nullable=True),
        sa.Column("uploaded_by", sa.String(300), nullable=False),
        sa.Column("uploaded_by_user_id", sa.Integer, nullable=True),
        sa.Column("job", sa.Text, nullable=True),
        sa.Column("claimed_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("processed_at", sa.Float, nullable=True),
    )
    op.create_index("ix_library_documents_library_id", "library_documents", ["library_id"])
    op.create_index("ix_library_documents_status", "library_documents", ["status"])
    op.create_table(
        "library_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("library_id", sa.String(36), nullable=False),
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("page", sa.Integer, nullable=True),
        sa.Column("char_start", sa.Integer, nullable=False),
        sa.Column("char_end", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_library_chunks_library_id", "library_chunks", ["library_id"])
    op.create_index("ix_library_chunks_document_id", "library_chunks", ["document_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        available = "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
        if bind.execute(sa.text(available)).first() is None:
            raise MigrationRefused(NO_PGVECTOR)
    for statement in {"sqlite": SQLITE_FTS, "postgresql": POSTGRES}.get(bind.dialect.name, []):
        op.execute(statement)
