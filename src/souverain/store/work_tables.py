"""What agents and background work keep (SQLAlchemy Core), on the `metadata` of
tables.py: stored responses, MCP connectors, agents, conversations, files, jobs and
batch lines. Migrations live in `migrations/versions`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from .tables import metadata

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
