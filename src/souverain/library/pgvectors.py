"""Vector search on PostgreSQL: pgvector, in the database, with the access filter inside.

Each chunk's unit vector is a row of `library_chunk_vectors` (migration 0003: chunk id,
library id, `vec`), a `vector` with no fixed dimension, since each library keeps the
model it was created with; deleting a chunk deletes its vector (ON DELETE CASCADE). An
HNSW index exists per dimension, as a partial expression index (`vec::vector(384)` where
`vector_dims(vec) = 384`), made the first time chunks of that dimension are written.
Vectors are unit length, so the inner product (`<#>`, negated by pgvector) ranks like
the cosine and costs less.

A search names the libraries it may read as a subquery of the same statement
(`acl.readable`), so nothing the caller may not read is scanned. Which plan:

    small     libraries holding at most `exact_below` chunks together: an exact scan
              (their rows through the library_id index, sorted by distance)
    large     the HNSW index, with pgvector's iterative scan (relaxed order: the
              caller re-sorts), so that a filter on a few libraries still fills the list
    short     if the index gives fewer chunks than asked while the libraries hold more
              (a filter too selective for its scan budget), the exact scan answers

Nothing is kept in the gateway's memory: replicas stay stateless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    Float,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.types import UserDefinedType

from ..store.tables import libraries, library_documents
from .acl import Caller, readable

_VECTORS = table("library_chunk_vectors", column("chunk_id"), column("library_id"), column("vec"))
EXACT_BELOW = 5_000  # chunks; scanning 5,000 exactly takes a few ms, about as long as the index
MAX_EF_SEARCH = 1000  # pgvector's ceiling
_INDEX_LOCK = 0x5356_5645_4354  # an advisory lock key: one index builder at a time


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form. float32 → Python float → repr round-trips exactly."""
    return "[" + ",".join(map(repr, vector.astype(np.float32).tolist())) + "]"


def ensure_index(conn: Connection, dimensions: int) -> None:
    """The HNSW index for vectors of this dimension, made once (any replica)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INDEX_LOCK})
    conn.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS library_chunk_vectors_hnsw_{dimensions:d} "
            "ON library_chunk_vectors "
            f"USING hnsw ((vec::vector({dimensions:d})) vector_ip_ops) "
            f"WHERE vector_dims(vec) = {dimensions:d}"
        )
    )


class PgVectorIndex:
    def __init__(self, engine: Engine, *, exact_below: int = EXACT_BELOW) -> None:
        self.engine = engine
        self.exact_below = exact_below

    def forget(self, library_id: str) -> None:
        """Nothing is cached here (the VectorCache interface)."""

    def search(
        self,
        caller: Caller,
        searched: Sequence[tuple[str, int]],
        query: np.ndarray,
        limit: int,
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the best `limit` chunks of these (library, revision),
        best first; the revisions are not needed here (nothing is cached)."""
        library_ids = [library_id for library_id, _ in searched]
        if not library_ids:
            return []
        dimensions = int(query.shape[0])
        allowed = select(libraries.c.id).where(readable(caller), libraries.c.id.in_(library_ids))
        ef_search = str(min(MAX_EF_SEARCH, max(100, 2 * limit)))
        chunk_count = (
            select(func.coalesce(func.sum(library_documents.c.chunk_count), 0))
            .where(library_documents.c.library_id.in_(allowed))
            .scalar_subquery()
        )
        with self.engine.begin() as conn:
            # One round trip: the index's settings for this transaction, and the size.
            held = conn.execute(
                select(
                    func.set_config("hnsw.ef_search", ef_search, True),
                    func.set_config("hnsw.iterative_scan", "relaxed_order", True),
                    chunk_count,
                )
            ).one()[2]
            wanted = min(limit, int(held))
            if wanted == 0:
                return []
            params = {"query": vector_literal(query), "limit": limit}
            found: list[Any] = []
            if held > self.exact_below:
                # Our count decides, not the planner's estimate (stale after a bulk
                # load): with sorting disabled, the index's ordered scan is the plan.
                conn.execute(select(func.set_config("enable_sort", "off", True)))
                found = list(conn.execute(_nearest(allowed, dimensions, indexed=True), params))
                conn.execute(select(func.set_config("enable_sort", "on", True)))
            if len(found) < wanted:
                found = list(conn.execute(_nearest(allowed, dimensions, indexed=False), params))
        pairs = [(int(chunk_id), -float(distance)) for chunk_id, distance in found]
        pairs.sort(key=lambda pair: (-pair[1], pair[0]))
        return pairs


class _Vector(UserDefinedType[str]):
    """pgvector's type, for casts: `vector` or `vector(N)`."""

    cache_ok = True

    def __init__(self, dimensions: int | None = None) -> None:
        self.dimensions = dimensions

    def get_col_spec(self, **kw: Any) -> str:
        return "vector" if self.dimensions is None else f"vector({self.dimensions:d})"


def _nearest(allowed: Any, dimensions: int, *, indexed: bool) -> Any:
    # The HNSW index serves only its own expression, `vec::vector(N)`; on the plain
    # column the planner reads the libraries' rows and sorts them: exact. N is written
    # into the SQL, not bound: a prepared statement's generic plan could not prove the
    # index's predicate from a parameter, and would scan everything.
    vec = _VECTORS.c.vec
    stored = cast(vec, _Vector(dimensions)) if indexed else vec
    target = cast(bindparam("query"), _Vector(dimensions) if indexed else _Vector())
    distance = stored.op("<#>", return_type=Float)(target).label("distance")
    return (
        select(_VECTORS.c.chunk_id, distance)
        .where(
            func.vector_dims(vec) == literal_column(str(int(dimensions))),
            _VECTORS.c.library_id.in_(allowed),
        )
        .order_by(distance)
        .limit(bindparam("limit"))
    )
