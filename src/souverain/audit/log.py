"""The audit log: one leaf per model request and per admin action.

Appends are group-committed: callers await their leaf, a single writer task takes
whatever is queued, assigns the next sequence numbers and writes the batch in one
transaction. A caller resumes only once its leaf is on disk, so an acknowledged request
always has its leaf, and many requests share one fsync.

Every `checkpoint_every` leaves (or `checkpoint_seconds`), the writer signs a C2SP
checkpoint of the Merkle tree over all leaves; it continues from the previous
checkpoint's compact range, so it reads only the leaves added since.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import IntegrityError

from ..errors import AuditUnavailable
from ..store.tables import audit_checkpoints, audit_leaves, audit_payloads
from . import coverage
from .checkpoint import Checkpoint, Signer
from .columns import columns_of
from .merkle import CompactRange, leaf_hash
from .payloads import Erasure, PayloadVault

log = logging.getLogger("souverain.audit")
MAX_BATCH = 5000
APPEND_LOCK = 0x536F7576  # PostgreSQL advisory lock id for the audit appenders ("Souv")
WRITE_ATTEMPTS = 5


def canonical(data: dict[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, no spaces, UTF-8 (RFC 8785-like for our data)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Payload:
    """A body to keep, encrypted for its data subject (see payloads.py)."""

    subject: str
    body: bytes


@dataclass(eq=False)
class _Pending:
    fields: dict[str, Any]
    payload: Payload | None = None
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AuditLog:
    def __init__(
        self,
        database: Engine,
        signer: Signer,
        origin: str,
        *,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 10.0,
        vault: PayloadVault | None = None,
        payload_tenants: Callable[[str], bool] = lambda tenant: False,
    ) -> None:
        self.database = database
        self.vault = vault
        self.keeps_payloads = payload_tenants  # does this tenant keep request/response bodies?
        self.signer = signer
        self.origin = origin
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._since_checkpoint = 0
        self._last_checkpoint_at = time.monotonic()
        self._next: int | None = None  # the next leaf index, when this process knows it
        self._conn: Connection | None = None  # the writer's own connection
        # Every write runs on this one thread, so the writer's connection never moves.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever())

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):  # let queued leaves reach the disk
                await asyncio.wait_for(self._queue.join(), timeout=10)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_writer)

    def _close_writer(self) -> None:
        self.checkpoint()
        self._discard_connection()

    async def append(self, fields: dict[str, Any], payload: Payload | None = None) -> int:
        """Record one leaf (and its sealed payload); returns its index once durable."""
        if self._writer is None or self._writer.done():
            raise AuditUnavailable("the audit log is not running; the call was not made")
        if payload is not None and self.vault is None:
            payload = None
        pending = _Pending(fields={"time": utc_now(), **fields}, payload=payload)
        self._queue.put_nowait(pending)
        index = await pending.done
        coverage.noted(fields, index)  # the request it belongs to has its leaf
        return index

    # ---- the writer ---------------------------------------------------------------------

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                first = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._write, [(p.fields, p.payload) for p in batch]
                )
            except Exception as exc:  # the callers fail closed; the writer keeps going
                log.error("audit append failed: %s", exc)
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(
                            AuditUnavailable("the audit log could not record the call")
                        )
                    self._queue.task_done()
                continue
            for offset, pending in enumerate(batch):
                if not pending.done.done():
                    pending.done.set_result(first + offset)
                self._queue.task_done()
            self._since_checkpoint += len(batch)
            if self._since_checkpoint >= self.checkpoint_every or (
                time.monotonic() - self._last_checkpoint_at >= self.checkpoint_seconds
            ):
                await asyncio.get_running_loop().run_in_executor(self._thread, self.checkpoint)

    def _write(self, batch: list[tuple[dict[str, Any], Payload | None]]) -> int:
        """Insert the batch after the current last leaf; another writer may race us: retry.

        One connection stays open for the writer (no pool checkout per batch), and on
        SQLite the next index is remembered rather than read back each time: a stale
        guess collides on the primary key and is corrected by the retry.
        """
        for _ in range(WRITE_ATTEMPTS):
            conn = self._connection()
            try:
                with conn.begin():
                    first = self._next_index(conn)
                    rows = [
                        _row(first + i, self._seal(conn, first + i, fields, payload))
                        for i, (fields, payload) in enumerate(batch)
                    ]
                    conn.execute(audit_leaves.insert(), rows)
            except IntegrityError:
                self._next = None
                continue
            except Exception:
                self._next = None
                self._discard_connection()
                raise
            self._next = first + len(batch)
            return first
        raise RuntimeError("could not take the next sequence numbers")

    def _next_index(self, conn: Connection) -> int:
        if conn.dialect.name == "postgresql":  # one appender at a time, any role
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK})
        elif self._next is not None:
            return self._next
        first = conn.scalar(select(func.coalesce(func.max(audit_leaves.c.seq) + 1, 0)))
        assert first is not None
        return int(first)

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.database.connect()
        return self._conn

    def _discard_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _seal(
        self, conn: Connection, seq: int, fields: dict[str, Any], payload: Payload | None
    ) -> dict[str, Any]:
        """Store the payload encrypted; the leaf gets only its pseudonym and hash."""
        if payload is None or self.vault is None:
            return fields
        tenant = columns_of(fields)["tenant"]
        pseudonym = self.vault.pseudonym(tenant, payload.subject)
        sealed = self.vault.seal(conn, pseudonym, payload.body)
        conn.execute(
            audit_payloads.insert().values(
                seq=seq,
                tenant=tenant,
                subject=pseudonym,
                ciphertext=sealed,
                at=time.time(),
            )
        )
        digest = hashlib.sha256(sealed).hexdigest()
        return {**fields, "payload": {"subject": pseudonym, "sha256": digest}}

    async def erase(
        self, subject: str, actor: str, *, tenant: str | None, home: str
    ) -> dict[str, Any]:
        """Crypto-shred a data subject's bodies in `tenant` (None: every tenant) and record
        it with a tombstone leaf in each tenant affected (see `erase_subject`)."""
        if self.vault is None:
            raise AuditUnavailable("payload storage is not configured")
        leaves = await asyncio.to_thread(erase_subject, self.vault, subject, actor, tenant, home)
        return erasure_result([(leaf, await self.append(leaf)) for leaf in leaves])

    def checkpoint(self) -> Checkpoint | None:
        """Sign the tree over every leaf written so far (if it grew since the last one)."""
        self._since_checkpoint = 0
        self._last_checkpoint_at = time.monotonic()
        with self.database.connect() as conn:
            last = conn.execute(
                select(audit_checkpoints.c.size, audit_checkpoints.c.peaks)
                .order_by(audit_checkpoints.c.size.desc())
                .limit(1)
            ).first()
            tree = CompactRange()
            if last is not None:
                tree = CompactRange.from_state(
                    last.size, [bytes.fromhex(p) for p in json.loads(last.peaks)]
                )
            hashes = conn.execute(
                select(audit_leaves.c.leaf_hash)
                .where(audit_leaves.c.seq >= tree.size)
                .order_by(audit_leaves.c.seq)
            ).scalars()
            tree.extend(hashes)
        if tree.size == 0 or (last is not None and tree.size == last.size):
            return None
        checkpoint = Checkpoint(origin=self.origin, size=tree.size, root=tree.root())
        try:
            with self.database.begin() as conn:
                conn.execute(
                    audit_checkpoints.insert().values(
                        size=checkpoint.size,
                        root=checkpoint.root,
                        peaks=json.dumps([p.hex() for p in tree.peaks]),
                        note=self.signer.sign(checkpoint).decode(),
                        at=time.time(),
                    )
                )
        except IntegrityError:
            return None  # another replica signed this very size
        return checkpoint


def erase_subject(
    vault: PayloadVault, subject: str, actor: str, tenant: str | None, home: str
) -> list[dict[str, Any]]:
    """Erase, and the tombstone leaves to append: one in each tenant affected, so that
    each tenant's log shows its own erasures; with nothing found, one in `tenant` (or
    `home`, the caller's own, when erasing everywhere)."""
    erasures = vault.erase(subject, tenant)
    if not erasures:
        where = tenant if tenant is not None else home
        erasures = [Erasure(where, vault.pseudonym(where, subject), 0)]
    return [
        {
            "kind": "tombstone",
            "tenant": e.tenant,
            "principal": actor,
            "subject": e.subject,
            "payloads_erased": e.payloads_erased,
        }
        for e in erasures
    ]


def erasure_result(written: list[tuple[dict[str, Any], int]]) -> dict[str, Any]:
    """The answer to an erasure: the first tombstone, the total, and every tombstone."""
    tombstones = [{**leaf, "index": index} for leaf, index in written]
    total = sum(t["payloads_erased"] for t in tombstones)
    return {**tombstones[0], "payloads_erased": total, "tombstones": tombstones}


def _row(seq: int, fields: dict[str, Any]) -> dict[str, Any]:
    """The stored row: the hashed data, and query columns derived from it alone."""
    fields = {"time": utc_now(), **fields}  # `at` is the hashed time, so there is one
    data = canonical({**fields, "seq": seq})
    return {"seq": seq, **columns_of(fields), "data": data.decode(), "leaf_hash": leaf_hash(data)}
