"""The `library.ingest` job: parse, chunk, embed and index one uploaded document.

An upload queues the document's job in the same transaction as the document
(documents.py); any replica's job runner claims it with a lease (jobs/runner.py,
docs/jobs.md), at most `libraries.workers` at once per replica. A replica that dies
while processing it leaves its lease to expire, and another takes the job over.

Parsing and OCR run in a child process under `libraries.limits` (library/sandbox.py):
killed at its deadline and at shutdown, its memory capped, its OCR time charged to the
document's tenant. Embeddings go through the pipeline as the uploader. Whatever goes
wrong with one document (corrupt file, a limit, no text, a refused model call, a bug)
ends as that document's error status. A parser that dies without an answer (a crash),
or a gateway that dies while processing it, counts an attempt: after
`libraries.limits.max_attempts` the document is `error`, with the reason. At shutdown
the document and its job are given back, the interrupted attempt not counted. Deleting
the document cancels the job: a running one stops (its parser killed) within
`jobs.check_s`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..config import LibrariesConfig, OcrConfig
from ..context import Principal
from ..errors import SouverainError
from ..jobs.runner import JobControl
from ..jobs.store import JobRow, JobStore
from .chunker import assemble, chunk_pages
from .documents import DocumentStore
from .embedder import Embedder, principal_from_json
from .limits import OcrBudget
from .sandbox import ParseOutcome, ParserCrashed, ParseRefused, ParseRequest, parse_in_child

log = logging.getLogger("souverain.library")
NO_TEXT = "no text was found in the document (a blank page or image, or a scan with OCR off?)"


class IngestHandler:
    """Runs `library.ingest` jobs (a JobHandler): the document's status is the API's view,
    the job's is the mechanism's."""

    counts_attempts = True  # given up after libraries.limits.max_attempts, saying so

    def __init__(
        self,
        config: LibrariesConfig,
        ocr_config: OcrConfig,
        documents: DocumentStore,
        jobs: JobStore,
        embedder: Embedder,
    ) -> None:
        self.config = config
        self.ocr_config = ocr_config
        self.documents = documents
        self.jobs = jobs
        self.embedder = embedder
        self.limits = config.limits
        self.concurrency = config.workers
        self.ocr_budget = OcrBudget(config.limits.ocr_seconds_per_hour)

    async def run(self, job: JobRow, control: JobControl) -> None:
        document_id = str(job.payload["document"])
        if job.attempts > self.limits.max_attempts:
            why = await asyncio.to_thread(self.documents.give_up, document_id, job.attempts - 1)
            await self._end(job, control, "failed", why)
            return
        if control.stopping:  # deleted or requeued before it started
            await self._end(job, control, "cancelled", None)
            return
        row = await asyncio.to_thread(self.documents.claim, document_id, job.attempts)
        if row is None:  # deleted, or processed meanwhile
            await self._end(job, control, "cancelled", None)
            return
        work = asyncio.create_task(self._process(job, row))
        stop = asyncio.create_task(_stopped(control))
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the gateway stops: give the document back
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            await asyncio.to_thread(self.documents.give_back, document_id, job.attempts)
            raise
        finally:
            stop.cancel()
        if not work.done():  # deleted, requeued, or taken over after a stall
            work.cancel()  # the parser child is killed as the task unwinds
            await asyncio.gather(work, return_exceptions=True)
            await self._end(job, control, "cancelled", None)
            return
        await self._outcome(job, control, document_id, work)

    async def _outcome(
        self, job: JobRow, control: JobControl, document_id: str, work: asyncio.Task[None]
    ) -> None:
        exc = work.exception()
        if exc is None:
            await self._end(job, control, "succeeded", None)
        elif isinstance(exc, ParserCrashed):
            log.warning("library: document %s: %s", document_id, exc.message)
            again = await asyncio.to_thread(
                self.documents.retry,
                document_id,
                exc.message,
                job.attempts,
                self.limits.max_attempts,
            )
            if again:
                await asyncio.to_thread(self.jobs.retry, job.id, control.replica, exc.message)
            else:
                await self._end(job, control, "failed", exc.message)
        else:
            if isinstance(exc, SouverainError):
                message = exc.message
            else:
                log.error("library: document %s failed", document_id, exc_info=exc)
                message = f"processing failed ({type(exc).__name__}: {exc})"
            await asyncio.to_thread(self.documents.fail, document_id, message)
            await self._end(job, control, "failed", message)

    async def _end(self, job: JobRow, control: JobControl, status: str, error: str | None) -> None:
        await asyncio.to_thread(
            self.jobs.finish,
            job.id,
            control.replica,
            status,
            result={"replica": control.replica},  # who ended it (tests, operators)
            error=error and error[:2000],
        )

    # ---- one document -------------------------------------------------------------------------

    async def _process(self, job: JobRow, row: Any) -> None:
        document_id = row.id
        principal = principal_from_json(job.principal)
        parsed = await self._parse(principal, row)
        text, starts = assemble(parsed.pages)
        size = row.chunk_size or self.config.chunk_chars
        chunks = chunk_pages(
            parsed.pages, paged=parsed.paged, size=size, overlap=self.config.chunk_overlap
        )
        if not chunks:
            await asyncio.to_thread(self.documents.fail, document_id, NO_TEXT, "missing_content")
            return
        model: str = row.embedding_model
        claims = job.payload.get("claims") or []
        vectors, tokens = await self.embedder.passages(
            principal, claims[0] if claims else None, model, [chunk.text for chunk in chunks]
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

    async def _parse(self, principal: Principal, row: Any) -> ParseOutcome:
        tenant = principal.tenant
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


async def _stopped(control: JobControl) -> None:
    """Returns once the job is cancelled or its lease lost."""
    cancel = asyncio.create_task(control.cancel.wait())
    lost = asyncio.create_task(control.lost.wait())
    try:
        await asyncio.wait({cancel, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancel.cancel()
        lost.cancel()
