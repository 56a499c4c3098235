"""The library ingest worker becomes a job kind: waiting documents get their jobs.

Before, the ingest worker claimed documents itself (`library_documents.status` with
`claimed_at` as a lease) and kept who processes one in `job` (JSON: the principal and
its claims). Now a `library.ingest` job in `jobs` (migration 0012) holds the lease, and
`job` is the id of the document's job. Each document still waiting (`todo`, or
`in_progress`: left by a server that stopped while processing it) gets a queued job
carrying its principal, claims and attempts so far, so an upgraded server processes
what was waiting and still gives up after `libraries.limits.max_attempts`. One whose
principal cannot be read is `error`, as the old sweep did. `claimed_at` is no longer
written.
"""

from __future__ import annotations

import json
import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"

NOBODY = "nobody to process it as: upload it again"

documents = sa.table(
    "library_documents",
    sa.column("id", sa.String),
    sa.column("status", sa.String),
    sa.column("error", sa.Text),
    sa.column("job", sa.Text),
    sa.column("attempts", sa.Integer),
    sa.column("created_at", sa.Float),
    sa.column("processed_at", sa.Float),
)
jobs = sa.table(
    "jobs",
    sa.column("id", sa.String),
    sa.column("kind", sa.String),
    sa.column("tenant", sa.String),
    sa.column("tenant_id", sa.Integer),
    sa.column("owner", sa.String),
    sa.column("principal", sa.Text),
    sa.column("status", sa.String),
    sa.column("payload", sa.Text),
    sa.column("result", sa.Text),
    sa.column("attempts", sa.Integer),
    sa.column("cancel_requested", sa.Boolean),
    sa.column("created_at", sa.Float),
    sa.column("updated_at", sa.Float),
)


def upgrade() -> None:
    conn = op.get_bind()
    waiting = conn.execute(
        sa.select(documents.c.id, documents.c.job, documents.c.attempts, documents.c.created_at)
        .where(documents.c.status.in_(("todo", "in_progress")))
        .order_by(documents.c.created_at)
    ).all()
    now = time.time()
    for row in waiting:
        who = _who(row.job)
        mine = documents.c.id == row.id
        if who is None:
            conn.execute(
                sa.update(documents)
                .where(mine)
                .values(status="error", error=NOBODY, processed_at=now, job=None)
            )
            continue
        principal, claims = who
        job_id = f"job_{uuid.uuid4().hex}"
        conn.execute(
            sa.insert(jobs).values(
                id=job_id,
                kind="library.ingest",
                tenant=principal["tenant"],
                tenant_id=principal.get("tenant_id"),
                owner=principal["subject"],
                principal=json.dumps(principal),
                status="queued",
                payload=json.dumps({"document": row.id, "claims": claims}),
                result="{}",
                attempts=row.attempts or 0,
                cancel_requested=False,
                created_at=row.created_at,  # the oldest upload is processed first
                updated_at=now,
            )
        )
        conn.execute(sa.update(documents).where(mine).values(status="todo", job=job_id))


def _who(stored: str | None) -> tuple[dict[str, object], list[object]] | None:
    """The principal and claims the old worker kept, if they can be read."""
    try:
        data = json.loads(stored or "")
        principal = data["principal"]
        if not isinstance(principal, dict) or not principal.get("tenant"):
            return None
        if not principal.get("subject"):
            return None
        return principal, list(data.get("claims") or ())
    except (ValueError, KeyError, TypeError):
        return None


def downgrade() -> None:
    """Waiting documents go back to the worker's own queue (their principal from the job);
    the ingest jobs are dropped."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(jobs.c.id, jobs.c.principal, jobs.c.payload).where(
            jobs.c.kind == "library.ingest", jobs.c.status.in_(("queued", "running"))
        )
    ).all()
    for row in rows:
        payload = json.loads(row.payload)
        old = {"principal": json.loads(row.principal), "claims": payload.get("claims") or []}
        conn.execute(
            sa.update(documents)
            .where(documents.c.id == payload["document"], documents.c.job == row.id)
            .values(status="todo", job=json.dumps(old))
        )
    conn.execute(sa.delete(jobs).where(jobs.c.kind == "library.ingest"))
    conn.execute(
        sa.update(documents)
        .where(documents.c.status.in_(("done", "error", "missing_content")))
        .values(job=None)
    )
