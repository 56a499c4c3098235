"""A forced tool call through llama.cpp's server, written under Souverain's grammar.

With `json_schema_as: grammar`, a deployment is a llama.cpp server that reads a GBNF
`grammar`. Its own way of writing a forced call (`tool_choice` naming a function) builds
the arguments' grammar with a converter that drops numeric bounds; SmolLM2 then wrote a
string with raw newlines and a confidence of 1.0e3245897654321000 for pydantic-ai's output
tool (tests/clients/test_pydantic_ai.py). So when a request forces one named function on
such a deployment, the engine asks for the arguments as plain text under the local
engine's grammar for the tool's parameters (bounds included), with the tool named in a
system message, and turns the answer back into that one call, whole, as Mistral sends
calls. The system message holds only the tool's name and description, which the DLP has
already scanned as part of `tools`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..protocol.chat import ChatDelta, Completion
from ..protocol.common import Usage
from ..protocol.tool_call_stream import new_tool_call_id
from .grammar import grammar_text


@dataclass(frozen=True, slots=True)
class ForcedCall:
    name: str
    parameters: dict[str, Any]
    description: str | None


def forced_call(body: dict[str, Any]) -> ForcedCall | None:
    """The one function an outbound chat body forces, or None."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return None
    name = (choice.get("function") or {}).get("name")
    if not isinstance(name, str):
        return None
    for tool in body.get("tools") or ():
        function = tool.get("function") or {}
        if function.get("name") == name:
            parameters = function.get("parameters") or {"type": "object"}
            return ForcedCall(name, parameters, function.get("description"))
    return None


def spell_as_grammar(body: dict[str, Any], call: ForcedCall) -> None:
    """Rewrite `body` in place: no tools, the call's arguments as grammar-bound text."""
    for key in ("tools", "tool_choice", "parallel_tool_calls", "response_format"):
        body.pop(key, None)
    body["grammar"] = grammar_text(call.parameters)
    about = f" ({call.description})" if call.description else ""
    instruction = (
        f"Call the function {call.name}{about}: answer with its arguments only, as one JSON object."
    )
    body["messages"] = [{"role": "system", "content": instruction}, *body["messages"]]


def as_call(completion: Completion, call: ForcedCall) -> Completion:
    """The answer's text as the forced call; a text cut by the length limit stays text
    (it is no whole JSON object, and `finish_reason: length` says so)."""
    if completion.finish_reason == "length":
        return completion
    return Completion(
        tool_calls=[_call_entry(call, completion.content)],
        finish_reason="tool_calls",
        usage=completion.usage,
    )


async def as_call_deltas(
    deltas: AsyncIterator[ChatDelta], call: ForcedCall
) -> AsyncIterator[ChatDelta]:
    """The streamed answer held, then sent as one whole call with the finish reason."""
    text: list[str] = []
    usage: Usage | None = None
    finish = None
    try:
        async for delta in deltas:
            text.append(delta.content or "")
            usage = delta.usage or usage
            finish = delta.finish_reason or finish
    finally:
        await deltas.aclose()  # type: ignore[attr-defined]
    if finish == "length":
        yield ChatDelta(content="".join(text), finish_reason="length", usage=usage)
        return
    entry = {"index": 0, **_call_entry(call, "".join(text))}
    yield ChatDelta(tool_calls=[entry], finish_reason="tool_calls", usage=usage)


def _call_entry(call: ForcedCall, arguments: str) -> dict[str, Any]:
    function = {"name": call.name, "arguments": arguments.strip()}
    return {"id": new_tool_call_id(), "type": "function", "function": function}
