"""The `batch_range` job: a few lines of one batch, answered in order.

Any replica may claim a range (jobs/runner.py); replicas share a batch range by range.
A range claimed again after its replica died starts over from its first line without an
answer: the lines answered before are skipped (batch/lines.py), and a line that was being
answered when the replica died is answered again, once in the output (insert-once).
A range stops within a line of its batch being cancelled, and ends `expired` once the
batch's completion window is over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..files.store import FileStore
from ..jobs.runner import JobControl
from ..jobs.store import JobRow, JobStore
from ..library.embedder import principal_from_json
from .execute import LineCaller, Submitter
from .lines import LineResult, LineStore
from .lines_format import LineProblem, Request, output_line, parse_line
from .reading import read_lines
from .settings import BatchConfig

RANGE_KIND = "batch_range"


@dataclass(frozen=True, slots=True)
class RangeLine:
    index: int
    request: Request | None  # None: the line is unreadable now (the file changed?)
    problem: str | None = None


@dataclass(slots=True)
class RangeHandler:
    config: BatchConfig
    jobs: JobStore
    lines: LineStore
    files: FileStore
    caller: LineCaller

    async def run(self, job: JobRow, control: JobControl) -> None:
        assert job.parent_id is not None
        batch = await asyncio.to_thread(self.jobs.get, job.parent_id)
        if batch is None or batch.finished or batch.cancel_requested or control.cancel.is_set():
            await self._end(job, control, "cancelled")
            return
        first, count = int(job.payload["first"]), int(job.payload["count"])
        answered = await asyncio.to_thread(self.lines.answered, batch.id, first, first + count - 1)
        todo = await asyncio.to_thread(self._read, batch, job.payload, answered)
        submitter = Submitter(principal_from_json(batch.principal), batch.payload.get("claim"))
        endpoint = batch.payload["endpoint"]
        model = batch.payload.get("model") if batch.payload["api"] == "mistral" else None
        for line in todo:
            if control.stopping:
                break
            if batch.expires_at is not None and time.time() > batch.expires_at:
                await self._end(job, control, "expired")
                return
            if line.request is None:
                text = output_line(str(line.index), 400, "", {"error": {
                    "message": line.problem, "type": "invalid_request_error",
                    "param": None, "code": "invalid_line"}})  # fmt: skip
                await asyncio.to_thread(
                    self.lines.record, batch.id, LineResult(line.index, True, text)
                )
                continue
            body = dict(line.request.body)
            if model is not None:
                body["model"] = model
            answer = await self.caller.answer(submitter, endpoint, body, control.cancel)
            text = output_line(
                line.request.custom_id, answer.status, answer.request_id, answer.body
            )
            result = LineResult(line.index, answer.status != 200, text)
            await asyncio.to_thread(self.lines.record, batch.id, result)
        if control.lost.is_set():
            return  # another replica holds this range now
        await self._end(job, control, "cancelled" if control.cancel.is_set() else "succeeded")

    def _read(self, batch: JobRow, payload: dict[str, int], answered: set[int]) -> list[RangeLine]:
        """The range's lines not answered yet: at most `range_lines` of bounded size."""
        file_id = batch.payload["input_files"][int(payload["file_index"])]
        first, count = int(payload["first"]), int(payload["count"])
        chunks: Iterable[bytes] = self.files.read(file_id)
        found: list[RangeLine] = []
        index = first
        for raw in read_lines(chunks, self.config.max_line_bytes, start=int(payload["offset"])):
            if index >= first + count:
                break
            if index not in answered:
                found.append(self._parsed(batch, index, raw.data))
            index += 1
        while index < first + count:  # the file ended early (deleted meanwhile?)
            if index not in answered:
                found.append(RangeLine(index, None, "the line could not be read again "
                                       "from the input file (was it deleted?)"))  # fmt: skip
            index += 1
        return found

    def _parsed(self, batch: JobRow, index: int, data: bytes | None) -> RangeLine:
        if data is None:
            return RangeLine(index, None, "the line is longer than batch.max_line_bytes")
        try:
            request = parse_line(data, batch.payload["api"], batch.payload["endpoint"])
        except LineProblem as problem:
            return RangeLine(index, None, problem.message)
        return RangeLine(index, request)

    async def _end(self, job: JobRow, control: JobControl, status: str) -> None:
        # Which replica ended it: how an operator (and a test) sees replicas share a batch.
        result = {"replica": control.replica}
        await asyncio.to_thread(self.jobs.finish, job.id, control.replica, status, result=result)
