"""Validating a batch's input files, streamed line by line, before any model call.

A batch whose input breaks a rule fails as a whole with errors that say which line and
why (OpenAI's `errors.data`: code, line, message, param): a line that is not a JSON
object, a missing or repeated custom_id, a url that is not the batch's endpoint, a model
the submitter may not use or (OpenAI, `batch.one_model`) another model than the first
line's, a line or a file over the `batch:` limits. A line whose body the endpoint would
refuse (a missing `messages`) is not a validation failure: it is answered, in the error
file, by the call itself. On success the plan cuts the requests into ranges of
`batch.range_lines`, each starting at a known byte offset of its file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .lines_format import Api, LineProblem, parse_line
from .reading import read_lines
from .settings import BatchConfig

MAX_REPORTED = 20  # errors listed before validation stops reading


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str
    line: int | None = None
    param: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line,
                "param": self.param}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RangePlan:
    file_index: int
    offset: int  # bytes into the file where the range's first line starts
    first: int  # the batch-wide index of its first request
    count: int

    def as_json(self) -> dict[str, int]:
        return {"file_index": self.file_index, "offset": self.offset, "first": self.first,
                "count": self.count}  # fmt: skip


@dataclass(slots=True)
class Plan:
    total: int = 0
    model: str | None = None
    ranges: list[RangePlan] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


ModelCheck = Callable[[str], str | None]  # a model name -> why it may not be used, or None


def validate(
    files: Sequence[Iterable[bytes]],
    *,
    api: Api,
    endpoint: str,
    config: BatchConfig,
    model_check: ModelCheck,
    job_model: str | None = None,
) -> Plan:
    """Read every input file once, in order; stop at the first size limit or after
    `MAX_REPORTED` problems."""
    return _Validator(api, endpoint, config, model_check, job_model).run(files)


class _Validator:
    def __init__(
        self,
        api: Api,
        endpoint: str,
        config: BatchConfig,
        model_check: ModelCheck,
        job_model: str | None,
    ) -> None:
        self.api = api
        self.endpoint = endpoint
        self.config = config
        self.model_check = model_check
        self.plan = Plan(model=job_model)
        self.seen_ids: dict[str, int] = {}
        self.size = 0
        self.oversized = False

    def run(self, files: Sequence[Iterable[bytes]]) -> Plan:
        plan = self.plan
        for file_index, chunks in enumerate(files):
            label = f"file {file_index + 1}, line" if len(files) > 1 else "line"
            current: RangePlan | None = None
            lines = read_lines(self._counted(chunks), self.config.max_line_bytes)
            for raw in lines:
                if plan.total >= self.config.max_lines:
                    self._problem("too_many_requests", f"the batch has more than "
                        f"{self.config.max_lines} requests (batch.max_lines); {label} "
                        f"{raw.number} is one too many", raw.number)  # fmt: skip
                    return plan
                self._line(raw.data, f"{label} {raw.number}", raw.number)
                if len(plan.problems) >= MAX_REPORTED:
                    return plan
                if current is None or current.count >= self.config.range_lines:
                    if current is not None:
                        plan.ranges.append(current)
                    current = RangePlan(file_index, raw.offset, plan.total, 0)
                current = replace(current, count=current.count + 1)
                plan.total += 1
            if self.oversized:
                return plan
            if current is not None:
                plan.ranges.append(current)
        if plan.total == 0 and not plan.problems:
            self._problem("empty_file", "the input file holds no request", None)
        return plan

    def _problem(self, code: str, message: str, line: int | None, param: str | None = None) -> None:
        self.plan.problems.append(Problem(code, message, line, param))

    def _line(self, data: bytes | None, label: str, number: int) -> None:
        if data is None:
            self._problem("line_too_long", f"{label} is longer than "
                f"{self.config.max_line_bytes} bytes (batch.max_line_bytes)", number)  # fmt: skip
            return
        try:
            self._check(data)
        except LineProblem as problem:
            self._problem(problem.code, f"{label}: {problem.message}", number, problem.param)

    def _check(self, data: bytes) -> None:
        request = parse_line(data, self.api, self.endpoint)
        plan = self.plan
        earlier = self.seen_ids.get(request.custom_id)
        if earlier is not None:
            raise LineProblem("duplicate_custom_id", f"custom_id "
                f"{request.custom_id[:100]!r} is also that of request {earlier + 1}",
                "custom_id")  # fmt: skip
        self.seen_ids[request.custom_id] = plan.total
        model = request.body.get("model")
        if self.api == "mistral":
            if model is not None and model != plan.model:
                raise LineProblem("mismatched_model", f"body.model {str(model)[:100]!r} is "
                    f"not the job's model {plan.model!r}", "body.model")  # fmt: skip
            return
        if not isinstance(model, str) or not model:
            raise LineProblem("missing_model", "body.model is missing or not a string",
                              "body.model")  # fmt: skip
        if model == plan.model:
            return
        why = self.model_check(model)
        if why is not None:
            raise LineProblem("model_not_found", why, "body.model")
        if plan.model is None:
            plan.model = model
        elif self.config.one_model:
            raise LineProblem("mismatched_model", f"body.model {model[:100]!r} differs from "
                f"{plan.model!r}, the model of the first request: a batch uses one model "
                "(batch.one_model)", "body.model")  # fmt: skip

    def _counted(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.size += len(chunk)
            if self.size > self.config.max_bytes:
                self.oversized = True
                self._problem("file_too_large", f"the input is larger than "
                    f"{self.config.max_bytes} bytes (batch.max_bytes)", None)  # fmt: skip
                return
            yield chunk
