"""Documents and their chunks in the database (synchronous: callers use a thread).

A document's life: `todo` (uploaded, its `library.ingest` job queued in the same
transaction) → `in_progress` (its job was claimed: the job holds the lease, jobs/store.py)
→ `done` with its text and chunks, all written in one transaction, or `error` with a
message (`missing_content` when it holds no text). `attempts` mirrors the job's claims:
a parser crash sends the document back to `todo` with the reason, and once
`libraries.limits.max_attempts` claims have not finished it (crashes, or a gateway that
died while processing it) the document is `error` instead of being processed again.
Deleting a document cancels its job and removes its bytes, text, chunks and vectors,
and the keyword index entries with them; the library's `revision` moves on, which tells
every replica's vector cache (SQLite) to drop what it had.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import numpy as np
from sqlalchemy import Engine, Row, delete, func, insert, select, text, update

from ..jobs.store import JobStore, NewJob
from ..store.tables import libraries, library_chunks, library_documents
from .chunker import Chunk
from .pgvectors import ensure_index, vector_literal
from .search_text import normalize_for_index

INGEST_KIND = "library.ingest"  # the job kind that processes a document
SORTABLE = {"created_at", "name", "size", "last_processed_at", "processed_at"}
_SUMMARY = [c for c in library_documents.c if c.name not in ("content", "text", "job")]
UNFINISHED = "the gateway stopped while processing it (a crash, or out of memory?)"


class DocumentStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.jobs = JobStore(engine)
        self.dialect = engine.dialect.name
        self._indexed: set[int] = set()  # PostgreSQL: dimensions whose HNSW index exists

    def add(
        self,
        library_id: str,
        *,
        name: str,
        kind: str,
        mime_type: str,
        extension: str | None,
        data: bytes,
        uploaded_by: str,
        uploaded_by_user_id: int | None,
        job: dict[str, Any],
    ) -> str:
        document_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                insert(library_documents).values(
                    id=document_id,
                    library_id=library_id,
                    name=name,
                    kind=kind,
                    mime_type=mime_type,
                    extension=extension,
                    size=len(data),
                    hash=hashlib.sha256(data).hexdigest(),
                    content=data,
                    status="todo",
                    uploaded_by=uploaded_by,
                    uploaded_by_user_id=uploaded_by_user_id,
                    job=self._queue(conn, document_id, job),
                    created_at=time.time(),
                )
            )
            _touch(conn, library_id, revision=False)
        return document_id

    def get(self, library_id: str, document_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(*_SUMMARY).where(
                    library_documents.c.id == document_id,
                    library_documents.c.library_id == library_id,
                )
            ).first()

    def text_of(self, library_id: str, document_id: str) -> Any:
        docs = library_documents.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(docs.status, docs.text, docs.page_starts).where(
                    docs.id == document_id, docs.library_id == library_id
                )
            ).first()

    def list_documents(
        self,
        library_id: str,
        *,
        search: str | None,
        offset: int,
        limit: int,
        sort_by: str,
        descending: bool,
    ) -> tuple[list[Row[Any]], int]:
        docs = library_documents.c
        condition = docs.library_id == library_id
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            condition = condition & docs.name.ilike(f"%{escaped}%", "\\")
        column = docs.processed_at if sort_by == "last_processed_at" else docs[sort_by]
        order = column.desc() if descending else column.asc()
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(library_documents).where(condition)
            ).scalar_one()
            rows = conn.execute(
                select(*_SUMMARY)
                .where(condition)
                .order_by(order, docs.id)
                .offset(offset)
                .limit(limit)
            ).all()
        return list(rows), int(total)

    def update(self, library_id: str, document_id: str, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(library_documents)
                .where(
                    library_documents.c.id == document_id,
                    library_documents.c.library_id == library_id,
                )
                .values(**values)
            )

    def delete(self, library_id: str, document_id: str) -> bool:
        """The document and what was made of it; its ingest job, if unfinished, is
        cancelled in the same transaction (a running one stops within `jobs.check_s`)."""
        docs = library_documents.c
        with self.engine.begin() as conn:
            job_id = conn.execute(
                select(docs.job).where(docs.id == document_id, docs.library_id == library_id)
            ).scalar()
            if job_id:
                self.jobs.request_cancel(job_id, conn)
            conn.execute(delete(library_chunks).where(library_chunks.c.document_id == document_id))
            gone = conn.execute(
                delete(library_documents).where(
                    library_documents.c.id == document_id,
                    library_documents.c.library_id == library_id,
                )
            ).rowcount
            _touch(conn, library_id, revision=True)
        return bool(gone)

    # ---- its ingest job (library/ingest_job.py) ---------------------------------------------

    def requeue(self, library_id: str, document_id: str, job: dict[str, Any]) -> None:
        """Process it again as `job`'s principal: its unfinished job is cancelled and a new
        one queued, in one transaction with the document's `todo` and a fresh count."""
        docs = library_documents.c
        mine = (docs.id == document_id) & (docs.library_id == library_id)
        with self.engine.begin() as conn:
            row = conn.execute(select(docs.job).where(mine)).first()
            if row is None:
                return
            if row.job:
                self.jobs.request_cancel(row.job, conn)
            values = {"status": "todo", "error": None, "attempts": 0}
            values["job"] = self._queue(conn, document_id, job)
            conn.execute(update(library_documents).where(mine).values(**values))

    def claim(self, document_id: str, attempt: int = 1) -> Row[Any] | None:
        """Its job was claimed (the job holds the lease): the document is `in_progress` at
        this attempt. Its row with the library's model and chunk size; None when it is
        gone or no longer waiting to be processed."""
        docs = library_documents.c
        waiting = docs.status.in_(("todo", "in_progress"))
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(library_documents)
                .where(docs.id == document_id, waiting)
                .values(status="in_progress", error=None, attempts=attempt)
            ).rowcount
            if not taken:
                return None
            return conn.execute(
                select(library_documents, libraries.c.embedding_model, libraries.c.chunk_size)
                .join(libraries, libraries.c.id == docs.library_id)
                .where(docs.id == document_id)
            ).first()

    def give_back(self, document_id: str, attempts: int) -> None:
        """The gateway is stopping: `todo` again, the interrupted attempt not counted (the
        runner gives its job back the same way)."""
        docs = library_documents.c
        with self.engine.begin() as conn:
            conn.execute(
                update(library_documents)
                .where(docs.id == document_id, docs.status == "in_progress")
                .values(status="todo", attempts=max(attempts - 1, 0))
            )

    def retry(self, document_id: str, message: str, attempt: int, max_attempts: int) -> bool:
        """The parser died on it: `todo` again with the reason (True), or `error` once it
        has had its attempts (False)."""
        docs = library_documents.c
        if attempt >= max_attempts:
            self.fail(document_id, f"{message}; gave up after {attempt} attempts{SETTING}")
            return False
        why = f"{message}; attempt {attempt} of {max_attempts}, to be tried again"
        with self.engine.begin() as conn:
            conn.execute(
                update(library_documents)
                .where(docs.id == document_id, docs.status == "in_progress")
                .values(status="todo", error=why[:2000])
            )
        return True

    def give_up(self, document_id: str, attempts: int) -> str:
        """Claimed once too often (crashes, or replicas that died while processing it):
        `error`, with the last reason known. Answers the message."""
        docs = library_documents.c
        with self.engine.connect() as conn:
            last = conn.execute(select(docs.error).where(docs.id == document_id)).scalar()
        why = f"{last or UNFINISHED}; gave up after {attempts} attempts{SETTING}"
        self.fail(document_id, why)
        return why[:2000]

    def _queue(self, conn: Any, document_id: str, job: dict[str, Any]) -> str | None:
        """Create the document's ingest job in `conn`'s transaction; None (and no job) for
        an empty `job`: nobody to process it as."""
        if not job:
            return None
        principal = job["principal"]
        return self.jobs.create(
            NewJob(
                kind=INGEST_KIND,
                tenant=principal["tenant"],
                tenant_id=principal.get("tenant_id"),
                owner=principal["subject"],
                principal=principal,
                payload={"document": document_id, "claims": list(job.get("claims") or ())},
            ),
            conn,
        )

    def fail(self, document_id: str, message: str, status: str = "error") -> None:
        docs = library_documents.c
        with self.engine.begin() as conn:
            conn.execute(
                update(library_documents)
                .where(docs.id == document_id)
                .values(
                    status=status,
                    error=message[:2000],
                    processed_at=time.time(),
                )
            )

    def finish(
        self,
        document_id: str,
        *,
        text_value: str,
        page_starts: list[int],
        number_of_pages: int | None,
        chunks: list[Chunk],
        vectors: np.ndarray,
        tokens: int,
    ) -> bool:
        """Text, chunks and vectors in one transaction; False if the document was deleted
        (or reclaimed) meanwhile, and then nothing is written."""
        docs = library_documents.c
        with self.engine.begin() as conn:
            row = conn.execute(
                select(docs.library_id).where(docs.id == document_id, docs.status == "in_progress")
            ).first()
            if row is None:
                return False
            library_id = row.library_id
            conn.execute(delete(library_chunks).where(library_chunks.c.document_id == document_id))
            self.insert_chunks(conn, library_id, document_id, chunks, vectors)
            conn.execute(
                update(library_documents)
                .where(docs.id == document_id)
                .values(
                    status="done",
                    error=None,
                    text=text_value,
                    page_starts=json.dumps(page_starts),
                    number_of_pages=number_of_pages,
                    chunk_count=len(chunks),
                    tokens=tokens,
                    processed_at=time.time(),
                )
            )
            _touch(conn, library_id, revision=True)
        return True

    def insert_chunks(
        self, conn: Any, library_id: str, document_id: str, chunks: list[Chunk], vectors: np.ndarray
    ) -> None:
        rows: list[dict[str, Any]] = [
            {
                "library_id": library_id,
                "document_id": document_id,
                "ordinal": ordinal,
                "page": chunk.page,
                "char_start": chunk.start,
                "char_end": chunk.end,
                "text": chunk.text,
            }
            for ordinal, chunk in enumerate(chunks)
        ]
        if not rows:
            return
        if self.dialect == "postgresql":
            # pgvector's column and the keyword index (accents and case folded here).
            dimensions = int(vectors.shape[1])
            if dimensions not in self._indexed:  # (a rollback only costs speed: still exact)
                ensure_index(conn, dimensions)
                self._indexed.add(dimensions)
            for row, vector in zip(rows, vectors, strict=True):
                row["vec"] = vector_literal(vector)
                row["search"] = normalize_for_index(row["text"])
            conn.execute(_PG_INSERT, rows)
        else:  # SQLite: the vector as a float32 blob; triggers fill the FTS5 table
            for row, vector in zip(rows, vectors, strict=True):
                row["embedding"] = vector.astype("<f4").tobytes()
            conn.execute(insert(library_chunks), rows)


SETTING = " (libraries.limits.max_attempts)"
_PG_INSERT = text(
    "WITH chunk AS (INSERT INTO library_chunks (library_id, document_id, ordinal, page, "
    "char_start, char_end, text, tsv) VALUES (:library_id, :document_id, :ordinal, :page, "
    ":char_start, :char_end, :text, to_tsvector('simple', :search)) RETURNING id) "
    "INSERT INTO library_chunk_vectors (chunk_id, library_id, vec) "
    "SELECT id, :library_id, CAST(:vec AS vector) FROM chunk"
)


def _touch(conn: Any, library_id: str, *, revision: bool) -> None:
    values: dict[str, Any] = {"updated_at": time.time()}
    if revision:
        values["revision"] = libraries.c.revision + 1
    conn.execute(update(libraries).where(libraries.c.id == library_id).values(**values))
