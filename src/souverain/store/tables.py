"""The gateway's own tables (SQLAlchemy Core): identity, usage, the audit log, libraries.

What agents and background work keep (responses, connectors, agents, conversations,
files, jobs) is in work_tables.py, on the same `metadata`. Migrations live in
`migrations/versions`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)

metadata = MetaData()
# The largest id an `Integer` id column holds (32-bit on PostgreSQL): a larger one names
# nothing, and must be refused before it reaches a query (PostgreSQL errors on it).
MAX_ID = 2**31 - 1


def limit_columns() -> list[Column[Any]]:
    """Quotas any tenant, team, user or key may carry (NULL: no limit at that level)."""
    return [
        Column("rpm", Integer, nullable=True),  # requests per minute
        Column("tpm", Integer, nullable=True),  # tokens per minute
        Column("max_concurrency", Integer, nullable=True),  # requests in flight
        Column("budget_tokens", BigInteger, nullable=True),  # per budget_period
        Column("budget_cost", Float, nullable=True),  # in the configured currency
        Column("budget_period", String(8), nullable=False, server_default="month"),
    ]


# Identity (identity/): tenants -> teams -> users and service accounts -> API keys.
# Their ids are never reused (SQLite: AUTOINCREMENT, m0004; PostgreSQL: sequences): shares,
# library creators, usage rows, quota counters and audit leaves name them by id, and a new
# user must not inherit what a deleted one was given.
tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    *limit_columns(),
    sqlite_autoincrement=True,
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
    *limit_columns(),
    UniqueConstraint("tenant_id", "name"),
    sqlite_autoincrement=True,
)

users = Table(  # people and service accounts (kind)
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # user, service
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", Float, nullable=False),
    *limit_columns(),
    UniqueConstraint("tenant_id", "name"),
    sqlite_autoincrement=True,
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prefix", String(32), nullable=False, unique=True),  # not secret: the lookup key
    # HMAC-SHA256(pepper, whole key): what a key is looked up by (unique index, m0002).
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),  # never above its user's role (least wins)
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("revoked", Boolean, nullable=False, default=False),
    # Classification scopes (policy): the level assumed for this key's requests, and the
    # highest it may send at all. NULL: the policy's default, and no ceiling.
    Column("default_classification", String(64), nullable=True),
    Column("max_classification", String(64), nullable=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=True),  # NULL: default
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),  # owner
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=True),  # billed to
    Column("expires_at", Float, nullable=True),
    Column("models", Text, nullable=True),  # JSON list of model ids; NULL: all
    Column("endpoints", Text, nullable=True),  # JSON list of endpoint kinds; NULL: all
    *limit_columns(),
    # The non-admin key that minted this one: its limits count this key's use too, and
    # this key dies with it (identity/minting.py, m0006). NULL: minted by an admin or a token.
    Column("parent_id", Integer, nullable=True),
    sqlite_autoincrement=True,
)
Index("api_keys_parent", api_keys.c.parent_id)

# One row per model call, whatever its outcome: what quotas' budgets start from and
# what `GET /admin/v1/usage` aggregates. Names, not ids, so rows outlive renames.
usage = Table(
    "usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("day", String(10), nullable=False),  # UTC YYYY-MM-DD, for grouping
    Column("tenant", String(100), nullable=False),
    Column("team", String(100), nullable=True),
    Column("tenant_id", Integer, nullable=True),
    Column("team_id", Integer, nullable=True),
    Column("user_id", Integer, nullable=True),
    Column("key_id", Integer, nullable=True),
    Column("principal", String(300), nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("model", String(200), nullable=True),
    Column("deployment", String(200), nullable=True),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("status", Integer, nullable=False),
    Column("outcome", String(64), nullable=False),
)
Index("usage_tenant_at", usage.c.tenant, usage.c.at)
Index("usage_key_at", usage.c.key_id, usage.c.at)

provider_cuts = Table(
    "provider_cuts",
    metadata,
    Column("kind", String(16), primary_key=True),  # deployment, operator, jurisdiction
    Column("value", String(200), primary_key=True),
    Column("actor", String(200), nullable=False),
    Column("at", Float, nullable=False),
)

provider_cut_events = Table(  # who cut or restored what, and when; never updated
    "provider_cut_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", String(200), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", Float, nullable=False),
)

# The tamper-evident audit log (audit/). Leaves and checkpoints are append-only: the
# database refuses UPDATE and DELETE on them (triggers, see m004).
audit_leaves = Table(
    "audit_leaves",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),  # gap-free, from 0
    Column("at", Float, nullable=False),
    Column("tenant", String(200), nullable=False),
    Column("principal", String(200), nullable=True),
    Column("kind", String(32), nullable=False),  # request, admin, tombstone
    Column("model", String(200), nullable=True),
    Column("outcome", String(64), nullable=True),
    Column("data", Text, nullable=False),  # canonical JSON: the bytes that are hashed
    Column("leaf_hash", LargeBinary(32), nullable=False),
)
Index("audit_leaves_query", audit_leaves.c.tenant, audit_leaves.c.at)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("peaks", Text, nullable=False),  # the compact range at this size, to continue from
    Column("note", Text, nullable=False),  # C2SP signed note
    Column("at", Float, nullable=False),
)

APPEND_ONLY = ("audit_leaves", "audit_checkpoints")

# Retained request/response bodies, encrypted per data subject (audit/payloads.py). These
# rows are deletable on purpose: erasure destroys the subject's key and ciphertexts.
audit_subject_keys = Table(
    "audit_subject_keys",
    metadata,
    Column("subject", String(64), primary_key=True),  # keyed pseudonym, never the raw id
    Column("wrapped_key", LargeBinary, nullable=False),  # AES-GCM under the master key
    Column("at", Float, nullable=False),
)

audit_payloads = Table(
    "audit_payloads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", Integer, nullable=False, index=True),  # the leaf that references it
    Column("tenant", String(200), nullable=False),
    Column("subject", String(64), nullable=False, index=True),
    Column("ciphertext", LargeBinary, nullable=False),  # nonce || AES-GCM(data key, body)
    Column("at", Float, nullable=False),
)

# Document libraries (library/): a library belongs to a tenant; documents keep their
# original bytes (to reprocess) and extracted text; chunks carry provenance and a unit
# vector: a float32 blob on SQLite (`embedding`), a row of `library_chunk_vectors`
# (pgvector) on PostgreSQL. Keyword search: an FTS5 table on SQLite, a tsvector column on
# PostgreSQL. Those are made by migration 0003, outside this metadata. Ids are never
# reused (AUTOINCREMENT): the in-memory vector cache of SQLite relies on it.
libraries = Table(
    "libraries",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid4
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("owner_type", String(16), nullable=False),  # User, Workspace (Mistral's words)
    Column("created_by", String(300), nullable=False),  # the creator's principal label
    Column("created_by_user_id", Integer, nullable=True),
    Column("chunk_size", Integer, nullable=True),  # NULL: libraries.chunk_chars
    Column("embedding_model", String(200), nullable=False),
    Column("revision", Integer, nullable=False, server_default="0"),  # bumped on chunk changes
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

library_shares = Table(
    "library_shares",
    metadata,
    Column("library_id", String(36), ForeignKey("libraries.id"), primary_key=True),
    Column("target_type", String(16), primary_key=True),  # user, team, tenant
    Column("target_id", Integer, primary_key=True),
    Column("level", String(16), nullable=False),  # viewer, editor
    Column("created_by", String(300), nullable=False),
    Column("created_at", Float, nullable=False),
)

library_documents = Table(
    "library_documents",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid4
    Column("library_id", String(36), ForeignKey("libraries.id"), nullable=False, index=True),
    Column("name", String(500), nullable=False),
    Column("kind", String(16), nullable=False),  # pdf, docx, html, markdown, text, image
    Column("mime_type", String(200), nullable=False),
    Column("extension", String(32), nullable=True),
    Column("size", Integer, nullable=False),
    Column("hash", String(64), nullable=False),  # sha256 of the bytes
    Column("content", LargeBinary, nullable=True),  # the original, kept to reprocess
    Column("status", String(32), nullable=False, index=True),  # todo, in_progress, done, error
    Column("error", Text, nullable=True),
    Column("text", Text, nullable=True),  # extracted, pages joined by a blank line
    Column("page_starts", Text, nullable=True),  # JSON: offset of each page in `text`
    Column("number_of_pages", Integer, nullable=True),
    Column("chunk_count", Integer, nullable=False, server_default="0"),
    Column("tokens", Integer, nullable=False, server_default="0"),  # embedded
    Column("attributes", Text, nullable=True),  # JSON, set by the caller
    Column("uploaded_by", String(300), nullable=False),
    Column("uploaded_by_user_id", Integer, nullable=True),
    Column("job", Text, nullable=True),  # id of its library.ingest job (migration 0015)
    Column("claimed_at", Float, nullable=True),  # unused since 0015: the job holds the lease
    Column("attempts", Integer, nullable=False, server_default="0"),  # its job's claims
    Column("created_at", Float, nullable=False),
    Column("processed_at", Float, nullable=True),
)

library_chunks = Table(
    "library_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("library_id", String(36), nullable=False, index=True),
    Column("document_id", String(36), nullable=False, index=True),
    Column("ordinal", Integer, nullable=False),
    Column("page", Integer, nullable=True),  # 1-based; NULL for formats without pages
    Column("char_start", Integer, nullable=False),  # in the document's text
    Column("char_end", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("embedding", LargeBinary, nullable=True),  # SQLite's float32 vector
    sqlite_autoincrement=True,
)
