"""Hybrid search: keyword (BM25) and vector (exact cosine), fused by reciprocal rank.

    libraries  the ones asked for that the caller may read (acl.readable, in SQL); a
               library named but not readable is 404, as everywhere
    keyword    SQLite: FTS5 `bm25` ranking; PostgreSQL: `ts_rank_cd` over a tsvector
               ('simple' configuration, accents folded); work bounded and chunks with
               less than half the query's words left out (keyword.py). The access
               filter is part of the MATCH query itself.
    vector     the query's embedding against the libraries' chunk vectors: exact, in
               memory, on SQLite (vectors.py); pgvector in the database, with the
               access filter inside the statement, on PostgreSQL (pgvectors.py)
    fusion     reciprocal rank fusion: score = Σ 1 / (60 + rank) over both lists; ties
               go to the chunk closer to the query's meaning
    chunks     read back with the access filter again (a chunk id from a stale cache
               can never come back from a library the caller may not read)

Synchronous: the service runs it in a thread, once the query is embedded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine, select

from ..store.tables import libraries, library_chunks, library_documents
from .acl import Caller, not_found, readable
from .keyword import keyword_search
from .pgvectors import PgVectorIndex
from .vectors import VectorCache

RRF_K = 60
MIN_CANDIDATES = 50  # per list, before fusion


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One chunk found, with what a citation needs."""

    chunk_id: int
    library_id: str
    library_name: str
    document_id: str
    document_name: str
    page: int | None  # 1-based; None for formats without pages (DOCX, HTML, text)
    char_start: int  # in the document's text (`text_content`)
    char_end: int
    text: str
    score: float  # fused (reciprocal rank)
    keyword_rank: int | None  # 1-based, None when not in that list
    vector_rank: int | None
    similarity: float | None  # cosine of the query and the chunk

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "library_id": self.library_id,
            "library_name": self.library_name,
            "document_id": self.document_id,
            "document_name": self.document_name,
            "page": self.page,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "text": self.text,
            "score": round(self.score, 6),
            "keyword_rank": self.keyword_rank,
            "vector_rank": self.vector_rank,
            "similarity": None if self.similarity is None else round(self.similarity, 6),
        }


@dataclass(frozen=True, slots=True)
class Searchable:
    id: str
    name: str
    revision: int
    embedding_model: str


class VectorIndex(Protocol):
    """The vector leg: vectors.VectorCache (SQLite) or pgvectors.PgVectorIndex."""

    def search(
        self, caller: Caller, searched: Sequence[tuple[str, int]], query: np.ndarray, limit: int
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the best `limit` chunks of these (library id, revision)."""
        ...

    def forget(self, library_id: str) -> None:
        """The library is gone: drop what is kept of it."""
        ...


def vector_index(engine: Engine) -> VectorIndex:
    """pgvector on PostgreSQL, exact in-memory search on SQLite."""
    if engine.dialect.name == "postgresql":
        return PgVectorIndex(engine)
    return VectorCache(engine)


class Searcher:
    def __init__(self, engine: Engine, vectors: VectorIndex) -> None:
        self.engine = engine
        self.vectors = vectors
        self.dialect = engine.dialect.name

    def libraries(self, caller: Caller, library_ids: Sequence[str] | None) -> list[Searchable]:
        query = select(
            libraries.c.id, libraries.c.name, libraries.c.revision, libraries.c.embedding_model
        ).where(readable(caller))
        if library_ids is not None:
            query = query.where(libraries.c.id.in_(list(library_ids)))
        with self.engine.connect() as conn:
            rows = [Searchable(*row) for row in conn.execute(query.order_by(libraries.c.id))]
        found = {row.id for row in rows}
        for library_id in library_ids or ():
            if library_id not in found:
                raise not_found(library_id)
        return rows

    def search(
        self,
        caller: Caller,
        targets: list[Searchable],
        query: str,
        query_vectors: dict[str, np.ndarray],
        top_k: int,
    ) -> list[SearchHit]:
        if not targets:
            return []
        ids = [target.id for target in targets]
        depth = max(MIN_CANDIDATES, 4 * top_k)
        keyword = self.keyword(caller, ids, query, depth)
        similar: list[tuple[int, float]] = []
        for model, vector in query_vectors.items():
            chosen = [(t.id, t.revision) for t in targets if t.embedding_model == model]
            similar.extend(self.vectors.search(caller, chosen, vector, depth))
        similar.sort(key=lambda pair: -pair[1])
        return self.hydrate(caller, ids, fuse(keyword, similar[:depth], top_k))

    def keyword(self, caller: Caller, library_ids: list[str], query: str, limit: int) -> list[int]:
        allowed = select(libraries.c.id).where(readable(caller), libraries.c.id.in_(library_ids))
        with self.engine.connect() as conn:
            return keyword_search(conn, allowed, query, limit)

    def hydrate(
        self, caller: Caller, library_ids: list[str], fused: list[tuple[int, float, dict[str, Any]]]
    ) -> list[SearchHit]:
        if not fused:
            return []
        chunks, docs = library_chunks.c, library_documents.c
        statement = (
            select(
                chunks.id,
                chunks.library_id,
                libraries.c.name,
                chunks.document_id,
                docs.name,
                chunks.page,
                chunks.char_start,
                chunks.char_end,
                chunks.text,
            )
            .join(library_documents, docs.id == chunks.document_id)
            .join(libraries, libraries.c.id == chunks.library_id)
            .where(
                chunks.id.in_([chunk_id for chunk_id, _, _ in fused]),
                libraries.c.id.in_(library_ids),
                readable(caller),
            )
        )
        with self.engine.connect() as conn:
            rows = {row[0]: row for row in conn.execute(statement)}
        hits = []
        for chunk_id, score, ranks in fused:
            row = rows.get(chunk_id)
            if row is None:  # deleted since, or not readable: never returned
                continue
            hits.append(SearchHit(*row, score=score, **ranks))
        return hits


def fuse(
    keyword: list[int], similar: list[tuple[int, float]], top_k: int
) -> list[tuple[int, float, dict[str, Any]]]:
    """Reciprocal rank fusion of the two ranked lists: (chunk id, score, ranks), best first."""
    scores: dict[int, float] = {}
    ranks: dict[int, dict[str, Any]] = {}
    for rank, chunk_id in enumerate(keyword, start=1):
        scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
        ranks.setdefault(chunk_id, {"keyword_rank": None, "vector_rank": None, "similarity": None})[
            "keyword_rank"
        ] = rank
    for rank, (chunk_id, similarity) in enumerate(similar, start=1):
        scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
        entry = ranks.setdefault(
            chunk_id, {"keyword_rank": None, "vector_rank": None, "similarity": None}
        )
        entry["vector_rank"], entry["similarity"] = rank, similarity

    def order(chunk_id: int) -> tuple[float, float, int]:
        similarity = ranks[chunk_id]["similarity"]
        return (-scores[chunk_id], -(similarity if similarity is not None else -2.0), chunk_id)

    best = sorted(scores, key=order)[:top_k]
    return [(chunk_id, scores[chunk_id], ranks[chunk_id]) for chunk_id in best]
