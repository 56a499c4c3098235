"""The job mechanism's store (jobs/store.py) on SQLite and PostgreSQL: one claimer wins a
job, an abandoned lease is taken over, cancellation reaches the holder through renewal,
a parent waits for its children, and a job given back at shutdown is claimable at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from souverain.jobs.store import JobStore, NewJob
from souverain.store.database import open_database, upgrade


@pytest.fixture
def store(database_url: str) -> Iterator[JobStore]:
    engine: Engine = open_database(database_url)
    upgrade(engine)
    yield JobStore(engine)
    engine.dispose()


def new(kind: str = "test", **fields: object) -> NewJob:
    return NewJob(kind=kind, tenant="t", owner="o", principal={}, payload={"n": 1}, **fields)  # type: ignore[arg-type]


def test_concurrent_claimers_take_a_job_once(store: JobStore) -> None:
    created = [store.create(new()) for _ in range(6)]
    won: list[str] = []
    start = threading.Barrier(4)

    def claimer(replica: str) -> None:
        start.wait()
        while (job := store.claim(["test"], replica, lease_s=60)) is not None:
            won.append(job.id)

    threads = [threading.Thread(target=claimer, args=(f"r{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won) == sorted(created)  # each job claimed, none twice


def test_an_expired_lease_is_taken_over_and_counts_an_attempt(store: JobStore) -> None:
    job_id = store.create(new())
    first = store.claim(["test"], "dead", lease_s=0.2)
    assert first is not None and first.attempts == 1
    assert store.claim(["test"], "alive", lease_s=60) is None  # still leased
    time.sleep(0.3)
    second = store.claim(["test"], "alive", lease_s=60)
    assert second is not None and second.id == job_id and second.attempts == 2
    # The dead replica's late writes are refused: it no longer holds the job.
    assert not store.finish(job_id, "dead", "succeeded")
    lost, _ = store.renew([job_id], "dead", 60)
    assert lost == {job_id}
    assert store.finish(job_id, "alive", "succeeded")
    row = store.get(job_id)
    assert row is not None and row.status == "succeeded"


def test_cancellation_reaches_the_holder_and_ends_queued_children(store: JobStore) -> None:
    parent = store.create(new("parent", stage="validating"))
    claimed = store.claim(["parent"], "r1", lease_s=60)
    assert claimed is not None
    children = [new("child", parent_id=parent) for _ in range(3)]
    assert store.wait_for_children(parent, "r1", "in_progress", children)
    running = store.claim(["child"], "r2", lease_s=60)
    assert running is not None
    assert store.claim(["parent"], "r1", lease_s=60) is None  # its children are unfinished
    store.request_cancel(parent)
    _, cancelled = store.renew([running.id], "r2", 60)
    assert cancelled == {running.id}
    statuses = sorted(child.status for child in store.children(parent))
    assert statuses == ["cancelled", "cancelled", "running"]
    store.finish(running.id, "r2", "cancelled")
    again = store.claim(["parent"], "r3", lease_s=60)  # every child finished: its turn
    assert again is not None and again.stage == "in_progress" and again.cancel_requested


def test_a_job_given_back_is_claimable_at_once_without_counting(store: JobStore) -> None:
    job_id = store.create(new())
    assert store.claim(["test"], "r1", lease_s=600) is not None
    store.release([job_id], "r1")
    again = store.claim(["test"], "r2", lease_s=600)
    assert again is not None and again.attempts == 1
