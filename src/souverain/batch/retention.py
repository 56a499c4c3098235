"""Finished batches go with their tenant's retention, as conversations do.

A finished batch's `jobs` row keeps the submitter's principal (label, scopes), its
metadata and the ids of its files; its ranges are rows too. Once the batch has been
finished for longer than its tenant's payload retention (`audit.payloads.<tenant>.
retention_days`, `"*"` for every tenant not named; a tenant with neither: kept), the
batch, its ranges and any answer rows left behind are deleted, at start-up and by
`souverain audit purge`. Its output and error files are files: they follow the Files
API's own expiry (`output_expires_after`), not this.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, and_, delete, select
from sqlalchemy.sql.elements import ColumnElement

from ..jobs.store import TERMINAL
from ..store.work_tables import batch_lines, jobs
from .handler import BATCH_KIND

DAY_S = 86400
CHUNK = 500  # ids per DELETE ... IN (...)


def purge_finished_batches(database: Engine, days: dict[str, int]) -> int:
    """Delete batches finished longer ago than their tenant's retention; how many."""
    now, deleted = time.time(), 0
    named = [tenant for tenant in days if tenant != "*"]
    for tenant in named:
        cutoff = now - days[tenant] * DAY_S
        deleted += _delete(database, and_(jobs.c.tenant == tenant, jobs.c.finished_at < cutoff))
    if "*" in days:
        others = jobs.c.tenant.not_in(named) if named else jobs.c.tenant.is_not(None)
        deleted += _delete(database, and_(others, jobs.c.finished_at < now - days["*"] * DAY_S))
    return deleted


def _delete(database: Engine, old: ColumnElement[bool]) -> int:
    finished = and_(jobs.c.kind == BATCH_KIND, jobs.c.parent_id.is_(None),
                    jobs.c.status.in_(TERMINAL), old)  # fmt: skip
    with database.begin() as conn:
        ids = list(conn.execute(select(jobs.c.id).where(finished)).scalars())
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            conn.execute(delete(batch_lines).where(batch_lines.c.batch_id.in_(chunk)))
            conn.execute(delete(jobs).where(jobs.c.parent_id.in_(chunk)))  # its ranges
            conn.execute(delete(jobs).where(jobs.c.id.in_(chunk)))
    return len(ids)
