"""The ingest worker: parse, chunk, embed and index uploaded documents in the background.

An upload returns at once; its document goes on a bounded in-memory queue served by
`libraries.workers` tasks. When the queue is full the document simply waits in the
database (`todo`): a sweep every few seconds queues what no live worker holds,
including documents left `in_progress` by a replica that died (its lease expired), and
those of this process after a restart. Several replicas share the work safely: a
document is claimed in the database before anyone processes it.

Parsing and OCR run in a child process under `libraries.limits` (library/sandbox.py):
killed at its deadline and at shutdown, its memory capped, its OCR time charged to the
document's tenant. Embeddings go through the pipeline as the uploader. Whatever goes
wrong with one document (corrupt file, a limit, no text, a refused model call, a bug)
ends as that document's error status; the worker goes on with the next. A parser that
dies without an answer (a crash), or a gateway that dies while processing it, counts an
attempt: after `max_attempts` the document is `error`, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from ..config import LibrariesConfig, OcrConfig
from ..context import Principal
from ..errors import SouverainError
from .chunker import assemble, chunk_pages
from .documents import LEASE_S, DocumentStore
from .embedder import Embedder, principal_from_json
from .limits import OcrBudget
from .sandbox import ParseOutcome, ParserCrashed, ParseRefused, ParseRequest, parse_in_child

log = logging.getLogger("souverain.library")
SWEEP_S = 5.0
NO_TEXT = "no text was found in the document (a blank page or image, or a scan with OCR off?)"


@dataclass(frozen=True, slots=True)
class Job:
    document_id: str
    principal: Principal
    claims: tuple[str | None, ...] = ()


class IngestWorker:
    def __init__(
        self,
        config: LibrariesConfig,
        ocr_config: OcrConfig,
        documents: DocumentStore,
        embedder: Embedder,
    ) -> None:
        self.config = config
        self.ocr_config = ocr_config
        self.documents = documents
        self.embedder = embedder
        self.limits = config.limits
        self.ocr_budget = OcrBudget(config.limits.ocr_seconds_per_hour)
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=config.max_queue)
        self._queued: set[str] = set()  # waiting here, or being processed here
        self._active: set[str] = set()  # being processed here (leases to renew)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def depth(self) -> int:
        return len(self._queued)

    async def start(self) -> None:
        for number in range(self.config.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"library-worker-{number}"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="library-sweep"))
        self._tasks.append(asyncio.create_task(self._renew(), name="library-leases"))

    async def close(self) -> None:
        # Taken before cancelling: a cancelled document leaves `_active` on its way out.
        # (Those finished meanwhile are `done`, which `release` leaves alone.)
        active = sorted(self._active)
        for task in self._tasks:
            task.cancel()  # a parser child is killed as its task unwinds
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        try:  # the next start (here or on another replica) takes them at once
            await asyncio.to_thread(self.documents.release, active)
        except Exception:
            log.exception("could not release the documents in progress")

    def submit(self, job: Job) -> bool:
        """Queue a document; False when the queue is full (the sweep takes it later)."""
        if job.document_id in self._queued:
            return True
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            return False
        self._queued.add(job.document_id)
        return True

    # ---- tasks ------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self.process(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # process() records its own failures; this is a last guard
                log.exception("library worker: document %s", job.document_id)
            finally:
                self._queued.discard(job.document_id)
                self._queue.task_done()

    async def _sweep(self) -> None:
        while True:
            try:
                rows = await asyncio.to_thread(self.documents.waiting)
                for row in rows:
                    if row.id in self._queued:
                        continue
                    job = _job_of(row.id, row.job)
                    if job is None:
                        await asyncio.to_thread(
                            self.documents.fail, row.id, "nobody to process it as: upload it again"
                        )
                    elif not self.submit(job):
                        break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("library worker: the sweep failed; retrying")
            await asyncio.sleep(SWEEP_S)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 4)
            try:
                await asyncio.to_thread(self.documents.renew, sorted(self._active))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("library worker: could not renew the leases")

    # ---- one document -------------------------------------------------------------------------

    async def process(self, job: Job) -> None:
        row = await asyncio.to_thread(
            self.documents.claim, job.document_id, self.limits.max_attempts
        )
        if row is None:
            return  # another worker has it, it was deleted, or it failed too often
        self._active.add(job.document_id)
        try:
            await self._process(job, row)
        except asyncio.CancelledError:
            raise
        except ParserCrashed as exc:
            log.warning("library worker: document %s: %s", job.document_id, exc.message)
            await self._crashed(job.document_id, exc.message)
        except SouverainError as exc:
            await self._fail(job.document_id, exc.message)
        except Exception as exc:
            log.exception("library worker: document %s failed", job.document_id)
            await self._fail(job.document_id, f"processing failed ({type(exc).__name__}: {exc})")
        finally:
            self._active.discard(job.document_id)

    async def _process(self, job: Job, row: Any) -> None:
        document_id = job.document_id
        parsed = await self._parse(job, row)
        text, starts = assemble(parsed.pages)
        size = row.chunk_size or self.config.chunk_chars
        chunks = chunk_pages(
            parsed.pages, paged=parsed.paged, size=size, overlap=self.config.chunk_overlap
        )
        if not chunks:
            await self._fail(document_id, NO_TEXT, status="missing_content")
            return
        model: str = row.embedding_model
        claim = job.claims[0] if job.claims else None
        vectors, tokens = await self.embedder.passages(
            job.principal, claim, model, [chunk.text for chunk in chunks]
        )
        written = await asyncio.to_thread(
            self.documents.finish,
            document_id,
            text_value=text,
            page_starts=starts,
            number_of_pages=len(parsed.pages) if parsed.paged else None,
            chunks=chunks,
            vectors=vectors,
            tokens=tokens,
        )
        if written:
            log.info("library: document %s done (%d chunks)", document_id, len(chunks))

    async def _parse(self, job: Job, row: Any) -> ParseOutcome:
        tenant = job.principal.tenant
        request = ParseRequest(
            data=row.content,
            kind=row.kind,
            ocr=self.ocr_config,
            use_ocr=self.config.ocr,
            limits=self.limits,
            ocr_budget_s=self.ocr_budget.left(tenant),
        )
        spent = 0.0
        try:
            outcome = await parse_in_child(request)
            spent = outcome.ocr_seconds
            return outcome
        except (ParseRefused, ParserCrashed) as exc:
            spent = exc.ocr_seconds
            raise
        finally:
            self.ocr_budget.charge(tenant, spent)

    async def _crashed(self, document_id: str, message: str) -> None:
        try:
            await asyncio.to_thread(
                self.documents.retry_or_fail, document_id, message, self.limits.max_attempts
            )
        except Exception:
            log.exception("library worker: could not record the failure of %s", document_id)

    async def _fail(self, document_id: str, message: str, status: str = "error") -> None:
        try:
            await asyncio.to_thread(self.documents.fail, document_id, message, status)
        except Exception:
            log.exception("library worker: could not record the failure of %s", document_id)


def _job_of(document_id: str, stored: str | None) -> Job | None:
    if not stored:
        return None
    try:
        data = json.loads(stored)
        principal = principal_from_json(data["principal"])
    except (ValueError, KeyError, TypeError):
        return None
    return Job(document_id, principal, tuple(data.get("claims") or ()))
