"""Documents and their chunks in the database (synchronous: callers use a thread).

A document's life: `todo` (uploaded) → `in_progress` (claimed by one replica's worker,
which renews its lease) → `done` with its text and chunks, all written in one
transaction, or `error` with a message (`missing_content` when it holds no text).
Each claim counts an attempt; a parser crash sends the document back to `todo` with the
reason, and once `max_attempts` claims have not finished it (crashes, or a gateway that
died while processing it) the document is `error` instead of being claimed again.
Deleting a document removes its bytes, text, chunks and vectors, and the keyword
index entries with them; the library's `revision` moves on, which tells every
replica's vector cache (SQLite) to drop what it had.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, Row, case, delete, func, insert, or_, select, text, update

from ..store.tables import libraries, library_chunks, library_documents
from .chunker import Chunk
from .pgvectors import ensure_index, vector_literal
from .search_text import normalize_for_index

LEASE_S = 300.0  # a claim not renewed for this long is abandoned (its replica died)
SORTABLE = {"created_at", "name", "size", "last_processed_at", "processed_at"}
_SUMMARY = [c for c in library_documents.c if c.name not in ("content", "text", "job")]
UNFINISHED = "the gateway stopped while processing it (a crash, or out of memory?)"


class DocumentStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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
                    job=json.dumps(job),
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
        with self.engine.begin() as conn:
            conn.execute(delete(library_chunks).where(library_chunks.c.document_id == document_id))
            gone = conn.execute(
                delete(library_documents).where(
                    library_documents.c.id == document_id,
                    library_documents.c.library_id == library_id,
                )
            ).rowcount
            _touch(conn, library_id, revision=True)
        return bool(gone)

    # ---- the ingest worker ------------------------------------------------------------------

    def requeue(self, library_id: str, document_id: str, job: dict[str, Any]) -> None:
        values = {"status": "todo", "error": None, "job": json.dumps(job), "claimed_at": None}
        self.update(library_id, document_id, {**values, "attempts": 0})

    def claim(self, document_id: str, max_attempts: int = 3) -> Row[Any] | None:
        """Take a document to process (`todo`, or abandoned by a dead replica), counting
        the attempt; None when another worker has it, it is gone, or it has had its
        `max_attempts` (then it becomes `error`, saying so)."""
        docs = library_documents.c
        now = time.time()
        takeable = or_(
            docs.status == "todo",
            (docs.status == "in_progress") & (docs.claimed_at < now - LEASE_S),
        )
        with self.engine.begin() as conn:
            seen = conn.execute(
                select(docs.attempts, docs.error).where(docs.id == document_id, takeable)
            ).first()
            if seen is None:
                return None
            mine = (docs.id == document_id) & takeable & (docs.attempts == seen.attempts)
            if seen.attempts >= max_attempts:
                why = f"{seen.error or UNFINISHED}; gave up after {seen.attempts} attempts"
                conn.execute(
                    update(library_documents)
                    .where(mine)
                    .values(status="error", error=(why + _SETTING)[:2000], processed_at=now,
                            claimed_at=None, job=None)
                )  # fmt: skip
                return None
            taken = conn.execute(
                update(library_documents)
                .where(mine)
                .values(
                    status="in_progress", claimed_at=now, error=None, attempts=seen.attempts + 1
                )
            ).rowcount
            if not taken:
                return None
            return conn.execute(
                select(library_documents, libraries.c.embedding_model, libraries.c.chunk_size)
                .join(libraries, libraries.c.id == docs.library_id)
                .where(docs.id == document_id)
            ).first()

    def renew(self, document_ids: Sequence[str]) -> None:
        if document_ids:
            self._set_many(document_ids, {"claimed_at": time.time()}, "in_progress")

    def release(self, document_ids: Sequence[str]) -> None:
        """Give back documents this process had claimed (shutting down): todo again, and
        the interrupted attempt does not count."""
        docs = library_documents.c
        earlier = case((docs.attempts > 0, docs.attempts - 1), else_=0)
        if document_ids:
            values = {"status": "todo", "claimed_at": None, "attempts": earlier}
            self._set_many(document_ids, values, "in_progress")

    def retry_or_fail(self, document_id: str, message: str, max_attempts: int) -> None:
        """The parser died on this document: todo again with the reason, or `error` once
        it has had its attempts."""
        docs = library_documents.c
        with self.engine.begin() as conn:
            row = conn.execute(
                select(docs.attempts).where(docs.id == document_id, docs.status == "in_progress")
            ).first()
            if row is None:
                return  # deleted, or reclaimed meanwhile
            if row.attempts >= max_attempts:
                why = f"{message}; gave up after {row.attempts} attempts{_SETTING}"
                values: dict[str, Any] = {"status": "error", "processed_at": time.time(),
                                          "job": None, "error": why[:2000]}  # fmt: skip
            else:
                why = f"{message}; attempt {row.attempts} of {max_attempts}, to be tried again"
                values = {"status": "todo", "error": why[:2000]}
            conn.execute(
                update(library_documents)
                .where(docs.id == document_id, docs.status == "in_progress")
                .values(claimed_at=None, **values)
            )

    def _set_many(self, document_ids: Sequence[str], values: dict[str, Any], status: str) -> None:
        docs = library_documents.c
        with self.engine.begin() as conn:
            conn.execute(
                update(library_documents)
                .where(docs.id.in_(list(document_ids)), docs.status == status)
                .values(**values)
            )

    def waiting(self, limit: int = 500) -> list[Any]:
        """Documents no live worker holds: todo, or in progress with an expired lease."""
        docs = library_documents.c
        stale = time.time() - LEASE_S
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(docs.id, docs.job)
                    .where(
                        or_(
                            docs.status == "todo",
                            (docs.status == "in_progress") & (docs.claimed_at < stale),
                        )
                    )
                    .order_by(docs.created_at)
                    .limit(limit)
                ).all()
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
                    claimed_at=None,
                    job=None,
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
                    claimed_at=None,
                    job=None,
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


_SETTING = " (libraries.limits.max_attempts)"
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
