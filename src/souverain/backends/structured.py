"""Structured output on the local engine: only an answer that conforms goes out.

The grammar enforces most of a schema while the model writes (json_schema.py); the rest
(exclusive bounds, `multipleOf`, real calendar dates, `uniqueItems`, ...) is checked once
the answer is whole (conformance.py). A try that does not conform is thrown away and the
generation runs again, at most MAX_TRIES times in all, each retry with another seed and
some sampling temperature (greedy decoding would repeat the same answer).

Streams are held: the deltas of a try are released only once the try conforms, so a
client never sees a byte it would have to take back. The first byte of a structured
stream therefore comes when the whole answer is ready; a failure still gets a proper
HTTP status, since nothing was sent yet.

When no try conforms the answer is HTTP 422 with code `output_not_conforming`: the request
was valid, but the model could not produce a conforming answer (simplify the schema, give
the model more guidance, or use a larger model). A try cut short by `max_tokens` is not
retried (it would be cut again): the same error says to raise `max_tokens`.

Usage counts every try: that is the work the engine did, and what quotas should charge.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import SouverainError
from ..protocol.chat import ChatDelta
from ..protocol.common import Usage
from .conformance import violations

MAX_TRIES = 3
RETRY_TEMPERATURE = 0.7
SHOWN_VIOLATIONS = 3


class OutputNotConforming(SouverainError):
    """The model's answers did not conform to the requested JSON schema."""

    status_code = 422
    error_type = "invalid_request_error"
    default_code = "output_not_conforming"


def retry_options(options: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Sampling options for try `attempt` (0: the client's own)."""
    if attempt == 0:
        return options
    seed = options.get("seed")
    return {
        **options,
        "seed": None if seed is None else (seed + attempt) % 2**31,
        "temperature": max(options.get("temperature") or 0.0, RETRY_TEMPERATURE),
    }


async def conforming(
    schema: dict[str, Any],
    generate: Callable[[int], AsyncIterator[ChatDelta]],
    *,
    tries: int = MAX_TRIES,
) -> AsyncIterator[ChatDelta]:
    """The deltas of the first try (`generate(attempt)`) whose text conforms to `schema`,
    with the usage of all tries on the last; OutputNotConforming when none does."""
    spent = Usage()
    problems: list[str] = []
    for attempt in range(tries):
        deltas = [delta async for delta in generate(attempt)]
        for delta in deltas:
            if delta.usage is not None:
                spent = Usage(
                    spent.prompt_tokens + delta.usage.prompt_tokens,
                    spent.completion_tokens + delta.usage.completion_tokens,
                )
        if deltas and deltas[-1].finish_reason == "length":
            raise OutputNotConforming(
                f"the answer was cut at max_tokens before it was complete JSON "
                f"({spent.completion_tokens} tokens written); raise max_tokens",
                param="max_tokens",
            )
        problems = _problems(schema, "".join(delta.content or "" for delta in deltas))
        if not problems:
            if deltas:
                deltas[-1].usage = spent
            for delta in deltas:
                yield delta
            return
    shown = "; ".join(problems[:SHOWN_VIOLATIONS])
    raise OutputNotConforming(
        f"the model produced no answer that conforms to the JSON schema in {tries} tries "
        f"(last: {shown})",
        param="response_format.json_schema.schema",
    )


def _problems(schema: dict[str, Any], text: str) -> list[str]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return ["the answer is not valid JSON"]
    return violations(schema, value)
