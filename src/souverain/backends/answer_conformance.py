"""Structured output from every engine: an answer that does not conform never reaches a client.

The local engine enforces a schema while it writes and checks the rest (structured.py). An
HTTP engine's server does what it does: llama.cpp's grammar drops numeric bounds, a
hosted API may ignore `strict`, a plugin engine may know no schema at all. So the
dispatcher holds every answer to a request that demands a shape, whichever engine gave it,
to the same check (conformance.py `violations`) under the local engine's rule:

- what is demanded: the content, by a `response_format` of type json_schema; the arguments
  of each call to a function tool declared `strict`. An answer that calls tools is judged
  by those calls alone: the response format shapes the final answer, not a tool turn;
- a try that does not conform is thrown away and asked again (another seed, some sampling
  temperature: structured.py `retry_options`), MAX_TRIES in all; when none conforms, 422
  `output_not_conforming` naming the first violations. A try cut at `max_tokens` is not
  retried (it would be cut again): the same error names `max_tokens`;
- a stream is held until its try conforms, then released as it came, so a failure is
  still a plain HTTP 422 (no byte went out), as on the local engine;
- usage counts every try: that is what the engines did, and what quotas charge;
- the check reads the answer as the client gets it, after DLP put the pseudonyms back
  (a pseudonym is not the value the schema's `maxLength` or `format` was written for).

An engine that holds answers itself says so (`Backend.checks_structured_output`: the local
engine, whose grammar, check and retries are structured.py and local_tools.py) and is left
to it: its limits on a schema come first, and an answer is judged once. Non-strict tools
are not judged: OpenAI promises nothing for them, and an agent that gets a bad call can
tell its model, where a 422 would end its run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..protocol.chat import ChatCompletionRequest, ChatDelta, Completion, Tool
from ..protocol.common import Usage
from .base import Backend
from .conformance import check_schema, violations
from .structured import MAX_TRIES, SHOWN_VIOLATIONS, OutputNotConforming, retry_options

ResultT = TypeVar("ResultT")
RequestT = TypeVar("RequestT")
RESPONSE_PARAM = "response_format.json_schema.schema"


@dataclass(frozen=True, slots=True)
class Demands:
    """The shapes a request demands of its answer: a content schema, strict tools."""

    schema: dict[str, Any] | None
    tools: dict[str, dict[str, Any]]  # strict function name -> its parameters' schema

    @classmethod
    def of(cls, request: object) -> Demands | None:
        """None when the request demands no shape (then nothing is held)."""
        if not isinstance(request, ChatCompletionRequest):
            return None
        fmt = request.response_format
        schema = None
        if fmt is not None and fmt.type == "json_schema" and fmt.json_schema is not None:
            schema = fmt.json_schema.schema_
        tools = {
            item.function.name: item.function.parameters or {}
            for item in request.tools or ()
            if isinstance(item, Tool) and item.function.strict
        }
        if not schema and not tools:
            return None
        return cls(schema or None, tools)

    def check(self, request: ChatCompletionRequest) -> None:
        """A 400 for a schema no answer could be judged against, before any engine works."""
        if self.schema is not None:
            check_schema(self.schema, param=RESPONSE_PARAM)
        for index, item in enumerate(request.tools or ()):
            if isinstance(item, Tool) and item.function.name in self.tools:
                parameters = self.tools[item.function.name]
                check_schema(parameters, param=f"tools.{index}.function.parameters")

    def problems(self, answer: Completion) -> list[str] | None:
        """Why `answer` does not conform (empty: it does); None: nothing in it is judged."""
        if answer.tool_calls:
            judged, found = False, []
            for call in answer.tool_calls:
                function = call.get("function") or {}
                parameters = self.tools.get(function.get("name") or "")
                if parameters is None:
                    continue
                judged = True
                name = function["name"]
                arguments = function.get("arguments") or "{}"  # some servers send "" for none
                found += [
                    f"tool call {name!r}: {problem}"
                    for problem in _json_problems(parameters, arguments, "its arguments")
                ]
            return found if judged else None
        if self.schema is None:
            return None
        return _json_problems(self.schema, answer.content, "the answer")


def checked_stream(
    backend: Backend, request: RequestT, start: Callable[[RequestT], AsyncIterator[ChatDelta]]
) -> AsyncIterator[ChatDelta]:
    """`start(request)`, held and retried until it conforms when the request demands a shape."""
    demands = None if backend.checks_structured_output else Demands.of(request)
    if demands is None or not isinstance(request, ChatCompletionRequest):
        return start(request)
    demands.check(request)
    # `start` takes what `request` is: here a chat request (mypy cannot narrow a TypeVar's callable)
    return _held(demands, request, start)  # type: ignore[arg-type]


async def checked_unary(
    backend: Backend, request: RequestT, call: Callable[[RequestT], Awaitable[ResultT]]
) -> ResultT:
    """`call(request)`, retried until its answer conforms when the request demands a shape."""
    demands = None if backend.checks_structured_output else Demands.of(request)
    if demands is None or not isinstance(request, ChatCompletionRequest):
        return await call(request)
    demands.check(request)
    tries = _Tries(demands)
    for attempt in range(MAX_TRIES):
        result = await call(retry_request(request, attempt))  # type: ignore[arg-type]  # as above
        if not isinstance(result, Completion):
            return result
        if tries.judge(result):
            result.usage = tries.spent
            return result
    raise tries.refusal()


def retry_request(request: ChatCompletionRequest, attempt: int) -> ChatCompletionRequest:
    """The request for try `attempt` (0: as sent): another seed, some temperature."""
    if attempt == 0:
        return request
    options = retry_options(
        {"seed": request.effective_seed, "temperature": request.temperature}, attempt
    )
    update: dict[str, Any] = {"seed": options["seed"], "temperature": options["temperature"]}
    if request.random_seed is not None:  # Mistral's spelling, which its engine sends first
        update["random_seed"] = options["seed"]
    return request.model_copy(update=update)


async def _held(
    demands: Demands,
    request: ChatCompletionRequest,
    start: Callable[[ChatCompletionRequest], AsyncIterator[ChatDelta]],
) -> AsyncIterator[ChatDelta]:
    tries = _Tries(demands)
    for attempt in range(MAX_TRIES):
        deltas = await _drain(start(retry_request(request, attempt)))
        answer = Completion()
        for delta in deltas:
            answer.add(delta)
        if tries.judge(answer):
            _charge(deltas, tries.spent)
            for delta in deltas:
                yield delta
            return
    raise tries.refusal()


async def _drain(stream: AsyncIterator[ChatDelta]) -> list[ChatDelta]:
    """Every delta of a try; the engine's stream closed however this ends."""
    try:
        return [delta async for delta in stream]
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def _charge(deltas: list[ChatDelta], spent: Usage) -> None:
    """Every try's usage on the released try's usage delta (the last one if it had none),
    and on no other: a client that adds chunks up must count it once."""
    carriers = [delta for delta in deltas if delta.usage is not None] or deltas[-1:]
    for delta in carriers[:-1]:
        delta.usage = None
    if carriers and (carriers[-1].usage is not None or spent.total_tokens):
        carriers[-1].usage = spent


class _Tries:
    """What the tries of one request cost and what the last one got wrong."""

    def __init__(self, demands: Demands) -> None:
        self.demands = demands
        self.spent = Usage()
        self.problems: list[str] = []
        self.count = 0

    def judge(self, answer: Completion) -> bool:
        """True: release this answer. Raises when it was cut before it could conform."""
        self.count += 1
        self.spent = Usage(
            self.spent.prompt_tokens + answer.usage.prompt_tokens,
            self.spent.completion_tokens + answer.usage.completion_tokens,
        )
        problems = self.demands.problems(answer)
        if problems is None:
            return True
        if answer.finish_reason == "length":
            raise OutputNotConforming(
                f"the answer was cut at max_tokens before it was complete JSON "
                f"({answer.usage.completion_tokens} tokens written); raise max_tokens",
                param="max_tokens",
            )
        self.problems = problems
        return not problems

    def refusal(self) -> OutputNotConforming:
        shown = "; ".join(self.problems[:SHOWN_VIOLATIONS])
        tools_only = all(problem.startswith("tool call ") for problem in self.problems)
        return OutputNotConforming(
            f"the model produced no answer that conforms to the JSON schema in {self.count} "
            f"tries (last: {shown})",
            param="tools" if tools_only else RESPONSE_PARAM,
        )


def _json_problems(schema: dict[str, Any], text: object, what: str) -> list[str]:
    if not isinstance(text, str):  # arguments an engine gave as an object, not a string
        return violations(schema, text)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return [f"{what} is not valid JSON"]
    return violations(schema, value)
