"""Finished batches are purged with their tenant's retention (batch/retention.py), on
SQLite and PostgreSQL, directly and through `souverain audit purge`; a batch still
running, a batch of a tenant without a rule, and a recent one are kept."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from click.testing import CliRunner
from sqlalchemy import Engine, func, insert, select, update

from souverain.batch.retention import purge_finished_batches
from souverain.cli import cli
from souverain.jobs.store import JobStore, NewJob
from souverain.store.database import open_database, upgrade
from souverain.store.work_tables import batch_lines, jobs

DAY_S = 86400


def a_batch(store: JobStore, engine: Engine, tenant: str, *, status: str, age_days: float) -> str:
    """A batch with two ranges and one answer row, `status` since `age_days` ago."""
    batch_id = store.create(NewJob(kind="batch", tenant=tenant, owner="key:k", principal={},
                                   payload={"metadata": {"project": "x"}}))  # fmt: skip
    for first in (0, 5):
        store.create(NewJob(kind="batch_range", tenant=tenant, owner="key:k", principal={},
                            payload={"first": first}, parent_id=batch_id))  # fmt: skip
    finished_at = time.time() - age_days * DAY_S if status != "waiting" else None
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == batch_id)
                     .values(status=status, finished_at=finished_at))  # fmt: skip
        conn.execute(insert(batch_lines).values(batch_id=batch_id, line=0, failed=False,
                                                body="{}", created_at=time.time()))  # fmt: skip
    return batch_id


def remaining(engine: Engine) -> dict[str, int]:
    """Rows left per batch id: the batch, its ranges and its answer rows."""
    with engine.connect() as conn:
        rows = conn.execute(select(func.coalesce(jobs.c.parent_id, jobs.c.id))).scalars().all()
        lines = conn.execute(select(batch_lines.c.batch_id)).scalars().all()
    counts: dict[str, int] = {}
    for batch_id in [*rows, *lines]:
        counts[batch_id] = counts.get(batch_id, 0) + 1
    return counts


def test_finished_batches_go_with_their_tenants_retention(database_url: str) -> None:
    engine = open_database(database_url)
    upgrade(engine)
    store = JobStore(engine)
    old = a_batch(store, engine, "archives", status="succeeded", age_days=10)
    old_failed = a_batch(store, engine, "archives", status="failed", age_days=8)
    recent = a_batch(store, engine, "archives", status="succeeded", age_days=2)
    running = a_batch(store, engine, "archives", status="waiting", age_days=30)
    elsewhere = a_batch(store, engine, "elsewhere", status="cancelled", age_days=30)
    assert purge_finished_batches(engine, {"archives": 7}) == 2
    left = remaining(engine)
    assert old not in left and old_failed not in left  # the batch, its ranges, its answers
    assert left == {recent: 4, running: 4, elsewhere: 4}
    assert purge_finished_batches(engine, {"archives": 7}) == 0
    assert purge_finished_batches(engine, {"archives": 1, "*": 20}) == 2  # recent, elsewhere
    assert set(remaining(engine)) == {running}
    engine.dispose()


def test_audit_purge_purges_finished_batches(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    engine = open_database(f"sqlite:///{data / 'souverain.db'}")
    upgrade(engine)
    store = JobStore(engine)
    old = a_batch(store, engine, "archives", status="expired", age_days=200)
    kept = a_batch(store, engine, "archives", status="succeeded", age_days=100)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"audit": {"payloads": {
        "archives": {"store": True, "retention_days": 180}}}}))  # fmt: skip
    purged = CliRunner().invoke(cli, ["audit", "purge", "--config", str(config),
                                      "--data-dir", str(data)])  # fmt: skip
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.output)["batches_purged"] == 1
    assert set(remaining(engine)) == {kept} and old not in remaining(engine)
    engine.dispose()
