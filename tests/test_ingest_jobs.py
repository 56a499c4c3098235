"""The library ingest worker as a job kind (`library.ingest`, library/ingest_job.py).

In the stores, on SQLite and PostgreSQL: a document whose processing never finishes
(its replica dies: the lease expires) is given up after its attempts, a parser crash
is retried then fails, a shutdown does not count an attempt, deleting or reprocessing a
document cancels its job, and migration 0015 gives the documents waiting at an upgrade
their jobs. Through real `souverain serve` processes: an upgraded server processes a
document the old worker had left waiting, and two replicas on one PostgreSQL database
process each of many documents exactly once, both taking part.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import Engine, func, insert, select, text, update

from souverain.config import LibrariesConfig, OcrConfig
from souverain.jobs.runner import JobControl
from souverain.jobs.store import JobStore
from souverain.library.documents import INGEST_KIND, DocumentStore
from souverain.library.embedder import principal_from_json, principal_to_json
from souverain.library.ingest_job import IngestHandler
from souverain.library.limits import IngestLimits
from souverain.library.store import LibraryStore
from souverain.store.database import alembic_config, open_database, upgrade
from souverain.store.tables import library_chunks, library_documents
from souverain.store.work_tables import jobs

from .conftest import Server, start_server, stop_server
from .databases import postgres_database
from .test_library_units import _caller, engine  # noqa: F401  (engine: a fixture)


def _library(engine: Engine) -> tuple[str, dict[str, Any]]:  # noqa: F811
    caller = _caller(engine, "alice")
    library_id = LibraryStore(engine).create(
        caller, name="lib", description=None, owner_type="User", chunk_size=None,
        embedding_model="m",
    )  # fmt: skip
    return library_id, {"principal": principal_to_json(caller.principal), "claims": []}


def _upload(engine: Engine, library_id: str, who: dict[str, Any]) -> str:  # noqa: F811
    return DocumentStore(engine).add(
        library_id, name="a.txt", kind="text", mime_type="text/plain", extension="txt",
        data=b"hello", uploaded_by="alice", uploaded_by_user_id=None, job=who,
    )  # fmt: skip


def _document(engine: Engine, document_id: str) -> Any:  # noqa: F811
    with engine.connect() as conn:
        return conn.execute(
            select(library_documents).where(library_documents.c.id == document_id)
        ).one()


def _handler(engine: Engine, max_attempts: int) -> IngestHandler:  # noqa: F811
    config = LibrariesConfig(limits=IngestLimits(max_attempts=max_attempts))
    documents = DocumentStore(engine)
    # No embedding happens on the paths these tests take (the embedder is never called).
    return IngestHandler(config, OcrConfig(), documents, documents.jobs, None)  # type: ignore[arg-type]


def test_an_upload_queues_its_job_in_the_same_transaction(engine: Engine) -> None:  # noqa: F811
    library_id, who = _library(engine)
    document_id = _upload(engine, library_id, who)
    row = _document(engine, document_id)
    job = JobStore(engine).get(row.job)
    assert row.status == "todo" and job is not None
    assert (job.kind, job.status, job.payload["document"]) == (INGEST_KIND, "queued", document_id)
    assert principal_from_json(job.principal) == principal_from_json(who["principal"])
    assert job.owner == who["principal"]["subject"]
    # Without anyone to process it as (the store tests' documents), no job.
    assert _document(engine, _upload(engine, library_id, {})).job is None


def test_a_document_that_never_finishes_is_given_up(engine: Engine) -> None:  # noqa: F811
    """The gateway died while processing it (its lease expires), three times: `error`."""
    library_id, who = _library(engine)
    document_id = _upload(engine, library_id, who)
    store = JobStore(engine)
    for attempt in (1, 2, 3):
        job = store.claim([INGEST_KIND], f"dead-{attempt}", lease_s=60)
        assert job is not None and job.attempts == attempt
        assert DocumentStore(engine).claim(document_id, job.attempts) is not None
        with engine.begin() as conn:  # the replica died: its lease runs out
            conn.execute(update(jobs).where(jobs.c.id == job.id).values(lease_expires_at=0))
    job = store.claim([INGEST_KIND], "alive", lease_s=60)
    assert job is not None and job.attempts == 4
    asyncio.run(_handler(engine, 3).run(job, JobControl("alive")))
    row = _document(engine, document_id)
    assert row.status == "error" and row.attempts == 3
    assert "gateway stopped while processing it" in row.error
    assert "gave up after 3 attempts (libraries.limits.max_attempts)" in row.error
    ended = store.get(job.id)
    assert ended is not None and ended.status == "failed" and ended.error == row.error
    assert store.claim([INGEST_KIND], "alive", lease_s=60) is None  # nothing left to take


def test_crashes_retry_then_fail_and_shutdown_does_not_count(engine: Engine) -> None:  # noqa: F811
    library_id, who = _library(engine)
    document_id = _upload(engine, library_id, who)
    store, documents = JobStore(engine), DocumentStore(engine)
    job = store.claim([INGEST_KIND], "r1", lease_s=60)
    assert job is not None and documents.claim(document_id, job.attempts) is not None
    # A graceful shutdown: the runner gives the job back, the handler the document.
    documents.give_back(document_id, job.attempts)
    store.release([job.id], "r1")
    assert (_document(engine, document_id).status, _document(engine, document_id).attempts) == (
        "todo",
        0,
    )
    job = store.claim([INGEST_KIND], "r2", lease_s=60)
    assert job is not None and job.attempts == 1  # the interrupted attempt did not count
    documents.claim(document_id, job.attempts)
    assert documents.retry(document_id, "the parser stopped", job.attempts, 2)
    assert store.retry(job.id, "r2", "the parser stopped")
    todo = _document(engine, document_id)
    assert (todo.status, todo.attempts) == ("todo", 1)
    assert todo.error == "the parser stopped; attempt 1 of 2, to be tried again"
    job = store.claim([INGEST_KIND], "r2", lease_s=60)
    assert job is not None and job.attempts == 2
    documents.claim(document_id, job.attempts)
    assert not documents.retry(document_id, "the parser stopped", job.attempts, 2)
    failed = _document(engine, document_id)
    assert failed.status == "error"
    assert failed.error.startswith("the parser stopped; gave up after 2 attempts")


def test_delete_and_reprocess_cancel_the_job(engine: Engine) -> None:  # noqa: F811
    library_id, who = _library(engine)
    store, documents = JobStore(engine), DocumentStore(engine)
    # Reprocessing: the old job is flagged, a new one queued; the document starts over.
    document_id = _upload(engine, library_id, who)
    first = _document(engine, document_id).job
    running = store.claim([INGEST_KIND], "r1", lease_s=60)
    assert running is not None and running.id == first
    documents.requeue(library_id, document_id, who)
    second = _document(engine, document_id).job
    assert second != first
    _lost, cancelled = store.renew([first], "r1", 60)
    assert cancelled == {first}  # the holder learns it at its next renewal
    assert store.get(second).status == "queued"  # type: ignore[union-attr]
    # Deleting: the queued job is flagged; when claimed it ends without processing.
    assert documents.delete(library_id, document_id)
    job = store.claim([INGEST_KIND], "r2", lease_s=60)
    assert job is not None and job.id == second and job.cancel_requested
    control = JobControl("r2")
    control.cancel.set()
    asyncio.run(_handler(engine, 3).run(job, control))
    assert store.get(second).status == "cancelled"  # type: ignore[union-attr]


# ---- migration 0015 -----------------------------------------------------------------------------


def test_migration_gives_waiting_documents_their_jobs(database_url: str) -> None:
    database = open_database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        upgrade(database, "0014")
        library_id, who = _library(database)
        old = json.dumps({"principal": who["principal"], "claims": ["c1"]})
        made = time.time()
        rows = {  # name: (status, job, attempts)
            "todo": ("todo", old, 0),
            "crashed": ("in_progress", old, 2),  # left by a server that stopped
            "unreadable": ("todo", "{not json", 0),
            "done": ("done", None, 1),
        }
        ids = {}
        with database.begin() as conn:
            for offset, (name, (status, job, attempts)) in enumerate(rows.items()):
                ids[name] = f"00000000-0000-0000-0000-00000000000{offset}"
                conn.execute(
                    insert(library_documents).values(
                        id=ids[name], library_id=library_id, name=name, kind="text",
                        mime_type="text/plain", size=1, hash="h", content=b"x", status=status,
                        uploaded_by="alice", job=job, attempts=attempts, claimed_at=1.0,
                        created_at=made + offset,
                    )
                )  # fmt: skip
        assert upgrade(database) == ["0015"]
        store = JobStore(database)
        for name, attempts in (("todo", 0), ("crashed", 2)):
            row = _document(database, ids[name])
            job = store.get(row.job)
            assert row.status == "todo" and job is not None
            assert (job.kind, job.status, job.attempts) == (INGEST_KIND, "queued", attempts)
            assert job.payload == {"document": ids[name], "claims": ["c1"]}
            assert principal_from_json(job.principal) == principal_from_json(who["principal"])
        unreadable = _document(database, ids["unreadable"])
        assert (unreadable.status, unreadable.job) == ("error", None)
        assert "upload it again" in unreadable.error
        assert _document(database, ids["done"]).status == "done"
        # The oldest waiting document is claimed first.
        first = store.claim([INGEST_KIND], "r", lease_s=60)
        assert first is not None and first.payload["document"] == ids["todo"]
        with database.connect() as conn:
            count = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
        assert count == 2
    finally:
        database.dispose()


# ---- through real servers (the embedded e5 model embeds) ------------------------------------


def _status(server: Server, library: str, document_id: str) -> dict[str, Any]:
    path = f"{server.v1}/libraries/{library}/documents/{document_id}/status"
    answer = httpx.get(path, headers={"Authorization": f"Bearer {server.key}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _processed(server: Server, library: str, ids: list[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    for document_id in ids:
        while (status := _status(server, library, document_id))["process_status"] in (
            "todo",
            "in_progress",
        ):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["process_status"] == "done", status


def _new_library(server: Server) -> str:
    client = server.client()
    answer = client.post("/v1/libraries", json={"name": "jobs"})
    assert answer.status_code == 201, answer.text
    library: str = answer.json()["id"]
    return library


def _send(server: Server, library: str, name: str, body: str) -> str:
    answer = server.client().post(
        f"/v1/libraries/{library}/documents", files={"file": (name, body.encode())}
    )
    assert answer.status_code in (200, 201), answer.text
    document_id: str = answer.json()["id"]
    return document_id


@pytest.mark.model
def test_an_upgraded_server_processes_what_was_waiting(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A document uploaded while no runner processed it, the database taken back to 0014
    (the old worker's queue: `todo` with its principal), then a server of this release
    started on it: migration 0015 queues its job and the document is processed."""
    tmp = tmp_path_factory.mktemp("ingest-upgrade")
    data = tmp / "data"
    server = start_server(tmp / "old", {"jobs": {"enabled": False}}, data_dir=data)
    try:
        library = _new_library(server)
        document_id = _send(server, library, "waiting.md", "# Waiting\n\nProcessed after all.")
    finally:
        stop_server(server)
    database = open_database(f"sqlite:///{data / 'souverain.db'}")
    try:
        config = alembic_config()
        with database.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0014")
        row = _document(database, document_id)
        assert row.status == "todo" and json.loads(row.job)["principal"]["tenant"] == "default"
        with database.connect() as conn:
            assert conn.execute(select(func.count()).select_from(jobs)).scalar_one() == 0
    finally:
        database.dispose()
    server = start_server(tmp / "new", data_dir=data)
    try:
        _processed(server, library, [document_id])
        text_path = f"/v1/libraries/{library}/documents/{document_id}/text_content"
        assert "Processed after all" in server.client().get(text_path).json()["text"]
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, str]]:
    databases = postgres_database()
    url = next(databases)
    tmp = tmp_path_factory.mktemp("ingest-replicas")
    config = {"database_url": url, "jobs": {"poll_s": 0.2}}
    first = start_server(tmp / "one", config)
    try:
        second = start_server(tmp / "two", config, data_dir=tmp / "one" / "data")  # its pepper
    except BaseException:
        stop_server(first)
        raise
    yield first, second, url
    stop_server(second)
    stop_server(first)
    databases.close()


@pytest.mark.model
def test_two_replicas_on_postgresql_process_each_document_once(
    replicas: tuple[Server, Server, str],
) -> None:
    first, second, url = replicas
    library = _new_library(first)
    bodies = [f"# Note {n}\n\n" + f"Paragraph {n} about topic {n}. " * 10 for n in range(8)]
    ids = [
        _send(first if n % 2 else second, library, f"note-{n}.md", body)
        for n, body in enumerate(bodies)
    ]
    _processed(first, library, ids)
    database = open_database(url)
    try:
        with database.connect() as conn:
            rows = conn.execute(
                select(jobs.c.status, jobs.c.attempts, jobs.c.result, jobs.c.payload).where(
                    jobs.c.kind == INGEST_KIND
                )
            ).all()
            chunks = dict(
                conn.execute(
                    select(library_chunks.c.document_id, func.count())
                    .where(library_chunks.c.library_id == library)
                    .group_by(library_chunks.c.document_id)
                ).all()
            )
            counted = dict(
                conn.execute(
                    select(library_documents.c.id, library_documents.c.chunk_count).where(
                        library_documents.c.library_id == library
                    )
                ).all()
            )
            vectors = conn.execute(
                text("SELECT count(*) FROM library_chunk_vectors WHERE library_id = :l"),
                {"l": library},
            ).scalar_one()
    finally:
        database.dispose()
    # One job per document, each claimed once and ended by the replica that claimed it.
    assert sorted(json.loads(row.payload)["document"] for row in rows) == sorted(ids)
    assert {(row.status, row.attempts) for row in rows} == {("succeeded", 1)}
    # Each document's chunks written once: no duplicate from a second processing.
    assert chunks == counted and all(count > 0 for count in chunks.values())
    assert vectors == sum(chunks.values())
    replicas_seen = {json.loads(row.result)["replica"] for row in rows}
    assert len(replicas_seen) == 2, replicas_seen  # both replicas took part
