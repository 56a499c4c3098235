"""Keyword search (BM25) with bounded work: SQLite FTS5, or a PostgreSQL tsvector.

A query is an OR of its words (search_text.py), and a chunk counts only if it holds at
least half of them (`MIN_COVERAGE`): one shared word ("days", "euros") is no evidence.
Ranking costs about 1 µs per matching chunk with FTS5's bm25 and 10 µs with
PostgreSQL's ts_rank_cd, and a common word matches most of a large library: ranking
every match of "contrat" in 100,000 chunks takes 100 ms. So candidates come first:

1. How many chunks hold each word. Not needed when the libraries searched hold at most
   a budget of chunks in all (`BUDGETS`). Else SQLite counts each word up to the
   budget (FTS5 reads only its index), and PostgreSQL estimates it from the planner's
   statistics of the tsvector column (`pg_stats.most_common_elems`, kept by
   autovacuum's ANALYZE), counting like SQLite while there are none.
2. A chunk with at least `needed` of the n words that occur must hold one of the
   n - needed + 1 rarest (pigeonhole): those words find the candidates, rarest
   first, while their counts add up to at most the budget. A word in more chunks than
   that is too common to find candidates (it still counts in the ranking and in the
   coverage); a query made only of such words gets no keyword hits at all, and the
   vector search answers it alone.
3. The candidates are ranked by BM25 over all the query's words, best `limit` kept.

The access filter (`allowed`: the libraries the caller may read, as a subquery) is in
every statement.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
)

from ..store.tables import library_chunks, library_documents
from .search_text import fold, fts5_query, query_terms, tsquery, words_of

MIN_COVERAGE = 0.5  # of the query's words, for a keyword hit to count
# Candidate chunks ranked at most: about 1 µs each on SQLite (FTS5 bm25), 10 µs on
# PostgreSQL (ts_rank_cd, which reads each tsvector).
BUDGETS = {"sqlite": 4000, "postgresql": 1000}
_FTS = table(
    "library_chunks_fts", column("rowid"), column("text"), column("library_id"), column("rank")
)
_MATCH: Any = literal_column("library_chunks_fts")
_TSV: Any = literal_column("library_chunks.tsv")
# most_common_elem_freqs: one per element, then the lowest and highest of them, then nulls.
_STATISTICS = text(
    "SELECT most_common_elems::text::text[] AS elems, most_common_elem_freqs AS freqs "
    "FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'library_chunks' "
    "AND attname = 'tsv'"
)


def keyword_search(conn: Connection, allowed: Select[Any], query: str, limit: int) -> list[int]:
    """Chunk ids, best first, from the libraries in `allowed`."""
    terms = [term for term in query_terms(query) if tsquery([term])]
    if not terms:
        return []
    sqlite = conn.dialect.name == "sqlite"
    budget = BUDGETS.get(conn.dialect.name, 1000)
    needed = max(1, math.ceil(MIN_COVERAGE * len(terms)))
    scope = _scope(conn, allowed)
    if scope <= budget:  # few chunks: rank every match
        counts = {term: 1 for term in terms}
    else:
        estimated = None if sqlite else _estimates(conn, terms, scope)
        counts = estimated or {term: _count(conn, term, budget) for term in terms}
    present = sorted((term for term in terms if counts[term]), key=lambda term: counts[term])
    if len(present) < needed:
        return []
    finders: list[str] = []
    total = 0
    for term in present[: len(present) - needed + 1]:
        if total + counts[term] > budget:
            break
        finders.append(term)
        total += counts[term]
    if not finders:
        return []
    statement = _ranked_sqlite if sqlite else _ranked_postgres
    rows = conn.execute(statement(finders, terms, allowed, limit)).all()
    wanted = {fold(term) for term in terms}
    return [int(row[0]) for row in rows if len(wanted & words_of(row[1])) >= needed]


def _scope(conn: Connection, allowed: Select[Any]) -> int:
    """Chunks in the libraries searched (from the documents: cheaper than the chunks)."""
    docs = library_documents.c
    total = select(func.coalesce(func.sum(docs.chunk_count), 0)).where(docs.library_id.in_(allowed))
    return int(conn.execute(total).scalar_one())


def _estimates(conn: Connection, terms: list[str], scope: int) -> dict[str, int] | None:
    """Chunks holding each word, estimated from PostgreSQL's statistics; None if none."""
    row = conn.execute(_STATISTICS).first()
    if row is None or not row.elems or not row.freqs:
        return None
    frequency = dict(zip(row.elems, row.freqs, strict=False))
    rarest = float(row.freqs[len(row.elems)])  # the lowest frequency it keeps
    return {term: max(1, round(scope * frequency.get(tsquery([term]), rarest))) for term in terms}


def _count(conn: Connection, term: str, budget: int) -> int:
    """How many chunks of any library hold the word (an upper bound for those searched:
    filtering by library would read every row), counted up to the budget + 1."""
    if conn.dialect.name == "sqlite":
        found: Select[Any] = select(_FTS.c.rowid).where(_MATCH.op("MATCH")(fts5_query([term])))
    else:
        found = (
            select(literal(1))
            .select_from(library_chunks)
            .where(_TSV.op("@@")(func.to_tsquery("simple", tsquery([term]))))
        )
    capped = found.limit(budget + 1).subquery()
    return int(conn.execute(select(func.count()).select_from(capped)).scalar_one())


def _ranked_sqlite(
    finders: list[str], terms: list[str], allowed: Select[Any], limit: int
) -> Select[Any]:
    # Matching: any finder. The conjunction with every word changes no match, but makes
    # bm25 score all of them.
    expression = f"({fts5_query(finders)}) AND ({fts5_query(terms)})"
    return (
        select(_FTS.c.rowid, _FTS.c.text)
        .where(_MATCH.op("MATCH")(expression), _FTS.c.library_id.in_(allowed))
        .order_by(_FTS.c.rank)
        .limit(limit)
    )


def _ranked_postgres(
    finders: list[str], terms: list[str], allowed: Select[Any], limit: int
) -> Select[Any]:
    # The index finds the candidates first (MATERIALIZED): the planner, not knowing which
    # libraries `allowed` holds, might otherwise read a whole library and test each row.
    chunks = library_chunks.c
    matched = (
        select(chunks.id, chunks.library_id, chunks.text, _TSV.label("tsv"))
        .where(_TSV.op("@@")(func.to_tsquery("simple", tsquery(finders))))
        .cte("matched")
        .prefix_with("MATERIALIZED")
    )
    every = func.to_tsquery("simple", tsquery(terms))
    return (
        select(matched.c.id, matched.c.text)
        .where(matched.c.library_id.in_(allowed))
        .order_by(func.ts_rank_cd(matched.c.tsv, every).desc(), matched.c.id)
        .limit(limit)
    )
