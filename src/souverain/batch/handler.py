"""The `batch` job: validate, cut into ranges, wait for them, assemble the results.

Stage `validating`: the input files are read line by line (batch/validate.py); a batch
that breaks a rule fails with its errors, else its ranges are created as child jobs and
the batch waits (`in_progress`) until every range has finished. It is then claimed again
(`finalizing`): the recorded answers are written in line order to the output file
(status 200) and the error file (any other status, and lines that got no answer because
the window expired or their range was given up), both stored as the submitter's files.
Its status ends `completed`, `cancelled` (what was done is kept) or `expired`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from ..context import RequestContext
from ..errors import SouverainError
from ..files.store import FileStore
from ..jobs.runner import JobControl
from ..jobs.store import JobRow, JobStore, NewJob
from ..library.embedder import principal_from_json
from ..ocr.call import OcrCalls
from ..pipeline import Pipeline
from .lines import LineStore
from .lines_format import LineProblem, parse_line, unanswered_line
from .ocr_lines import check_line_model
from .ranges import RANGE_KIND
from .reading import read_lines
from .settings import BatchConfig
from .validate import validate

BATCH_KIND = "batch"
SPOOL_BYTES = 8 * 1024 * 1024  # results beyond this go to a temporary file, not memory
EXPIRED = "This request could not be executed before the completion window expired."


@dataclass(slots=True)
class BatchHandler:
    config: BatchConfig
    jobs: JobStore
    lines: LineStore
    files: FileStore
    pipeline: Pipeline
    ocr: OcrCalls | None = None

    async def run(self, job: JobRow, control: JobControl) -> None:
        if job.stage == "validating":
            await self._validate(job, control)
        else:
            await self._finalize(job, control)

    # ---- validating ----------------------------------------------------------------------------

    async def _validate(self, job: JobRow, control: JobControl) -> None:
        if control.cancel.is_set():
            await self._finish(job, control, "cancelled", {})
            return
        if job.expires_at is not None and time.time() > job.expires_at:
            await self._finish(job, control, "expired", {})
            return
        plan = await asyncio.to_thread(self._plan, job)
        if plan.problems:
            errors = [problem.as_json() for problem in plan.problems]
            await self._finish(job, control, "failed", {"errors": errors, "total": plan.total})
            return
        children = [
            NewJob(kind=RANGE_KIND, tenant=job.tenant, owner=job.owner, principal={},
                   payload=piece.as_json(), parent_id=job.id, expires_at=job.expires_at)
            for piece in plan.ranges
        ]  # fmt: skip
        result = {**job.result, "total": plan.total, "model": plan.model,
                  "in_progress_at": time.time()}  # fmt: skip
        await asyncio.to_thread(
            self.jobs.wait_for_children, job.id, control.replica, "in_progress", children, result
        )

    def _plan(self, job: JobRow) -> Any:
        principal = principal_from_json(job.principal)
        ctx = RequestContext(endpoint="batch", principal=principal)
        payload = job.payload

        def model_check(name: str) -> str | None:
            try:
                check_line_model(self.pipeline, self.ocr, ctx, payload["endpoint"], name)
            except SouverainError as exc:
                return exc.message
            return None

        return validate(
            [self.files.read(file_id) for file_id in payload["input_files"]],
            api=payload["api"],
            endpoint=payload["endpoint"],
            config=self.config,
            model_check=model_check,
            job_model=payload.get("model"),
        )

    # ---- finalizing ----------------------------------------------------------------------------

    async def _finalize(self, job: JobRow, control: JobControl) -> None:
        result = {**job.result, "finalizing_at": time.time()}
        await asyncio.to_thread(self.jobs.update_held, job.id, control.replica,
                                stage="finalizing", result=result)  # fmt: skip
        ranges = await asyncio.to_thread(self.jobs.children, job.id)
        # A range ends `expired` at its first line past the window: a batch whose lines
        # were all answered is complete even if it is finalized after the window.
        expired = any(r.status == "expired" for r in ranges)
        written = await asyncio.to_thread(self._assemble, job, ranges)
        result.update(written)
        status = "cancelled" if job.cancel_requested else "expired" if expired else "succeeded"
        if await self._finish(job, control, status, result):
            # Kept until the files are stored and the batch says so: a finalization
            # interrupted before that is done again from them.
            await asyncio.to_thread(self.lines.forget, job.id)

    def _assemble(self, job: JobRow, ranges: list[JobRow]) -> dict[str, Any]:
        """Both files, in line order; their ids and the counts."""
        fate = {}  # index of a range's first line -> why its unanswered lines got nothing
        for piece in ranges:
            fate[int(piece.payload["first"])] = (
                piece.status,
                piece.error,
                int(piece.payload["count"]),
            )
        principal = principal_from_json(job.principal)
        lifetime = job.payload.get("output_expires_s")  # anchored at each file's creation
        counts = {"succeeded": 0, "failed": 0}
        with _spool() as output, _spool() as errors:
            for text, failed in self._merged(job, fate):
                (errors if failed else output).write(text.encode() + b"\n")
                counts["failed" if failed else "succeeded"] += 1
            ids: dict[str, Any] = {"counts": counts}
            for name, spool, purpose in (("output_file_id", output, "batch_output"),
                                         ("error_file_id", errors, "batch_error")):  # fmt: skip
                if spool.tell():
                    suffix = "output" if purpose == "batch_output" else "errors"
                    expires_at = time.time() + float(lifetime) if lifetime else None
                    record = self.files.add(principal, purpose, f"{job.id}_{suffix}.jsonl", spool,
                                            mimetype="application/jsonl",
                                            expires_at=expires_at)  # fmt: skip
                    ids[name] = record.id
        return ids

    def _merged(
        self, job: JobRow, fate: dict[int, tuple[str, str | None, int]]
    ) -> Iterator[tuple[str, bool]]:
        """(output line, failed) for every request that has one, in order."""
        recorded = self.lines.in_order(job.id)
        total = int(job.result.get("total") or 0)
        pending = next(recorded, None)
        gaps = self._custom_ids(job) if self.lines.counts(job.id).done < total else None
        starts = sorted(fate)
        for index in range(total):
            if pending is not None and pending.index == index:
                yield pending.text, pending.failed
                pending = next(recorded, None)
                continue
            if gaps is None:
                continue
            custom_id = gaps.get(index, str(index))
            status, error = _fate_of(index, starts, fate)
            if status == "expired" or (status in ("queued", "running", "waiting")):
                yield unanswered_line(custom_id, "batch_expired", EXPIRED), True
            elif status == "failed":
                why = f"the request could not be processed: {error or 'its range failed'}"
                yield unanswered_line(custom_id, "batch_failed", why), True
            # cancelled: OpenAI leaves requests that were not run out of both files

    def _custom_ids(self, job: JobRow) -> dict[int, str]:
        """custom_id by request index (only read when some requests got no answer)."""
        found: dict[int, str] = {}
        index = 0
        for file_id in job.payload["input_files"]:
            for raw in read_lines(self.files.read(file_id), self.config.max_line_bytes):
                if raw.data is not None:
                    with contextlib.suppress(LineProblem):
                        found[index] = parse_line(raw.data, job.payload["api"],
                                                  job.payload["endpoint"]).custom_id  # fmt: skip
                index += 1
        return found

    async def _finish(
        self, job: JobRow, control: JobControl, status: str, result: dict[str, Any]
    ) -> bool:
        return await asyncio.to_thread(self.jobs.finish, job.id, control.replica, status,
                                result={**job.result, **result})  # fmt: skip


def _fate_of(
    index: int, starts: list[int], fate: dict[int, tuple[str, str | None, int]]
) -> tuple[str, str | None]:
    position = bisect.bisect_right(starts, index) - 1
    if position < 0:
        return "failed", "no range held it"
    status, error, count = fate[starts[position]]
    if index >= starts[position] + count:
        return "failed", "no range held it"
    return status, error


def _spool() -> BinaryIO:
    return cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b"))
