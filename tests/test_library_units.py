"""Document libraries without a server: formats, chunks, keyword words, access rules, and
the stores and hybrid search on real SQLite and PostgreSQL databases (vectors made up)."""

from __future__ import annotations

import io
import itertools
import time
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, insert, select, text

from souverain.config import OcrConfig
from souverain.context import Principal
from souverain.errors import InvalidRequest, NotFound, PermissionDenied
from souverain.library.acl import Caller, level_of
from souverain.library.chunker import assemble, chunk_pages, page_range, split
from souverain.library.documents import DocumentStore
from souverain.library.embedder import principal_from_json, principal_to_json, unit
from souverain.library.parsers import detect, html_text, parse
from souverain.library.pgvectors import PgVectorIndex
from souverain.library.search import Searcher, fuse, vector_index
from souverain.library.search_text import fold, fts5_query, query_terms, tsquery
from souverain.library.store import LibraryStore
from souverain.library.vectors import VectorCache
from souverain.quotas.limits import Demand, Limits, Scope
from souverain.store.database import open_database, upgrade
from souverain.store.tables import libraries, library_chunks, teams, tenants, users

from .test_ocr_documents import INVOICE, TextPage, text_pdf

OCR = OcrConfig()


# ---- formats -------------------------------------------------------------------------------


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Règlement intérieur", 1)
    document.add_paragraph("Les congés sont posés trois semaines à l'avance.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Jour", "Horaire"
    table.cell(1, 0).text, table.cell(1, 1).text = "Lundi", "9h-17h"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_detect_by_content_not_by_name() -> None:
    pdf = text_pdf([INVOICE])
    assert detect(pdf, "scan.txt").kind == "pdf"
    assert detect(docx_bytes(), "x.bin").kind == "docx"
    assert detect(b"\x89PNG\r\n\x1a\n....", "a.png").mime_type == "image/png"
    assert detect(b"<!DOCTYPE html><p>x</p>", "page").kind == "html"
    assert detect("# Titre\n\nCafé".encode(), "notes.md").kind == "markdown"
    assert detect("plain café".encode("cp1252"), "a.txt").kind == "text"
    for data, words in [
        (b"\x00\x01\x02\x03binary", "binary data"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "old Office"),
        (b"PK\x03\x04garbage", "damaged ZIP"),
    ]:
        with pytest.raises(InvalidRequest, match=words) as caught:
            detect(data, "file")
        assert caught.value.code == "unsupported_document_type"


def test_parse_each_format() -> None:
    pdf = parse(text_pdf([INVOICE, TextPage([["Page deux."]])]), "pdf", ocr=None, config=OCR)
    assert pdf.paged and len(pdf.pages) == 2
    assert pdf.pages[0].startswith("# Facture F-2026-118")
    assert "Échéance : 15 mars 2026" in pdf.pages[0] and pdf.pages[1] == "Page deux."
    word = parse(docx_bytes(), "docx", ocr=None, config=OCR).pages[0]
    assert word.startswith("# Règlement intérieur\n\nLes congés")
    assert "Lundi | 9h-17h" in word
    assert parse(b"a\r\n\r\n\r\n\r\nb  \n", "text", ocr=None, config=OCR).pages == ["a\n\nb"]


def test_html_loses_markup_scripts_and_styles() -> None:
    page = (
        "<html><head><title>Guide</title><style>p{color:red}</style></head><body>"
        "<script>alert('x')</script><h2>Accès</h2><p>Badge&nbsp;requis &amp; visible.</p>"
        "<ul><li>un</li><li>deux</li></ul><table><tr><td>A</td><td>B</td></tr></table></body>"
    )
    out = html_text(page)
    assert out.startswith("# Guide")
    assert "\n\n## Accès\n\nBadge requis & visible.\n\n" in out
    assert "alert" not in out and "color" not in out
    assert "- un\n- deux" in out and "A | B" in out


def test_corrupt_documents_raise_clear_errors() -> None:
    with pytest.raises(InvalidRequest, match="PDF cannot be read"):
        parse(b"%PDF-1.4\nthis is not a pdf", "pdf", ocr=None, config=OCR)
    with pytest.raises(InvalidRequest, match="Word document cannot be read"):
        parse(b"PK\x03\x04" + b"\x00" * 64, "docx", ocr=None, config=OCR)


# ---- chunks --------------------------------------------------------------------------------


def test_chunks_keep_exact_offsets_and_pages() -> None:
    pages = ["Intro.\n\n" + "Une phrase de test. " * 80, "", "Dernière page courte."]
    chunks = chunk_pages(pages, paged=True, size=300, overlap=60)
    full, starts = assemble(pages)
    assert all(full[c.start : c.end] == c.text for c in chunks)
    assert all(len(c.text) <= 300 for c in chunks)
    assert {c.page for c in chunks} == {1, 3}
    assert chunks[-1].text == "Dernière page courte." and chunks[-1].page == 3
    assert page_range(full, starts, 3, 3) == "Dernière page courte."
    assert page_range(full, starts, 1, 1) == pages[0]


def test_chunks_cut_at_paragraphs_then_sentences_and_overlap() -> None:
    text = "Alpha beta gamma. " * 10 + "\n\n" + "Delta epsilon. " * 30
    spans = split(text, size=250, overlap=40)
    first = text[spans[0][0] : spans[0][1]]
    assert first.endswith("gamma.") and "Delta" not in first  # the paragraph boundary
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start < end  # overlap
        assert text[start - 1].isspace()  # at a word start
    assert split("   ", size=250, overlap=0) == []
    one_word = "x" * 700
    assert [end - start for start, end in split(one_word, size=300, overlap=0)] == [300, 300, 100]


# ---- keyword words, fusion, principals ----------------------------------------------------------


def test_query_terms_fold_and_drop_stopwords() -> None:
    assert query_terms("Quelle est l'échéance de la facture ?") == ["échéance", "facture"]
    assert query_terms("the the") == ["the"]  # nothing else: keep them
    assert fold("Straße MÜNCHEN échéance") == "strasse munchen echeance"
    assert fts5_query(['a"b', "c"]) == '"a""b" OR "c"'
    assert tsquery(["Échéance", "a-b", "x_y"]) == "echeance | ab | xy"


def test_reciprocal_rank_fusion() -> None:
    fused = fuse([7, 3, 9], [(3, 0.9), (5, 0.8)], top_k=3)
    assert [chunk_id for chunk_id, _, _ in fused] == [3, 7, 5]
    assert fused[0][2] == {"keyword_rank": 2, "vector_rank": 1, "similarity": 0.9}


def test_principal_survives_a_restart_of_the_worker() -> None:
    principal = Principal(
        key_id=4,
        name="k",
        role="developer",
        tenant="acme",
        subject="key:4",
        tenant_id=2,
        user_id=9,
        team="payments",
        team_id=3,
        teams=("payments", "risk"),
        models=frozenset({"e5"}),
        endpoints=frozenset({"libraries"}),
        quotas=(Demand(Scope("team", "3", "payments"), Limits(rpm=5)),),
    )
    assert principal_from_json(principal_to_json(principal)) == principal


# ---- access rules ------------------------------------------------------------------------------


class Row:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


LIBRARY = Row(id="L", tenant_id=1, created_by="key:5", created_by_user_id=5)
SHARES = [
    Row(target_type="team", target_id=30, level="viewer"),
    Row(target_type="user", target_id=7, level="editor"),
    Row(target_type="tenant", target_id=2, level="editor"),  # another tenant: never matches
]


@pytest.mark.parametrize(
    ("role", "tenant_id", "user_id", "team_ids", "subject", "expected"),
    [
        ("owner", 9, None, (), "key:1", "owner"),  # the platform owner
        ("admin", 1, 40, (), "key:40", "owner"),  # the tenant's admin
        ("admin", 2, 41, (), "key:41", None),  # another tenant's admin
        ("developer", 1, 5, (), "key:77", "owner"),  # the creator, with another key
        ("user", 1, 6, (30,), "key:6", "viewer"),  # a member of a team it is shared with
        ("user", 1, 7, (30,), "key:7", "editor"),  # shared with the user: the best level
        ("user", 1, 8, (31,), "key:8", None),  # no share
        ("auditor", 1, 5, (), "key:5", None),  # even the creator's user, as an auditor
    ],
)
def test_levels(
    role: str,
    tenant_id: int,
    user_id: int | None,
    team_ids: tuple[int, ...],
    subject: str,
    expected: str | None,
) -> None:
    principal = Principal(key_id=1, name="k", role=role, subject=subject, user_id=user_id)
    assert level_of(Caller(principal, tenant_id, team_ids), LIBRARY, SHARES) == expected


# ---- the stores and search, on both databases -------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Any:
    engine = open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    upgrade(engine)
    yield engine
    engine.dispose()


def _caller(engine: Any, name: str, role: str = "developer") -> Caller:
    now = time.time()
    with engine.begin() as conn:
        tenant_id = conn.execute(select(tenants.c.id).where(tenants.c.name == "default")).scalar()
        user_id = conn.execute(
            insert(users)
            .values(tenant_id=tenant_id, kind="user", name=name, role=role, created_at=now)
            .returning(users.c.id)
        ).scalar_one()
        conn.execute(insert(teams).values(tenant_id=tenant_id, name=f"team-{name}", created_at=now))
    principal = Principal(
        key_id=user_id,
        name=name,
        role=role,
        subject=f"key:{user_id}",
        user_id=user_id,
        teams=(f"team-{name}",),
    )
    return LibraryStore(engine).caller(principal)


def _library(engine: Any, caller: Caller, texts: list[str], vectors: np.ndarray) -> str:
    store, documents = LibraryStore(engine), DocumentStore(engine)
    library_id = store.create(
        caller,
        name="lib",
        description=None,
        owner_type="User",
        chunk_size=None,
        embedding_model="m",
    )
    document_id = documents.add(
        library_id,
        name="doc.md",
        kind="markdown",
        mime_type="text/md",
        extension="md",
        data=b"x",
        uploaded_by=caller.label,
        uploaded_by_user_id=None,
        job={},
    )
    assert documents.claim(document_id) is not None
    pages = texts
    chunks = chunk_pages(pages, paged=True, size=1000, overlap=0)
    full, starts = assemble(pages)
    assert documents.finish(
        document_id,
        text_value=full,
        page_starts=starts,
        number_of_pages=1,
        chunks=chunks,
        vectors=vectors,
        tokens=1,
    )
    return library_id


def test_hybrid_search_with_the_access_filter_inside(engine: Any) -> None:
    alice, bob = _caller(engine, "alice"), _caller(engine, "bob")
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(3, 8)))
    texts = ["L'échéance de la facture est le 15 mars.", "Straße in München.", "Sans rapport."]
    library_id = _library(engine, alice, texts, vectors)
    searcher = Searcher(engine, vector_index(engine))
    targets = searcher.libraries(alice, None)
    assert [t.id for t in targets] == [library_id]
    # Accents folded on both databases; the vector leg finds chunk 3 by its vector.
    hits = searcher.search(alice, targets, "ECHEANCE facture", {"m": vectors[2]}, top_k=2)
    assert hits[0].text == texts[0] and hits[0].keyword_rank == 1 and hits[0].page == 1
    assert {hit.text for hit in hits} == {texts[0], texts[2]}
    assert hits[0].document_name == "doc.md" and hits[0].library_name == "lib"
    # Bob may not read it: no library, 404 when named, and even a direct keyword query
    # with its id finds nothing (the filter is inside the SQL).
    assert searcher.libraries(bob, None) == []
    with pytest.raises(NotFound):
        searcher.libraries(bob, [library_id])
    assert searcher.keyword(bob, [library_id], "facture", 10) == []
    assert searcher.hydrate(bob, [library_id], [(1, 1.0, {})]) == []
    # A share to bob's team opens it.
    LibraryStore(engine).share(
        LibraryStore(engine).access(alice, library_id, "owner").library,
        alice,
        "team",
        bob.team_ids[0],
        "viewer",
    )
    assert searcher.keyword(bob, [library_id], "München", 10) != []
    with pytest.raises(PermissionDenied):
        LibraryStore(engine).access(bob, library_id, "editor")


def test_vector_cache_follows_changes(engine: Any) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the in-memory vector cache serves SQLite (PostgreSQL: pgvector)")
    alice = _caller(engine, "carol")
    rng = np.random.default_rng(1)
    first = unit(rng.normal(size=(2, 4)))
    library_id = _library(engine, alice, ["one", "two"], first)
    cache = VectorCache(engine)
    revision = LibraryStore(engine).access(alice, library_id, "viewer").library.revision
    ids, matrix = cache.matrix(library_id, revision)
    assert len(ids) == 2 and np.allclose(matrix, first)
    # More chunks: read incrementally; a deleted document: read again.
    documents = DocumentStore(engine)
    document_id = documents.add(
        library_id,
        name="b",
        kind="text",
        mime_type="text/plain",
        extension=None,
        data=b"y",
        uploaded_by="x",
        uploaded_by_user_id=None,
        job={},
    )
    documents.claim(document_id)
    documents.finish(
        document_id,
        text_value="three",
        page_starts=[0],
        number_of_pages=None,
        chunks=chunk_pages(["three"], paged=False, size=500, overlap=0),
        vectors=unit(rng.normal(size=(1, 4))),
        tokens=1,
    )
    revision = LibraryStore(engine).access(alice, library_id, "viewer").library.revision
    assert len(cache.matrix(library_id, revision)[0]) == 3
    assert documents.delete(library_id, document_id)
    revision = LibraryStore(engine).access(alice, library_id, "viewer").library.revision
    assert len(cache.matrix(library_id, revision)[0]) == 2
    # Deleting the library removes every chunk, and the keyword index with them.
    LibraryStore(engine).delete(library_id)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(library_chunks)).scalar() == 0
        if engine.dialect.name == "sqlite":
            fts = "SELECT count(*) FROM library_chunks_fts WHERE library_chunks_fts MATCH 'one'"
            assert conn.execute(text(fts)).scalar() == 0


def test_keyword_work_is_bounded_by_the_rarest_words(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the budget, only words rare enough find candidates; common ones still rank."""
    from souverain.library import keyword

    monkeypatch.setattr(keyword, "BUDGETS", {"sqlite": 1, "postgresql": 1})
    owner = _caller(engine, "dave")
    texts = ["contrat client signé", "contrat fournisseur", "contrat client annulé"]
    library_id = _library(engine, owner, texts, unit(np.eye(3, 4)))
    searcher = Searcher(engine, vector_index(engine))
    ranked = searcher.keyword(owner, [library_id], "contrat annulé", 10)
    assert [_text_of(engine, chunk_id) for chunk_id in ranked] == ["contrat client annulé"]
    assert searcher.keyword(owner, [library_id], "contrat client", 10) == []  # both common
    assert searcher.keyword(owner, [library_id], "fournisseur inconnu absent", 10) == []  # 1 of 3
    monkeypatch.setattr(keyword, "BUDGETS", {"sqlite": 100, "postgresql": 100})
    assert len(searcher.keyword(owner, [library_id], "contrat client", 10)) == 3


@pytest.fixture
def pg_engine() -> Any:
    from .databases import postgres_database

    for url in postgres_database():
        engine = open_database(url)
        upgrade(engine)
        yield engine
        engine.dispose()


def test_pgvector_index_and_exact_scan_agree(pg_engine: Any) -> None:
    """On PostgreSQL the vectors are searched by pgvector: through the HNSW index for
    large libraries and exactly for small ones; both find the true neighbours, and a
    library the caller may not read is never scanned."""
    alice, bob = _caller(pg_engine, "erin"), _caller(pg_engine, "frank")
    rng = np.random.default_rng(5)
    vectors = unit(rng.normal(size=(300, 16)))
    texts = [f"chunk {i}" for i in range(300)]
    library_id = _library(pg_engine, alice, texts, vectors)
    other_id = _library(pg_engine, bob, texts[:50], vectors[:50])
    with pg_engine.connect() as conn:
        indexes = (
            conn.execute(
                text(
                    "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'library_chunk_vectors_hnsw_%'"
                )
            )
            .scalars()
            .all()
        )
        ids = (
            conn.execute(
                select(library_chunks.c.id)
                .where(library_chunks.c.library_id == library_id)
                .order_by(library_chunks.c.id)
            )
            .scalars()
            .all()
        )
    assert indexes == ["library_chunk_vectors_hnsw_16"]
    # The index serves the statement the search sends (its expression and predicate):
    # with no other way to the rows (the library_id index dropped, in a transaction
    # rolled back), the planner picks it.
    from souverain.library.pgvectors import _nearest, vector_literal

    allowed = select(libraries.c.id).where(libraries.c.id == library_id)
    with pg_engine.connect() as conn, conn.begin() as transaction:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        conn.execute(text("DROP INDEX ix_library_chunk_vectors_library_id"))
        statement = _nearest(allowed, 16, indexed=True).compile(pg_engine)
        plan = (
            conn.exec_driver_sql(
                "EXPLAIN " + str(statement),
                {**statement.params, "query": vector_literal(vectors[0]), "limit": 10},
            )
            .scalars()
            .all()
        )
        transaction.rollback()
    assert any("library_chunk_vectors_hnsw_16" in line for line in plan), plan
    exact = PgVectorIndex(pg_engine)  # 300 chunks: below exact_below, an exact scan
    indexed = PgVectorIndex(pg_engine, exact_below=0)  # always the HNSW index first
    searched = [(library_id, 0)]
    for query in vectors[:20]:
        truth = [ids[i] for i in np.argsort(-(vectors @ query))[:10]]
        found = exact.search(alice, searched, query, 10)
        assert [chunk_id for chunk_id, _ in found] == truth
        assert found[0][1] == pytest.approx(1.0, abs=1e-5)  # the cosine of itself
        near = indexed.search(alice, searched, query, 10)
        assert len({chunk_id for chunk_id, _ in near} & set(truth)) >= 9
        assert [s for _, s in near] == sorted((s for _, s in near), reverse=True)
    # Bob's library holds the same vectors, but alice may not read it: asking for it
    # finds nothing, and asking for both finds only alice's chunks.
    assert exact.search(alice, [(other_id, 0)], vectors[0], 10) == []
    both = indexed.search(alice, [(library_id, 0), (other_id, 0)], vectors[0], 50)
    assert len(both) == 50 and {chunk_id for chunk_id, _ in both} <= set(ids)
    # Vectors of another dimension live beside them with their own index.
    _library(pg_engine, alice, ["autre"], unit(rng.normal(size=(1, 8))))
    assert len(indexed.search(alice, searched, vectors[0], 10)) == 10
    with pg_engine.connect() as conn:
        assert (
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'library_chunk_vectors_hnsw_%'"
                )
            ).scalar()
            == 2
        )


def _text_of(engine: Any, chunk_id: int) -> str:
    with engine.connect() as conn:
        query = select(library_chunks.c.text).where(library_chunks.c.id == chunk_id)
        return str(conn.execute(query).scalar_one())
