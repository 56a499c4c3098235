"""Every table, in one place (SQLAlchemy Core). Migrations live in `migrations/versions`."""

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

# Stored responses of the Responses API (agents/store.py, migrations 0007 and 0013): an
# index into the conversation each response chain runs in. One row per response created
# with `store`, readable only by its owner in its tenant: which conversation holds it and
# which of its entries it made (`entries`, JSON ids), and the response object without its
# items (`body`). A chain (`previous_response_id`) is followed through `previous_id`.
# `subject` is the SHA-256 of the data subject (the request's `user`, else
# `metadata.subject`, else the key), so that an erasure can find every row of one person.
# `classification` is the conversation's level once the response was made.
agent_responses = Table(
    "agent_responses",
    metadata,
    Column("id", String(64), primary_key=True),  # resp_…
    Column("tenant", String(100), nullable=False),
    Column("tenant_id", Integer, nullable=True),
    Column("owner", String(300), nullable=False),  # user:ID, else the key's label
    Column("subject", String(64), nullable=False, index=True),
    Column("previous_id", String(64), nullable=True),
    Column("model", String(200), nullable=False),
    Column("classification", String(64), nullable=True),
    Column("body", Text, nullable=False),  # JSON: the response object, `output` empty
    Column("created_at", Float, nullable=False),
    Column("conversation_id", String(64), nullable=False),  # conv_…
    Column("entries", Text, nullable=False),  # JSON: ids of its input and output entries
)
Index("agent_responses_owner", agent_responses.c.tenant, agent_responses.c.owner)
Index("agent_responses_created", agent_responses.c.created_at)
Index("agent_responses_conversation", agent_responses.c.conversation_id)

# MCP connectors (issue 14, H5: connectors/store.py, migration 0009): MCP servers a tenant
# admin registers for agents to call. `transport` is http (`url`, streamable HTTP) or
# stdio (`command`: JSON [program, *args], owner only: it runs on the gateway host).
# `secret` holds the headers and environment, sealed with the gateway's connector key;
# `secret_names` lists only their names (JSON), so an admin sees what is set, never values.
connectors = Table(
    "connectors",
    metadata,
    Column("id", String(64), primary_key=True),  # conn_…
    Column("tenant", String(100), nullable=False),
    Column("tenant_id", Integer, nullable=True),
    Column("name", String(64), nullable=False),
    Column("transport", String(8), nullable=False),  # http, stdio
    Column("url", Text, nullable=True),
    Column("command", Text, nullable=True),
    Column("secret", LargeBinary, nullable=True),
    Column("secret_names", Text, nullable=False, server_default="[]"),
    Column("timeout_s", Float, nullable=False),
    Column("description", Text, nullable=True),
    Column("created_by", String(300), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("tenant", "name", name="connectors_tenant_name"),
)

# Agents of the Agents API (issue 14, H4: agents/registry.py, migration 0008). An agent is
# tenant-wide; each update writes a new immutable version (`body`: JSON of the agent's
# fields at that version), `current_version` is the one used when none is named, and an
# alias names a version ("prod" -> 3). Deleting an agent deletes its versions and aliases.
agents = Table(
    "agents",
    metadata,
    Column("id", String(64), primary_key=True),  # ag_…
    Column("tenant", String(100), nullable=False),
    Column("tenant_id", Integer, nullable=True),
    Column("name", String(200), nullable=False),
    Column("current_version", Integer, nullable=False),
    Column("created_by", String(300), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("agents_tenant", agents.c.tenant, agents.c.created_at)

agent_versions = Table(
    "agent_versions",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", Text, nullable=False),  # JSON: the agent's fields at this version
    Column("created_by", String(300), nullable=False),
    Column("created_at", Float, nullable=False),
)

agent_aliases = Table(
    "agent_aliases",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Issue 14, conversations (agents/conversation_store.py, migration 0010): one row per
# conversation of the Conversations API, readable only by its owner in its tenant, and its
# entries in order. `classification` is sticky (the highest level any turn, tool result or
# library source reached: a claim on every later model step); `pending` holds the tool
# calls waiting for approval (JSON). `subject` is the SHA-256 of the data subject, for
# erasure; `settings` (JSON) the model, instructions, tools and completion args of a
# conversation started without an agent, and its name, description and metadata.
conversations = Table(
    "conversations",
    metadata,
    Column("id", String(64), primary_key=True),  # conv_…
    Column("tenant", String(100), nullable=False),
    Column("tenant_id", Integer, nullable=True),
    Column("owner", String(300), nullable=False),  # user:ID, else the key's label
    Column("subject", String(64), nullable=False, index=True),
    Column("agent_id", String(64), nullable=True),  # the agent now answering (handoffs)
    Column("agent_version", Integer, nullable=True),
    Column("model", String(200), nullable=True),
    Column("settings", Text, nullable=False),
    Column("classification", String(64), nullable=True),
    Column("pending", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # Migration 0014 (agents/conversation_writes.py): bumped by every write, so a turn's
    # write is conditional on the version it read and a cached history is checked by it;
    # `entry_count` is the next entry's ordinal; `rewritten` the version at which an old
    # entry (a call's confirmation status) last changed.
    Column("version", Integer, nullable=False, server_default="0"),
    Column("entry_count", Integer, nullable=False, server_default="0"),
    Column("rewritten", Integer, nullable=False, server_default="0"),
)
Index("conversations_owner", conversations.c.tenant, conversations.c.owner)
Index("conversations_updated", conversations.c.updated_at)

conversation_entries = Table(
    "conversation_entries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("conversation_id", String(64), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("type", String(32), nullable=False),  # message.input, function.call, ...
    Column("body", Text, nullable=False),  # JSON: the entry as returned
    Column("created_at", Float, nullable=False),
)
Index(
    "conversation_entries_order",
    conversation_entries.c.conversation_id,
    conversation_entries.c.ordinal,
    unique=True,
)

# Files (`/v1/files`, files/store.py): one row each, scoped to its owner in its tenant;
# the bytes in `file_chunks` so that every replica reads them (no shared disk).
files = Table(
    "files",
    metadata,
    Column("id", String(64), primary_key=True),  # file-…
    Column("tenant", String(100), nullable=False),
    Column("tenant_id", Integer, nullable=True),
    Column("owner", String(300), nullable=False),  # user:ID, else the key's label
    Column("subject", String(64), nullable=False, index=True),  # sha256 of the label
    Column("purpose", String(32), nullable=False),
    Column("filename", String(300), nullable=False),  # sanitised (files/names.py)
    Column("bytes", BigInteger, nullable=False),
    Column("num_lines", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("mimetype", String(200), nullable=True),
    Column("source", String(16), nullable=False),  # upload, or gateway (batch results)
    Column("chunk_count", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
)
Index("files_owner", files.c.tenant, files.c.owner, files.c.created_at)

file_chunks = Table(
    "file_chunks",
    metadata,
    Column("file_id", String(64), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),  # files/store.py CHUNK_BYTES at most
)

# Issue 15, background jobs (jobs/store.py, migration 0012): one row per job of any kind
# (a batch, a range of a batch's lines), claimed by one replica at a time with a lease
# (`lease_owner` until `lease_expires_at`) that it renews; an expired lease means its
# replica died and the job is claimable again. `principal` (JSON) is who the work runs
# as; `payload` what to do, `result` what it produced so far (JSON). A job with children
# (`parent_id`) waits (`waiting`) until they are all finished.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("parent_id", String(64), nullable=True, index=True),
    Column("tenant", String(100), nullable=False),
    Column("tenant_id", Integer, nullable=True),
    Column("owner", String(300), nullable=False),
    Column("principal", Text, nullable=False),
    Column("status", String(16), nullable=False),  # queued running waiting + terminal
    Column("stage", String(32), nullable=True),  # the handler's own step
    Column("payload", Text, nullable=False),
    Column("result", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("expires_at", Float, nullable=True),  # a batch's completion window
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("error", Text, nullable=True),
)
Index("jobs_claimable", jobs.c.status, jobs.c.kind, jobs.c.created_at)
Index("jobs_owner", jobs.c.tenant, jobs.c.owner, jobs.c.created_at)

# Each batch line's answer, written once (batch/lines.py): the primary key makes a line
# redone after a crash or a lost lease add nothing. `line` is the request's place in the
# batch (0-based); `body` the output or error file's JSON line.
batch_lines = Table(
    "batch_lines",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("failed", Boolean, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
