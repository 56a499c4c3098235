"""Checking the log: recompute every leaf hash and every signed checkpoint; build proofs.

`verify_log` reads the whole log once, in order, and stops at the first problem:
a gap or a moved row (sequence numbers are part of the hashed data), a leaf whose bytes
no longer hash to what was recorded, a query column (tenant, principal, kind, model,
outcome, time) that no longer says what the hashed data says (columns.py), a checkpoint
that is not signed by our key or whose root differs from the recomputed tree (a fork,
or leaves rewritten together with their hashes), or checkpoints beyond the last leaf
(the tail was deleted).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, select

from ..store.tables import audit_checkpoints, audit_leaves
from .checkpoint import CheckpointError, Verifier
from .columns import disagreement
from .merkle import CompactRange, consistency_proof, inclusion_proof, leaf_hash

READ_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    size: int  # leaves read
    checkpoints: int  # checkpoints verified
    first_bad_index: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "checkpoints": self.checkpoints,
            "first_bad_index": self.first_bad_index,
            "problem": self.problem,
        }


def verify_log(database: Engine, verifier: Verifier, origin: str) -> VerifyReport:
    with database.connect() as conn:
        checkpoints = conn.execute(
            select(audit_checkpoints).order_by(audit_checkpoints.c.size)
        ).all()
    pending = list(checkpoints)
    tree = CompactRange()
    verified = 0
    previous_size = 0
    for row in _leaves(database):
        index = tree.size
        if row.seq != index:
            return _bad(index, verified, f"leaf {index} is missing (found {row.seq} in its place)")
        try:
            checked_leaf(row)
        except LeafTampered as exc:
            return _bad(index, verified, exc.problem)
        tree.append(bytes(row.leaf_hash))
        while pending and pending[0].size == tree.size:
            problem = _check(pending.pop(0), tree, verifier, origin)
            if problem:
                return _bad(previous_size, verified, problem)
            verified += 1
            previous_size = tree.size
    if pending:
        return _bad(
            tree.size,
            verified,
            f"a checkpoint covers {pending[0].size} leaves but only {tree.size} exist: "
            "leaves were removed from the end",
        )
    return VerifyReport(ok=True, size=tree.size, checkpoints=verified)


class LeafTampered(Exception):
    """A stored leaf whose bytes, position or query columns are not what was hashed."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem


def checked_leaf(row: Any) -> dict[str, Any]:
    """The leaf of a full `audit_leaves` row, once its hash, its position and every
    query column agree with the hashed data; `LeafTampered` otherwise."""
    index = row.seq
    data = row.data.encode()
    if leaf_hash(data) != bytes(row.leaf_hash):
        raise LeafTampered(index, f"leaf {index} was altered (its hash does not match)")
    leaf: dict[str, Any] = orjson.loads(data)
    if leaf.get("seq") != index:
        raise LeafTampered(index, f"leaf {index} holds the record of another position")
    column = disagreement(row, leaf)
    if column is not None:
        raise LeafTampered(
            index, f"leaf {index} was altered (its {column} column differs from its hashed data)"
        )
    return leaf


def _check(checkpoint: Any, tree: CompactRange, verifier: Verifier, origin: str) -> str | None:
    try:
        signed = verifier.verify(checkpoint.note.encode())
    except CheckpointError as exc:
        return f"the checkpoint at size {checkpoint.size} is not validly signed: {exc}"
    if signed.origin != origin or signed.size != checkpoint.size:
        return f"the checkpoint at size {checkpoint.size} names another log or size"
    if signed.root != tree.root() or bytes(checkpoint.root) != tree.root():
        return (
            f"the tree of the first {checkpoint.size} leaves does not match its signed "
            "checkpoint: leaves after the previous checkpoint were rewritten, or this is a fork"
        )
    return None


def _bad(index: int, verified: int, problem: str) -> VerifyReport:
    return VerifyReport(
        ok=False, size=index, checkpoints=verified, first_bad_index=index, problem=problem
    )


def _leaves(database: Engine) -> Iterator[Any]:
    start = 0
    while True:
        with database.connect() as conn:
            rows = conn.execute(
                select(audit_leaves)
                .where(audit_leaves.c.seq >= start)
                .order_by(audit_leaves.c.seq)
                .limit(READ_CHUNK)
            ).all()
        if not rows:
            return
        yield from rows
        start = rows[-1].seq + 1


def leaf_hashes(database: Engine, size: int) -> list[bytes]:
    with database.connect() as conn:
        return list(
            conn.execute(
                select(audit_leaves.c.leaf_hash)
                .where(audit_leaves.c.seq < size)
                .order_by(audit_leaves.c.seq)
            ).scalars()
        )


def latest_checkpoint(database: Engine) -> Any:
    with database.connect() as conn:
        return conn.execute(
            select(audit_checkpoints).order_by(audit_checkpoints.c.size.desc()).limit(1)
        ).first()


def prove_inclusion(database: Engine, index: int, size: int) -> list[bytes]:
    return inclusion_proof(leaf_hashes(database, size), index)


def prove_consistency(database: Engine, old_size: int, new_size: int) -> list[bytes]:
    return consistency_proof(leaf_hashes(database, new_size), old_size)


def last_configuration(database: Engine) -> Any:
    """The `target` of the newest configuration leaf, or None."""
    with database.connect() as conn:
        rows = conn.execute(
            select(audit_leaves.c.data)
            .where(audit_leaves.c.kind == "admin")
            .order_by(audit_leaves.c.seq.desc())
            .limit(1000)
        ).scalars()
        for data in rows:
            leaf = orjson.loads(data)
            if leaf.get("action") == "configuration":
                return leaf.get("target")
    return None
