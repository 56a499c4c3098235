"""Files in the database: one row each, the bytes in 1 MiB chunks, scoped to an owner.

Interface (helper code such as batches uses exactly this)::

    store = FileStore(engine, settings.files)
    record = store.add(principal, "batch_output", "out.jsonl", open(path, "rb"))
    store.get(principal, record.id)      # FileRecord | None (another owner's: None)
    for chunk in store.read(record.id):  # bytes, CHUNK_BYTES at most each, in order
        ...
    store.delete(principal, record.id)   # True when it was there

Reading a file line by line without loading it whole: `iter_lines(store.read(id))`
(below) yields each line as bytes, its newline kept, holding at most one chunk plus one
line in memory; a JSONL batch input is read that way, line numbers counted from 1.

Every replica sharing the database reads every file: there is no shared disk between
gateway replicas, so the bytes are rows (`file_chunks`), written in the same
transaction as the file's row, so a file is all there or not at all.

Ownership follows stored responses and conversations (agents/store.py `Owner`): a file
belongs to the user who uploaded it (any of their keys), else to the key; another
owner's file, or another tenant's, reads exactly like a missing one. A tenant's admin
does not see its users' files either (there is no admin reading of contents).

The tenant's quota (`files.tenant_quota_bytes`) counts every unexpired file of the
tenant. Two uploads at once cannot both slip under it: the sum is read after the new
row is written, under the database's write lock on SQLite and a per-tenant advisory
lock on PostgreSQL, and the transaction is rolled back when it is over.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import BinaryIO, Literal

from sqlalchemy import Connection, Engine, Row, and_, delete, func, or_, select, text
from sqlalchemy.sql.elements import ColumnElement

from ..agents.store import Owner, subject_digest
from ..context import Principal
from ..errors import PayloadTooLarge, StorageQuotaExceeded
from ..protocol.common import new_id
from ..store.work_tables import file_chunks, files
from .names import safe_filename
from .settings import UPLOAD_PURPOSES, FilesConfig

CHUNK_BYTES = 1024 * 1024
# Purposes of the files the gateway writes itself (batch results and errors), beside
# those a client may upload (files/settings.py).
GATEWAY_PURPOSES = ("batch_output", "batch_error", "fine-tune-results")
ALL_PURPOSES = UPLOAD_PURPOSES + GATEWAY_PURPOSES
Source = Literal["upload", "gateway"]
_ADVISORY_NAMESPACE = 0x5F11E5  # keeps these locks apart from any other advisory lock


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    tenant: str
    owner: str
    purpose: str
    filename: str
    bytes: int
    created_at: float
    expires_at: float | None = None
    num_lines: int = 0
    sha256: str = ""
    mimetype: str | None = None
    source: Source = "gateway"


@dataclass(frozen=True, slots=True)
class FilePage:
    files: list[FileRecord]
    total: int
    has_more: bool


class FileStore:
    def __init__(self, engine: Engine, config: FilesConfig) -> None:
        self.engine = engine
        self.config = config

    # ---- writing --------------------------------------------------------------------------

    def add(
        self,
        principal: Principal,
        purpose: str,
        filename: str,
        source: BinaryIO,
        *,
        mimetype: str | None = None,
        expires_at: float | None = None,
        origin: Source = "gateway",
    ) -> FileRecord:
        """Store `source` (a seekable file, read from its start) as the principal's file.

        Raises PayloadTooLarge for an upload over `max_file_bytes` (files the gateway
        writes are bounded by the quota only) and StorageQuotaExceeded past the tenant's
        quota; nothing is stored then.
        """
        if purpose not in ALL_PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}")
        size = source.seek(0, 2)
        source.seek(0)
        if origin == "upload" and size > self.config.max_file_bytes:
            raise file_too_large(self.config.max_file_bytes)
        owner = Owner.of(principal)
        self.check_quota(owner.tenant, size)  # early, before any chunk is written
        record = FileRecord(
            id=new_id("file"),
            tenant=owner.tenant,
            owner=owner.owner,
            purpose=purpose,
            filename=safe_filename(filename),
            bytes=size,
            created_at=time.time(),
            expires_at=expires_at,
            mimetype=mimetype,
            source=origin,
        )
        with self.engine.begin() as conn:
            self._lock_tenant(conn, owner.tenant)
            conn.execute(files.insert().values(
                id=record.id, tenant=owner.tenant, tenant_id=owner.tenant_id,
                owner=owner.owner, subject=subject_digest(principal.label), purpose=purpose,
                filename=record.filename, bytes=size, num_lines=0, sha256="",
                mimetype=mimetype, source=origin, chunk_count=0,
                created_at=record.created_at, expires_at=expires_at,
            ))  # fmt: skip
            self.check_quota(owner.tenant, 0, conn)  # ours included, others committed
            digest, lines, count, last = hashlib.sha256(), 0, 0, b"\n"
            while chunk := source.read(CHUNK_BYTES):
                conn.execute(file_chunks.insert().values(file_id=record.id, ordinal=count,
                                                         data=chunk))  # fmt: skip
                digest.update(chunk)
                lines += chunk.count(b"\n")
                count, last = count + 1, chunk[-1:]
            lines += 0 if last == b"\n" else 1  # a last line without its newline
            conn.execute(
                files.update()
                .where(files.c.id == record.id)
                .values(num_lines=lines, sha256=digest.hexdigest(), chunk_count=count)
            )
        return replace(record, num_lines=lines, sha256=digest.hexdigest())

    def _lock_tenant(self, conn: Connection, tenant: str) -> None:
        """Serialise quota checks per tenant on PostgreSQL (SQLite has one writer)."""
        if conn.dialect.name == "postgresql":
            key = (_ADVISORY_NAMESPACE << 32) | zlib.crc32(tenant.encode())
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def check_quota(self, tenant: str, adding: int, conn: Connection | None = None) -> None:
        used = self.usage(tenant, conn)
        quota = self.config.tenant_quota_bytes
        if used + adding > quota:
            raise StorageQuotaExceeded(
                f"this tenant's files would take {used + adding} bytes, over its storage "
                f"quota of {quota} bytes (files.tenant_quota_bytes); delete files first"
            )

    def usage(self, tenant: str, conn: Connection | None = None) -> int:
        """Bytes the tenant's unexpired files take."""
        query = select(func.coalesce(func.sum(files.c.bytes), 0)).where(
            files.c.tenant == tenant, _unexpired()
        )
        if conn is not None:
            return int(conn.execute(query).scalar_one())
        with self.engine.connect() as own:
            return int(own.execute(query).scalar_one())

    # ---- reading --------------------------------------------------------------------------

    def get(self, principal: Principal, file_id: str) -> FileRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(files).where(_owned(Owner.of(principal), file_id))).first()
        return _record(row) if row is not None else None

    def read(self, file_id: str) -> Iterator[bytes]:
        """The file's bytes, chunk by chunk, one query each (no cursor held between them).

        Not scoped: call `get` first. A file deleted while it is read ends early."""
        with self.engine.connect() as conn:
            count = conn.execute(
                select(files.c.chunk_count).where(files.c.id == file_id)
            ).scalar_one_or_none()
        for ordinal in range(count or 0):
            with self.engine.connect() as conn:
                data = conn.execute(
                    select(file_chunks.c.data).where(
                        file_chunks.c.file_id == file_id, file_chunks.c.ordinal == ordinal
                    )
                ).scalar_one_or_none()
            if data is None:
                return
            yield bytes(data)

    def list(
        self,
        principal: Principal,
        *,
        purposes: Sequence[str] = (),
        search: str | None = None,
        sources: Sequence[str] = (),
        mimetypes: Sequence[str] = (),
        order: Literal["asc", "desc"] = "desc",
        after: FileRecord | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> FilePage:
        """The caller's files matching every filter given, by creation time; paged by
        cursor (`after`, a file of the caller's) or by offset."""
        owner = Owner.of(principal)
        condition: ColumnElement[bool] = and_(
            files.c.tenant == owner.tenant, files.c.owner == owner.owner, _unexpired()
        )
        if purposes:
            condition = and_(condition, files.c.purpose.in_(list(purposes)))
        if sources:
            condition = and_(condition, files.c.source.in_(list(sources)))
        if mimetypes:
            condition = and_(condition, files.c.mimetype.in_(list(mimetypes)))
        if search:
            condition = and_(
                condition, func.lower(files.c.filename).contains(search.lower(), autoescape=True)
            )
        with self.engine.connect() as conn:
            total = int(conn.execute(select(func.count()).where(condition)).scalar_one())
            page_condition = condition
            if after is not None:
                page_condition = and_(condition, _beyond(after, order))
            keys = (files.c.created_at, files.c.id)
            ordering = [k.desc() for k in keys] if order == "desc" else [k.asc() for k in keys]
            query = select(files).where(page_condition).order_by(*ordering)
            rows = conn.execute(query.offset(offset).limit(limit + 1)).all()
        found = [_record(row) for row in rows[:limit]]
        return FilePage(files=found, total=total, has_more=len(rows) > limit)

    # ---- deleting -------------------------------------------------------------------------

    def delete(self, principal: Principal, file_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(delete(files).where(_owned(Owner.of(principal), file_id)))
            if result.rowcount:
                conn.execute(delete(file_chunks).where(file_chunks.c.file_id == file_id))
        return bool(result.rowcount)

    def erase_subject(self, subject: str, tenant: str | None) -> int:
        """Delete every file of one data subject (the uploading key's or user's label),
        in `tenant` or everywhere (`souverain audit erase --subject`)."""
        condition = files.c.subject == subject_digest(subject)
        if tenant is not None:
            condition = and_(condition, files.c.tenant == tenant)
        return self._delete_where(condition)

    def purge_expired(self) -> int:
        """Delete the files whose `expires_at` has passed (they already read as gone)."""
        return self._delete_where(and_(files.c.expires_at.is_not(None),
                                       files.c.expires_at <= time.time()))  # fmt: skip

    def _delete_where(self, condition: ColumnElement[bool]) -> int:
        with self.engine.begin() as conn:
            ids = [row.id for row in conn.execute(select(files.c.id).where(condition))]
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                conn.execute(delete(file_chunks).where(file_chunks.c.file_id.in_(batch)))
                conn.execute(delete(files).where(files.c.id.in_(batch)))
        return len(ids)


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a chunked file, each with its newline (the last may lack one)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) != -1:
            yield pending[start : end + 1]
            start = end + 1
        pending = pending[start:]
    if pending:
        yield pending


def file_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the file is larger than {limit} bytes (files.max_file_bytes)", param="file"
    )


def _owned(owner: Owner, file_id: str) -> ColumnElement[bool]:
    return and_(files.c.id == file_id, files.c.tenant == owner.tenant,
                files.c.owner == owner.owner, _unexpired())  # fmt: skip


def _unexpired() -> ColumnElement[bool]:
    return or_(files.c.expires_at.is_(None), files.c.expires_at > time.time())


def _beyond(after: FileRecord, order: str) -> ColumnElement[bool]:
    """Files after `after` in the listing's order (creation time, then id)."""
    if order == "desc":
        return or_(files.c.created_at < after.created_at,
                   and_(files.c.created_at == after.created_at, files.c.id < after.id))  # fmt: skip
    return or_(files.c.created_at > after.created_at,
               and_(files.c.created_at == after.created_at, files.c.id > after.id))  # fmt: skip


def _record(row: Row[tuple[object, ...]]) -> FileRecord:
    return FileRecord(
        id=row.id,
        tenant=row.tenant,
        owner=row.owner,
        purpose=row.purpose,
        filename=row.filename,
        bytes=int(row.bytes),
        created_at=float(row.created_at),
        expires_at=row.expires_at,
        num_lines=int(row.num_lines),
        sha256=row.sha256,
        mimetype=row.mimetype,
        source="upload" if row.source == "upload" else "gateway",
    )
