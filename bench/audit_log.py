"""Audit log speed: durable appends per second, and verifying a large log.

1. Appends: N concurrent callers each awaiting their leaf's durability (group commit,
   SQLite WAL with synchronous=FULL), compared in the same run with one transaction per
   leaf (no group commit), on the same kind of database.
2. Verification: `verify_log` over a log of `--verify-leaves` leaves (written in bulk
   first), i.e. re-hashing every leaf and checking every signed checkpoint.

Run:  .venv/bin/python bench/audit_log.py [--appends 20000] [--verify-leaves 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from souverain.audit.checkpoint import Signer, Verifier
from souverain.audit.log import AuditLog
from souverain.audit.verify import verify_log
from souverain.store.database import open_database, sqlite_url, upgrade

ORIGIN = "souverain.bench/audit"
LEAF = {
    "kind": "request", "tenant": "default", "principal": "key:1", "endpoint": "chat",
    "model": "smollm2-135m-instruct", "deployment": "embedded-smollm2", "jurisdiction": "on-prem",
    "classification": "internal", "policy": "sha256:0123456789abcdef", "outcome": "ok",
    "status": 200, "tokens": {"prompt": 31, "completion": 12}, "latency_ms": 184.2,
}  # fmt: skip


def fresh_log(checkpoint_every: int = 10_000) -> AuditLog:
    database = open_database(sqlite_url(Path(tempfile.mkdtemp(prefix="souverain-audit-"))))
    upgrade(database)
    return AuditLog(database, Signer.generate(ORIGIN), ORIGIN, checkpoint_every=checkpoint_every)


async def group_commit(appends: int, callers: int) -> float:
    audit = fresh_log()
    await audit.start()
    remaining = iter(range(appends))

    async def caller() -> None:
        for i in remaining:
            await audit.append({**LEAF, "request_id": f"req-{i}"})

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    await audit.close()
    return appends / elapsed


def one_by_one(appends: int) -> float:
    audit = fresh_log()
    started = time.perf_counter()
    for i in range(appends):
        audit._write([({**LEAF, "time": "2026-11-29T00:00:00Z", "request_id": f"req-{i}"}, None)])
    return appends / (time.perf_counter() - started)


def verify_speed(leaves: int) -> dict[str, float]:
    audit = fresh_log(checkpoint_every=100_000)
    started = time.perf_counter()
    batch = 20_000
    for start in range(0, leaves, batch):
        audit._write([({**LEAF, "time": "2026-11-29T00:00:00Z", "request_id": f"r{i}"}, None)
                      for i in range(start, min(start + batch, leaves))])  # fmt: skip
        if (start + batch) % 100_000 == 0:
            audit.checkpoint()
    audit.checkpoint()
    written = time.perf_counter() - started
    started = time.perf_counter()
    report = verify_log(audit.database, Verifier.from_vkey(audit.signer.verifier_key()), ORIGIN)
    assert report.ok, report
    return {"leaves": leaves, "checkpoints": report.checkpoints, "bulk_write_s": written,
            "verify_s": time.perf_counter() - started}  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--callers", type=int, default=256)
    parser.add_argument("--verify-leaves", type=int, default=1_000_000)
    args = parser.parse_args()
    grouped = await group_commit(args.appends, args.callers)
    single = one_by_one(min(args.appends, 2_000))
    print(f"durable appends/s, group commit, {args.callers} concurrent callers: {grouped:,.0f}")
    print(f"durable appends/s, one transaction per leaf:                 {single:,.0f}")
    print(f"ratio: {grouped / single:.1f}x")
    verify = verify_speed(args.verify_leaves)
    print(
        f"verify {verify['leaves']:,} leaves and {verify['checkpoints']} checkpoints: "
        f"{verify['verify_s']:.1f} s (bulk write took {verify['bulk_write_s']:.1f} s)"
    )
    out = Path(__file__).parent / "results" / "audit_log.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"group_commit_per_s": grouped, "one_by_one_per_s": single,
                               "verify": verify, "callers": args.callers}, indent=2))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
