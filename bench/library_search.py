"""Document libraries: ingest speed, embedding throughput, search latency and recall.

1. Ingest of text PDFs, without embeddings: a generated PDF of `--pages` dense pages
   (about 3,600 characters each) through the worker's own steps: parse (pdfium text
   layer + layout), chunk, and write text, chunks, vectors and keyword index (SQLite).
   Scanned pages: an image-only PDF of `--scanned-pages` pages as a scanner makes them
   (300 dpi, rotated 0.4 degrees, noise, JPEG 60; the "scan" page of ocr_accuracy.py),
   parsed by the same code with OCR, and the character accuracy of what it read.
2. Embeddings through the pipeline (the embedded multilingual-e5-small, as a library's
   worker calls it): passages/s on those chunks, and the latency of one query.
3. Search latency at each of `--sizes` chunks in one library (synthetic text from a
   Zipf vocabulary, unit vectors of 384 dimensions around topics; PostgreSQL analyzed after
   the load, as autovacuum does), SQLite and PostgreSQL:
   hybrid (keyword + vector + fusion + reading the chunks back), and each leg alone;
   the query's embedding is not included (see 2). Recall@10 of the vector leg against
   brute-force float64 search, and how much of that exact top 10 the hybrid top 10 keeps.
4. A labelled set (bench/data/library_eval.json): 10 short FR/DE/EN documents cut in
   chunks of 250 characters, 30 questions (19 asked in another language than their
   document's), recall@k of keyword, vector and hybrid search (a hit: any chunk
   of the right document).

Run:  .venv/bin/python bench/library_search.py [--sizes 10000,100000] [--queries 200]
      [--pages 200] [--scanned-pages 4] [--postgres URL|none]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, insert, select, text

import ocr_accuracy as ocr_bench  # bench/: the generated pages with known text
from souverain.app import create_app
from souverain.config import DeploymentConfig, ModelConfig, load_settings
from souverain.context import Principal, RequestContext
from souverain.library.chunker import Chunk, assemble, chunk_pages
from souverain.library.documents import DocumentStore
from souverain.library.embedder import unit
from souverain.library.parsers import parse
from souverain.library.search import Searcher, vector_index
from souverain.library.service import LibraryService
from souverain.library.store import LibraryStore
from souverain.store.database import open_database, upgrade
from souverain.store.tables import library_chunks, library_documents

HERE = Path(__file__).parent
OWNER = Principal(key_id=None, name="bench", role="owner", subject="bench")
DIMENSIONS = 384
EVAL_CHUNK_CHARS = 250
E5 = ModelConfig(
    id="multilingual-e5-small",
    type="embeddings",
    deployments=(DeploymentConfig(name="embedded-e5", engine="local"),),
)
_PROSE = (
    "Le comité de direction examine chaque trimestre les engagements budgétaires de "
    "l'établissement et les écarts constatés. Die Abteilung prüft die Verträge mit den "
    "Lieferanten und dokumentiert jede Abweichung im Register. The board reviews the "
    "quarterly risk report, the liquidity position and the open audit findings. "
)
PROSE = _PROSE.split()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# ---- 1. ingest ---------------------------------------------------------------------------------


def text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with a text layer (Helvetica, WinAnsi), one line per string."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    kids = []
    for number, lines in enumerate(pages):
        page_id, content_id = 4 + 2 * number, 5 + 2 * number
        body = [b"BT /F1 10 Tf 14 TL 50 800 Td"]
        for line in lines:
            raw = (
                line.encode("cp1252")
                .replace(b"\\", b"\\\\")
                .replace(b"(", b"\\(")
                .replace(b")", b"\\)")
            )
            body.append(b"(" + raw + b") Tj T*")
        stream = b"\n".join([*body, b"ET"])
        objects[content_id] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_id
        )
        kids.append(b"%d 0 R" % page_id)
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out, offsets = bytearray(b"%PDF-1.4\n"), {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref, size = len(out), max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def generated_pdf(pages: int, rng: np.random.Generator) -> bytes:
    content = []
    for page in range(pages):
        lines = [f"Section {page + 1}"]
        for _ in range(44):
            words = rng.choice(PROSE, size=12)
            lines.append(" ".join(words)[:95])
        content.append(lines)
    return text_pdf(content)


def ingest(service: LibraryService, pages: int) -> tuple[dict[str, Any], list[str]]:
    rng = np.random.default_rng(7)
    data = generated_pdf(pages, rng)
    config = service.config
    started = time.perf_counter()
    parsed = parse(data, "pdf", ocr=None, config=service.settings.ocr)
    parsed_at = time.perf_counter()
    chunks = chunk_pages(
        parsed.pages, paged=True, size=config.chunk_chars, overlap=config.chunk_overlap
    )
    chunked_at = time.perf_counter()
    caller = service.store.caller(OWNER)
    library_id = service.store.create(
        caller,
        name="ingest",
        description=None,
        owner_type="User",
        chunk_size=None,
        embedding_model=E5.id,
    )
    documents = service.documents.store
    document_id = documents.add(
        library_id,
        name="report.pdf",
        kind="pdf",
        mime_type="application/pdf",
        extension="pdf",
        data=data,
        uploaded_by="bench",
        uploaded_by_user_id=None,
        job={},
    )
    documents.claim(document_id)
    full, starts = assemble(parsed.pages)
    vectors = unit(rng.normal(size=(len(chunks), DIMENSIONS)))
    written_at = time.perf_counter()
    documents.finish(
        document_id,
        text_value=full,
        page_starts=starts,
        number_of_pages=len(parsed.pages),
        chunks=chunks,
        vectors=vectors,
        tokens=0,
    )
    done = time.perf_counter()
    total = (parsed_at - started) + (chunked_at - parsed_at) + (done - written_at)
    return {
        "pages": pages,
        "characters_per_page": round(len(full) / pages),
        "chunks": len(chunks),
        "parse_ms_per_page": round(1000 * (parsed_at - started) / pages, 2),
        "chunk_ms_per_page": round(1000 * (chunked_at - parsed_at) / pages, 3),
        "write_ms_per_page": round(1000 * (done - written_at) / pages, 3),
        "pages_per_s": round(pages / total, 1),
    }, [chunk.text for chunk in chunks]


def ingest_scanned(service: LibraryService, pages: int) -> dict[str, Any]:
    """Pages without a text layer: rendered, OCR'd and laid out by the library's parser
    (what a worker does with a scanned PDF), then chunked; one warm-up page first."""
    random.seed(3)
    order = random.sample(ocr_bench.PARAGRAPHS, len(ocr_bench.PARAGRAPHS))
    images, expected = [], []
    for number in range(pages):
        shown = order[number % len(order) :] + order[: number % len(order)]
        page, drawn = ocr_bench.draw_page(f"Dossier {number + 1}", shown * 2, scale=2.0)
        images.append(ocr_bench.scanned(page, angle=0.4, noise=12, blur=0.6, quality=60))
        expected.append(drawn)
    buffer = io.BytesIO()
    first, *rest = [image.convert("RGB") for image in images]
    first.save(buffer, format="PDF", resolution=300, save_all=True, append_images=rest)
    ocr = service.worker.ocr
    assert ocr is not None, "libraries.ocr is off"
    parse(ocr_bench.image_pdf(images[0], dpi=300), "pdf", ocr=ocr, config=service.settings.ocr)
    started = time.perf_counter()
    parsed = parse(buffer.getvalue(), "pdf", ocr=ocr, config=service.settings.ocr)
    chunks = chunk_pages(
        parsed.pages,
        paged=True,
        size=service.config.chunk_chars,
        overlap=service.config.chunk_overlap,
    )
    elapsed = time.perf_counter() - started
    read = zip(expected, parsed.pages, strict=True)
    accuracies = [ocr_bench.accuracy(want, got) for want, got in read]
    return {
        "pages": pages,
        "characters_per_page": round(sum(map(len, expected)) / pages),
        "chunks": len(chunks),
        "s_per_page": round(elapsed / pages, 2),
        "pages_per_s": round(pages / elapsed, 3),
        "char_accuracy_min": round(min(accuracies), 4),
        "char_accuracy_mean": round(statistics.mean(accuracies), 4),
    }


# ---- 2. embeddings -------------------------------------------------------------------------------


async def embeddings(service: LibraryService, texts: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    _, tokens = await service.embedder.passages(OWNER, None, E5.id, texts)
    elapsed = time.perf_counter() - started
    ctx = _ctx()
    latencies = []
    for question in ("Quel est le délai de paiement ?", "Wie hoch sind die Hotelkosten?") * 10:
        began = time.perf_counter()
        await service.embedder.query(ctx, E5.id, question)
        latencies.append(1000 * (time.perf_counter() - began))
    return {
        "passages": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts)),
        "tokens": tokens,
        "passages_per_s": round(len(texts) / elapsed, 2),
        "tokens_per_s": round(tokens / elapsed),
        "query_embedding_ms_p50": round(statistics.median(latencies), 1),
    }


def _ctx() -> RequestContext:
    return RequestContext(endpoint="libraries", principal=OWNER)


# ---- 3. latency at scale -------------------------------------------------------------------------


def vocabulary(rng: np.random.Generator, size: int = 30_000) -> tuple[list[str], np.ndarray]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzéèüöäß"))
    words = {"".join(rng.choice(letters, size=rng.integers(3, 11))) for _ in range(size * 2)}
    ordered = sorted(words)[:size]
    weights = 1.0 / np.arange(1, len(ordered) + 1) ** 1.07  # Zipf, as in real text
    return ordered, weights / weights.sum()


TOPIC_SIZE = 50  # chunks per topic, on average
NOISE = 0.05  # per dimension: a chunk's cosine to its topic is about 0.7


def topical_vectors(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit vectors with the structure real embeddings have: chunks gather around topics
    (a random centre each), so a question's true neighbours are markedly closer than the
    rest. Uniformly random vectors have no such neighbours, and on them an approximate
    index finds almost none of the exact top 10 (recall@10 0.13 with HNSW here): that
    measures the data, not the index."""
    centres = unit(rng.normal(size=(max(1, size // TOPIC_SIZE), DIMENSIONS)))
    topic = rng.integers(0, len(centres), size=size)
    noisy = centres[topic] + rng.normal(scale=NOISE, size=(size, DIMENSIONS))
    return unit(noisy.astype(np.float32))


def build_corpus(
    engine: Any, size: int, rng: np.random.Generator
) -> tuple[str, np.ndarray, list[str], np.ndarray]:
    words, weights = vocabulary(rng)
    caller = LibraryStore(engine).caller(OWNER)
    library_id = LibraryStore(engine).create(
        caller,
        name=f"bench-{size}",
        description=None,
        owner_type="User",
        chunk_size=None,
        embedding_model="m",
    )
    vectors = topical_vectors(rng, size)
    store = DocumentStore(engine)
    per_document = 500
    for first in range(0, size, per_document):
        count = min(per_document, size - first)
        document_id = str(uuid.uuid4())
        drawn = rng.choice(len(words), size=(count, 70), p=weights)
        chunks = []
        position = 0
        for row in drawn:
            body = " ".join(words[i] for i in row)
            chunks.append(Chunk(body, 1, position, position + len(body)))
            position += len(body) + 2
        with engine.begin() as conn:
            conn.execute(
                insert(library_documents).values(
                    id=document_id,
                    library_id=library_id,
                    name=f"doc-{first}",
                    kind="text",
                    mime_type="text/plain",
                    size=0,
                    hash="",
                    status="done",
                    uploaded_by="bench",
                    chunk_count=count,
                    created_at=time.time(),
                )
            )
            store.insert_chunks(
                conn, library_id, document_id, chunks, vectors[first : first + count]
            )
    with engine.begin() as conn:
        conn.execute(text("UPDATE libraries SET revision = 1 WHERE id = :id"), {"id": library_id})
        if engine.dialect.name == "postgresql":  # as autovacuum does after a bulk insert
            conn.execute(text("ANALYZE library_chunks, library_chunk_vectors"))
    return library_id, vectors, words, weights


def latency(engine: Any, size: int, queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(size)
    began = time.perf_counter()
    library_id, vectors, words, weights = build_corpus(engine, size, rng)
    built = time.perf_counter() - began
    searcher = Searcher(engine, vector_index(engine))
    caller = LibraryStore(engine).caller(OWNER)
    texts = [
        " ".join(words[i] for i in rng.choice(len(words), size=4, p=weights))
        for _ in range(queries)
    ]
    # A question about one chunk: that chunk's vector moved as far again from it as
    # chunks are from their topic.
    about = rng.integers(0, size, size=queries)
    noise = rng.normal(scale=NOISE, size=(queries, DIMENSIONS))
    query_vectors = unit((vectors[about] + noise).astype(np.float32))
    started = time.perf_counter()
    targets = searcher.libraries(caller, [library_id])
    searched = [(library_id, targets[0].revision)]
    searcher.vectors.search(caller, searched, query_vectors[0], 10)  # SQLite loads the matrix
    cold = time.perf_counter() - started
    with engine.connect() as conn:  # chunk ids in the order of `vectors`
        chunks = library_chunks.c
        query = select(chunks.id).where(chunks.library_id == library_id).order_by(chunks.id)
        ids = np.asarray(conn.execute(query).scalars().all())
    hybrid, keyword, vector, recall, kept = [], [], [], [], []
    exact_all = vectors.astype(np.float64)
    for query_text, qv in zip(texts, query_vectors, strict=True):
        t0 = time.perf_counter()
        targets = searcher.libraries(caller, [library_id])
        hits = searcher.search(caller, targets, query_text, {"m": qv}, top_k=10)
        t1 = time.perf_counter()
        searcher.keyword(caller, [library_id], query_text, 50)
        t2 = time.perf_counter()
        found = searcher.vectors.search(caller, searched, qv, 10)
        t3 = time.perf_counter()
        hybrid.append(1000 * (t1 - t0))
        keyword.append(1000 * (t2 - t1))
        vector.append(1000 * (t3 - t2))
        exact = np.argsort(-(exact_all @ qv.astype(np.float64)))[:10]
        exact_ids = {int(ids[i]) for i in exact}
        recall.append(len(exact_ids & {chunk_id for chunk_id, _ in found}) / 10)
        kept.append(len(exact_ids & {hit.chunk_id for hit in hits}) / 10)
    return {
        "chunks": size,
        "build_s": round(built, 1),
        "first_vector_search_s": round(cold, 2),
        "hybrid_ms": {
            "p50": round(percentile(hybrid, 0.5), 2),
            "p95": round(percentile(hybrid, 0.95), 2),
        },
        "keyword_ms": {
            "p50": round(percentile(keyword, 0.5), 2),
            "p95": round(percentile(keyword, 0.95), 2),
        },
        "vector_ms": {
            "p50": round(percentile(vector, 0.5), 2),
            "p95": round(percentile(vector, 0.95), 2),
        },
        "vector_recall_at_10": round(statistics.mean(recall), 4),
        "hybrid_keeps_exact_top10": round(statistics.mean(kept), 3),
    }


def fresh_database(kind: str, postgres: str | None) -> tuple[Any, Any]:
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="souverain-libbench-"))
        engine = open_database(f"sqlite:///{folder / 'souverain.db'}")
        upgrade(engine)
        return engine, lambda: shutil.rmtree(folder, ignore_errors=True)
    assert postgres is not None
    name = "souverain_libbench_" + uuid.uuid4().hex[:8]
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine = open_database(postgres.rsplit("/", 1)[0] + "/" + name)
    upgrade(engine)

    def drop() -> None:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    return engine, drop


# ---- 4. the labelled set -------------------------------------------------------------------------


async def labelled(service: LibraryService) -> dict[str, Any]:
    data = json.loads((HERE / "data" / "library_eval.json").read_text())
    store, documents = service.store, service.documents.store
    caller = store.caller(OWNER)
    library_id = store.create(
        caller,
        name="eval",
        description=None,
        owner_type="User",
        chunk_size=None,
        embedding_model=E5.id,
    )
    owner_of: dict[int, str] = {}
    for name, body in data["documents"].items():
        document_id = documents.add(
            library_id,
            name=name,
            kind="markdown",
            mime_type="text/markdown",
            extension="md",
            data=body.encode(),
            uploaded_by="bench",
            uploaded_by_user_id=None,
            job={},
        )
        documents.claim(document_id)
        chunks = chunk_pages(
            [body],
            paged=False,
            size=EVAL_CHUNK_CHARS,  # several chunks per document: recall@k means more
            overlap=40,
        )
        vectors, tokens = await service.embedder.passages(
            OWNER, None, E5.id, [c.text for c in chunks]
        )
        documents.finish(
            document_id,
            text_value=body,
            page_starts=[0],
            number_of_pages=None,
            chunks=chunks,
            vectors=vectors,
            tokens=tokens,
        )
    searcher = service.searcher
    targets = searcher.libraries(caller, [library_id])
    with service.store.engine.connect() as conn:
        for chunk_id, name in conn.execute(
            text(
                "SELECT c.id, d.name FROM library_chunks c "
                "JOIN library_documents d ON d.id = c.document_id WHERE c.library_id = :id"
            ),
            {"id": library_id},
        ):
            owner_of[int(chunk_id)] = name
    ranks: dict[str, list[int | None]] = {"keyword": [], "vector": [], "hybrid": []}
    per_language: dict[str, list[int | None]] = {}
    for item in data["questions"]:
        vector = await service.embedder.query(_ctx(), E5.id, item["q"])
        keyword = [owner_of[i] for i in searcher.keyword(caller, [library_id], item["q"], 10)]
        searched = [(library_id, targets[0].revision)]
        similar = [owner_of[i] for i, _ in searcher.vectors.search(caller, searched, vector, 10)]
        hybrid = [
            hit.document_name
            for hit in searcher.search(caller, targets, item["q"], {E5.id: vector}, 10)
        ]
        for leg, found in (("keyword", keyword), ("vector", similar), ("hybrid", hybrid)):
            ranks[leg].append(_first(found, item["doc"]))
        group = "cross-lingual" if item["doc"][:2] != item["lang"] else "same language"
        for leg in ranks:
            per_language.setdefault(f"{leg}, {group}", []).append(ranks[leg][-1])
    table = {
        leg: {f"recall@{k}": _recall(r, k) for k in (1, 3, 5, 10)} | {"mrr": _mrr(r)}
        for leg, r in ranks.items()
    }
    table["recall@1_by_question_language"] = {
        name: _recall(r, 1) for name, r in sorted(per_language.items())
    }
    return {
        "documents": len(data["documents"]),
        "chunks": len(owner_of),
        "questions": len(data["questions"]),
        **table,
    }


def _first(found: list[str], wanted: str) -> int | None:
    return found.index(wanted) + 1 if wanted in found else None


def _recall(ranks: list[int | None], k: int) -> float:
    return round(sum(1 for r in ranks if r is not None and r <= k) / len(ranks), 3)


def _mrr(ranks: list[int | None]) -> float:
    return round(sum(1 / r for r in ranks if r) / len(ranks), 3)


# ---- main ---------------------------------------------------------------------------------------


async def service_benchmarks(pages: int, scanned_pages: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="souverain-libbench-app-"))
    settings = load_settings(environ={}).model_copy(update={"models": (E5,), "data_dir": folder})
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            service: LibraryService = app.state.souverain.libraries
            ingested, texts = await asyncio.to_thread(ingest, service, pages)
            scanned = await asyncio.to_thread(ingest_scanned, service, scanned_pages)
            embedded = await embeddings(service, texts[:48])
            return {
                "ingest_text_pdf": ingested,
                "ingest_scanned_pdf": scanned,
                "embeddings": embedded,
                "labelled": await labelled(service),
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--scanned-pages", type=int, default=4)
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="an admin URL to create a scratch database, or none",
    )
    args = parser.parse_args()
    results: dict[str, Any] = asyncio.run(service_benchmarks(args.pages, args.scanned_pages))
    print(json.dumps(results, indent=2, ensure_ascii=False), flush=True)
    kinds = ["sqlite"] + ([] if args.postgres == "none" else ["postgresql"])
    results["latency"] = {}
    for kind in kinds:
        for size in [int(s) for s in args.sizes.split(",")]:
            engine, drop = fresh_database(kind, args.postgres)
            try:
                figures = latency(engine, size, args.queries)
            finally:
                engine.dispose()
                if drop:
                    drop()
            results["latency"].setdefault(kind, []).append(figures)
            print(kind, json.dumps(figures), flush=True)
    results["run_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = HERE / "results" / "library_search.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
