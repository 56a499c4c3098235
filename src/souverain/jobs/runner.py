"""The job runner: each replica claims jobs from the database and runs their handlers.

Every `poll_s` (or at once when nudged) the runner claims jobs up to `workers` at a time
and gives each to the handler registered for its kind. While a job runs, its lease is
renewed every `check_s` (at most a third of `lease_s`); the same renewal reads the
job's cancellation flag and notices a lease that was lost (a stall long enough for
another replica to take it over), and tells the handler through its `JobControl`. A
handler that raises fails its job. At shutdown the running jobs are interrupted and
their leases given back, so the next replica (or this one restarted) resumes them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .settings import JobsConfig
from .store import JobRow, JobStore

log = logging.getLogger("souverain.jobs")


@dataclass(slots=True)
class JobControl:
    """What a running handler reads: whether to stop, and who it is."""

    replica: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def stopping(self) -> bool:
        return self.cancel.is_set() or self.lost.is_set()


class JobHandler(Protocol):
    """Runs one kind of job. It ends the job itself (JobStore.finish, wait_for_children);
    raising fails it.

    Optional attributes a handler may set: `concurrency` (at most this many jobs of its
    kind at once in a replica) and `counts_attempts` (True: the handler itself gives up a
    job claimed too often, with its own setting and message, instead of the runner
    failing it after `jobs.max_attempts`)."""

    async def run(self, job: JobRow, control: JobControl) -> None: ...


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, JobHandler],
        config: JobsConfig,
        replica: str | None = None,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.config = config
        self.replica = replica or f"replica-{uuid.uuid4().hex[:12]}"
        self._running: dict[str, tuple[asyncio.Task[None], JobControl]] = {}
        self._kinds: dict[str, str] = {}  # running job -> its kind
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._poll(), name="jobs-poll"))
        self._tasks.append(asyncio.create_task(self._renew(), name="jobs-leases"))

    def nudge(self) -> None:
        """Look for work now (a job was just created here)."""
        self._wake.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        running = list(self._running)
        for task, _ in list(self._running.values()):
            task.cancel()
        for task in [*self._tasks, *(t for t, _ in self._running.values())]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        try:
            await asyncio.to_thread(self.store.release, running, self.replica)
        except Exception:
            log.exception("jobs: could not give back the running jobs")

    # ---- tasks ----------------------------------------------------------------------------------

    def _claimable_kinds(self) -> list[str]:
        """The kinds with a free slot here (a handler's `concurrency`, if it sets one)."""
        free = []
        for kind, handler in sorted(self.handlers.items()):
            limit = getattr(handler, "concurrency", None)
            if limit is None or sum(1 for k in self._kinds.values() if k == kind) < limit:
                free.append(kind)
        return free

    async def _poll(self) -> None:
        while True:
            try:
                while len(self._running) < self.config.workers:
                    kinds = self._claimable_kinds()
                    if not kinds:
                        break
                    job = await asyncio.to_thread(
                        self.store.claim, kinds, self.replica, self.config.lease_s
                    )
                    if job is None:
                        break
                    self._launch(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("jobs: claiming failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_s)
            self._wake.clear()

    def _launch(self, job: JobRow) -> None:
        control = JobControl(self.replica)
        if job.cancel_requested:
            control.cancel.set()
        task = asyncio.create_task(self._run(job, control), name=f"job-{job.id}")
        self._running[job.id] = (task, control)
        self._kinds[job.id] = job.kind

    async def _run(self, job: JobRow, control: JobControl) -> None:
        try:
            handler = self.handlers[job.kind]
            own_count = getattr(handler, "counts_attempts", False)
            if not own_count and job.attempts > self.config.max_attempts:
                why = f"gave up after {job.attempts - 1} attempts (jobs.max_attempts)"
                await asyncio.to_thread(
                    self.store.finish, job.id, self.replica, "failed", error=why
                )
                return
            await handler.run(job, control)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("jobs: %s %s failed", job.kind, job.id)
            why = f"the job failed ({type(exc).__name__}: {exc})"[:2000]
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    self.store.finish, job.id, self.replica, "failed", error=why
                )
        finally:
            self._running.pop(job.id, None)
            self._kinds.pop(job.id, None)
            self._wake.set()  # a free slot: look for more at once

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(min(self.config.lease_s / 3, self.config.check_s))
            try:
                held = list(self._running)
                lost, cancelled = await asyncio.to_thread(
                    self.store.renew, held, self.replica, self.config.lease_s
                )
                for job_id in held:
                    entry = self._running.get(job_id)
                    if entry is None:
                        continue
                    if job_id in cancelled:
                        entry[1].cancel.set()
                    if job_id in lost:
                        entry[1].lost.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("jobs: could not renew the leases")
