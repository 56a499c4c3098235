"""The `jobs` table: background work claimed with leases (synchronous: callers use a thread).

A job's life: `queued` → `running` (one replica holds its lease and renews it) →
`succeeded`, `failed`, `cancelled` or `expired`. A job may also wait for its children
(`waiting`): it is claimable again once none of them is left unfinished, with the stage
its handler set (a batch: validating → in_progress → finalizing).

Claiming is one conditional UPDATE that names the row's status and attempt count as they
were read: on PostgreSQL a concurrent claimer's UPDATE re-reads the row after the first
commits and matches nothing; on SQLite writes are serialised. A running job whose lease
expired (its replica died) is claimable again; every claim counts an attempt.
Cancellation is a flag on the job and its children, read back by the lease renewal.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, exists, func, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from ..store.work_tables import jobs

TERMINAL = ("succeeded", "failed", "cancelled", "expired")
UNFINISHED = ("queued", "running", "waiting")


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job as read from its row; `payload` and `result` are parsed JSON."""

    id: str
    kind: str
    parent_id: str | None
    tenant: str
    owner: str
    principal: dict[str, Any]
    status: str
    stage: str | None
    payload: dict[str, Any]
    result: dict[str, Any]
    attempts: int
    cancel_requested: bool
    expires_at: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    updated_at: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class NewJob:
    kind: str
    tenant: str
    owner: str
    principal: dict[str, Any]
    payload: dict[str, Any]
    stage: str | None = None
    tenant_id: int | None = None
    expires_at: float | None = None
    parent_id: str | None = None
    id: str | None = None


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- creating and reading ---------------------------------------------------------------

    def create(self, job: NewJob, conn: Any = None) -> str:
        if conn is None:
            with self.engine.begin() as own:
                return self.create(job, own)
        job_id = job.id or f"job_{uuid.uuid4().hex}"
        now = time.time()
        conn.execute(
            insert(jobs).values(
                id=job_id,
                kind=job.kind,
                parent_id=job.parent_id,
                tenant=job.tenant,
                tenant_id=job.tenant_id,
                owner=job.owner,
                principal=json.dumps(job.principal),
                status="queued",
                stage=job.stage,
                payload=json.dumps(job.payload),
                result="{}",
                attempts=0,
                cancel_requested=False,
                expires_at=job.expires_at,
                created_at=now,
                updated_at=now,
            )
        )
        return job_id

    def get(self, job_id: str) -> JobRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return _row(row) if row is not None else None

    def children_unfinished(self, job_id: str) -> int:
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.parent_id == job_id, jobs.c.status.in_(UNFINISHED))
            ).scalar_one()
        return int(count)

    def children(self, job_id: str) -> list[JobRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(jobs).where(jobs.c.parent_id == job_id).order_by(jobs.c.created_at)
            ).all()
        return [_row(row) for row in rows]

    def owned(
        self,
        kind: str,
        tenant: str,
        owner: str,
        *,
        before: float | None = None,
        offset: int = 0,
        limit: int = 20,
        oldest_first: bool = False,
    ) -> tuple[list[JobRow], int]:
        """An owner's jobs of one kind, newest first, and how many there are in all."""
        mine = and_(jobs.c.kind == kind, jobs.c.tenant == tenant, jobs.c.owner == owner)
        page = mine if before is None else and_(mine, jobs.c.created_at < before)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(jobs).where(mine)).scalar_one()
            rows = conn.execute(
                select(jobs).where(page).order_by(*_order(oldest_first)).offset(offset).limit(limit)
            ).all()
        return [_row(row) for row in rows], int(total)

    # ---- leases --------------------------------------------------------------------------------

    def claim(self, kinds: Sequence[str], replica: str, lease_s: float) -> JobRow | None:
        """Take one job of these kinds (oldest first): queued, abandoned by a dead replica,
        or waiting with all its children finished. None when there is nothing to take."""
        now = time.time()
        takeable = _takeable(now)
        with self.engine.connect() as conn:
            seen = conn.execute(
                select(jobs.c.id, jobs.c.status, jobs.c.attempts)
                .where(jobs.c.kind.in_(list(kinds)), takeable)
                .order_by(jobs.c.created_at)
                .limit(8)
            ).all()
        for candidate in seen:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    update(jobs)
                    .where(
                        jobs.c.id == candidate.id,
                        jobs.c.status == candidate.status,
                        jobs.c.attempts == candidate.attempts,
                        takeable,
                    )
                    .values(
                        status="running",
                        lease_owner=replica,
                        lease_expires_at=now + lease_s,
                        attempts=candidate.attempts + 1,
                        started_at=func.coalesce(jobs.c.started_at, now),
                        updated_at=now,
                    )
                ).rowcount
                if taken:
                    row = conn.execute(select(jobs).where(jobs.c.id == candidate.id)).first()
                    assert row is not None
                    return _row(row)
        return None

    def renew(
        self, job_ids: Sequence[str], replica: str, lease_s: float
    ) -> tuple[set[str], set[str]]:
        """Extend this replica's leases; answers (lost, cancel_requested) among `job_ids`:
        lost ones are no longer this replica's (taken over after a stall, or finished)."""
        if not job_ids:
            return set(), set()
        now = time.time()
        ids = list(job_ids)
        mine = and_(jobs.c.id.in_(ids), jobs.c.lease_owner == replica, jobs.c.status == "running")
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(mine).values(lease_expires_at=now + lease_s))
            rows = conn.execute(select(jobs.c.id, jobs.c.cancel_requested).where(mine)).all()
        held = {row.id for row in rows}
        cancelled = {row.id for row in rows if row.cancel_requested}
        return set(ids) - held, cancelled

    def release(self, job_ids: Sequence[str], replica: str) -> None:
        """Give back jobs at shutdown: claimable at once, the interrupted attempt uncounted."""
        if not job_ids:
            return
        earlier = (
            func.max(jobs.c.attempts - 1, 0)
            if self._sqlite
            else func.greatest(jobs.c.attempts - 1, 0)
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(
                    jobs.c.id.in_(list(job_ids)),
                    jobs.c.lease_owner == replica,
                    jobs.c.status == "running",
                )
                .values(lease_expires_at=0.0, lease_owner=None, attempts=earlier)
            )

    # ---- moving a held job on ----------------------------------------------------------------

    def wait_for_children(
        self,
        job_id: str,
        replica: str,
        stage: str,
        children: Sequence[NewJob],
        result: dict[str, Any] | None = None,
    ) -> bool:
        """Create the children and park the job until they are all finished, in one
        transaction; False (and nothing written) if this replica no longer holds it."""
        now = time.time()
        with self.engine.begin() as conn:
            values: dict[str, Any] = {
                "status": "waiting", "stage": stage, "lease_owner": None,
                "lease_expires_at": None, "attempts": 0, "updated_at": now,
            }  # fmt: skip
            if result is not None:
                values["result"] = json.dumps(result)
            parked = conn.execute(
                update(jobs).where(_held(job_id, replica)).values(**values)
            ).rowcount
            if not parked:
                return False
            for child in children:
                self.create(child, conn)
        return True

    def update_held(
        self, job_id: str, replica: str, *, stage: str | None = None, result: dict[str, Any]
    ) -> bool:
        values: dict[str, Any] = {"result": json.dumps(result), "updated_at": time.time()}
        if stage is not None:
            values["stage"] = stage
        with self.engine.begin() as conn:
            return bool(
                conn.execute(update(jobs).where(_held(job_id, replica)).values(**values)).rowcount
            )

    def finish(
        self,
        job_id: str,
        replica: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """A held job ends with `status`; False if another replica holds it now."""
        assert status in TERMINAL
        now = time.time()
        values: dict[str, Any] = {
            "status": status, "lease_owner": None, "lease_expires_at": None,
            "finished_at": now, "updated_at": now, "error": error,
        }  # fmt: skip
        if result is not None:
            values["result"] = json.dumps(result)
        with self.engine.begin() as conn:
            return bool(
                conn.execute(update(jobs).where(_held(job_id, replica)).values(**values)).rowcount
            )

    def retry(self, job_id: str, replica: str, error: str) -> bool:
        """Queue a held job again with the reason (its handler's unit failed in a way that
        another try may not): its attempt counts. False if this replica lost it."""
        values = {"status": "queued", "lease_owner": None, "lease_expires_at": None,
                  "error": error[:2000], "updated_at": time.time()}  # fmt: skip
        with self.engine.begin() as conn:
            return bool(
                conn.execute(update(jobs).where(_held(job_id, replica)).values(**values)).rowcount
            )

    def request_cancel(self, job_id: str, conn: Any = None) -> None:
        """Flag a job and its children; those not yet started end at once (in `conn`'s
        transaction when given)."""
        if conn is None:
            with self.engine.begin() as own:
                return self.request_cancel(job_id, own)
        now = time.time()
        family = or_(jobs.c.id == job_id, jobs.c.parent_id == job_id)
        conn.execute(
            update(jobs)
            .where(family, jobs.c.status.in_(UNFINISHED))
            .values(cancel_requested=True, updated_at=now)
        )
        conn.execute(
            update(jobs)
            .where(jobs.c.parent_id == job_id, jobs.c.status == "queued")
            .values(status="cancelled", finished_at=now)
        )

    @property
    def _sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"


def _order(oldest_first: bool) -> tuple[Any, Any]:
    if oldest_first:
        return jobs.c.created_at.asc(), jobs.c.id.asc()
    return jobs.c.created_at.desc(), jobs.c.id.desc()


def _held(job_id: str, replica: str) -> ColumnElement[bool]:
    return and_(jobs.c.id == job_id, jobs.c.lease_owner == replica, jobs.c.status == "running")


def _takeable(now: float) -> ColumnElement[bool]:
    children = jobs.alias("children")
    pending_child = exists().where(
        children.c.parent_id == jobs.c.id, children.c.status.in_(UNFINISHED)
    )
    return or_(
        jobs.c.status == "queued",
        and_(jobs.c.status == "running", jobs.c.lease_expires_at < now),
        and_(jobs.c.status == "waiting", ~pending_child),
    )


def _row(row: Any) -> JobRow:
    return JobRow(
        id=row.id,
        kind=row.kind,
        parent_id=row.parent_id,
        tenant=row.tenant,
        owner=row.owner,
        principal=json.loads(row.principal),
        status=row.status,
        stage=row.stage,
        payload=json.loads(row.payload),
        result=json.loads(row.result or "{}"),
        attempts=row.attempts,
        cancel_requested=bool(row.cancel_requested),
        expires_at=row.expires_at,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        updated_at=row.updated_at,
    )
