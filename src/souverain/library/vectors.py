"""Exact vector search on SQLite: a float32 matrix in memory, per library.

No approximate index: numpy multiplies the query by the whole matrix (100,000 chunks of
384 dimensions in a few milliseconds, docs/libraries.md), so recall is exact and
nothing needs building. The matrix is loaded on the first search of a library and kept
with the library's `revision`; when another search finds the revision moved on (a
document added or deleted, on any replica), only the new chunks are read if none went
away, else the matrix is read again. Chunk ids are never reused, which makes the
comparison sound.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, Engine, func, select

from ..store.tables import library_chunks
from .acl import Caller

READ_BATCH = 5000


@dataclass(frozen=True, slots=True)
class _Matrix:
    revision: int
    ids: np.ndarray  # int64, ascending
    vectors: np.ndarray  # float32, one unit row per id


class VectorCache:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._matrices: dict[str, _Matrix] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def forget(self, library_id: str) -> None:
        self._matrices.pop(library_id, None)

    def matrix(self, library_id: str, revision: int) -> tuple[np.ndarray, np.ndarray]:
        cached = self._matrices.get(library_id)
        if cached is None or cached.revision != revision:
            with self._guard:
                lock = self._locks.setdefault(library_id, threading.Lock())
            with lock:  # one reader per library; the others wait for its result
                cached = self._matrices.get(library_id)
                if cached is None or cached.revision != revision:
                    cached = self._load(library_id, revision, cached)
                    self._matrices[library_id] = cached
        return cached.ids, cached.vectors

    def search(
        self, caller: Caller, searched: Iterable[tuple[str, int]], query: np.ndarray, limit: int
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the best `limit` chunks over these (library, revision).
        The caller may read them (`Searcher.libraries` found them with `acl.readable`),
        and `Searcher.hydrate` filters the chunks found by that rule again."""
        best_ids: list[np.ndarray] = []
        best_scores: list[np.ndarray] = []
        for library_id, revision in searched:
            ids, vectors = self.matrix(library_id, revision)
            if not len(ids):
                continue
            scores = vectors @ query
            if len(scores) > limit:
                top = np.argpartition(-scores, limit - 1)[:limit]
                ids, scores = ids[top], scores[top]
            best_ids.append(ids)
            best_scores.append(scores)
        if not best_ids:
            return []
        ids = np.concatenate(best_ids)
        scores = np.concatenate(best_scores)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [(int(ids[i]), float(scores[i])) for i in order]

    # ---- loading ------------------------------------------------------------------------

    def _load(self, library_id: str, revision: int, cached: _Matrix | None) -> _Matrix:
        chunks = library_chunks.c
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count()).where(chunks.library_id == library_id)
            ).scalar_one()
            if cached is not None and len(cached.ids):
                last = int(cached.ids[-1])
                kept = conn.execute(
                    select(func.count()).where(chunks.library_id == library_id, chunks.id <= last)
                ).scalar_one()
                if kept == len(cached.ids):  # nothing went away: read only the new chunks
                    ids, vectors = self._read(conn, library_id, after=last)
                    return _Matrix(
                        revision,
                        np.concatenate([cached.ids, ids]),
                        np.vstack([cached.vectors, vectors]) if len(ids) else cached.vectors,
                    )
            ids, vectors = self._read(conn, library_id, after=None)
        if len(ids) != count:  # written meanwhile: the next search reads again
            revision = -1
        return _Matrix(revision, ids, vectors)

    @staticmethod
    def _read(
        conn: Connection, library_id: str, *, after: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        chunks = library_chunks.c
        query = select(chunks.id, chunks.embedding).where(chunks.library_id == library_id)
        if after is not None:
            query = query.where(chunks.id > after)
        ids: list[int] = []
        blobs: list[bytes] = []
        result = conn.execution_options(yield_per=READ_BATCH).execute(query.order_by(chunks.id))
        for chunk_id, blob in result:
            ids.append(chunk_id)
            blobs.append(bytes(blob))
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(ids), -1)
        return np.asarray(ids, dtype=np.int64), vectors.astype(np.float32, copy=False)
