"""The llama.cpp grammar that makes the local engine's tool calls well formed.

The model answers either with free text or with one block of calls,
`<tool_call>[{"name": "…", "arguments": {…}}, …]</tool_call>` (SmolLM2's own format for
function calling). The grammar allows exactly that: each call's name is one of the
offered functions and its arguments follow that function's `parameters` schema, so
what comes out always parses. Free text may not begin with `<`: the first character
decides which of the two the model is writing.

Every tool's schema goes through the same gate as a response format (schema_limits.py
bounds, json_schema.py rewrites, the jsonschema meta-schema), and the whole grammar is
parsed once by llama.cpp before it may be used (grammar.py): a schema that would crash
or stall llama.cpp is a 400 naming `tools.N.function.parameters`.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidRequest
from .conformance import check_schema
from .grammar import checked_grammar, response_grammar
from .json_schema import PARAM, enforceable_schema

CALLS_OPEN = "<tool_call>["
CALLS_CLOSE = "]</tool_call>"
MAX_PARALLEL_CALLS = 16
RESPONSE_PARAM = f"{PARAM}.schema"
# An object with no properties: what a tool without `parameters` takes.
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def tool_parameters(parameters: dict[str, Any] | None, index: int) -> dict[str, Any]:
    """The schema a tool's arguments must follow, checked like a response format;
    InvalidRequest whose `param` points into `tools.N.function.parameters`."""
    if not parameters:
        return NO_PARAMETERS
    param = f"tools.{index}.function.parameters"
    kind = parameters.get("type", "object")
    if kind != "object":
        raise InvalidRequest(
            f"tools[{index}]: a function's parameters must be a JSON schema of type "
            f"'object', not {kind!r}",
            param=f"{param}.type",
        )
    try:
        enforceable_schema(parameters)  # first: its refusals name the keyword
        check_schema(parameters)
    except InvalidRequest as exc:
        raise _for_tool(exc, param) from None
    return parameters


def tools_grammar(
    tools: Sequence[tuple[str, dict[str, Any]]],
    *,
    forced: bool,
    parallel: bool,
    response_schema: dict[str, Any] | None,
    vocab: Any,
) -> Any:
    """A checked grammar for a choice among `tools` ((name, parameters) pairs, already
    allowed by tool_parameters). `forced`: a call must be made; otherwise free text (or
    JSON following `response_schema`, when the request also asks for a response format)
    is the other branch."""
    converter = _converter_class()(
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    calls = []
    for index, (name, parameters) in enumerate(tools):
        param = f"tools.{index}.function.parameters"
        try:  # alone first, so that a refusal names its tool
            response_grammar(parameters, vocab)
            schema = copy.deepcopy(enforceable_schema(parameters))
        except InvalidRequest as exc:
            raise _for_tool(exc, param) from None
        arguments = _visit(converter, schema, f"tool{index}", param)
        head = json.dumps(f'{{"name": {json.dumps(name)}, "arguments": ')
        calls.append(f'{head} {arguments} "}}"')
    rules = [f"sv-call ::= {' | '.join(calls)}"]
    more = f' ("," " "? sv-call){{0,{MAX_PARALLEL_CALLS - 1}}}' if parallel else ""
    rules.append(f"sv-calls ::= {json.dumps(CALLS_OPEN)} sv-call{more} {json.dumps(CALLS_CLOSE)}")
    if forced:
        rules.append("root ::= sv-calls")
    elif response_schema is not None:
        response_grammar(response_schema, vocab)
        schema = response_schema or {"type": "object"}  # `{}`: any JSON object
        schema = copy.deepcopy(enforceable_schema(schema))
        answer = _visit(converter, schema, "response", RESPONSE_PARAM)
        rules.append(f"root ::= sv-calls | {answer}")
    else:
        rules.append("sv-text ::= [^<] .*")
        rules.append("root ::= sv-calls | sv-text")
    text = converter.format_grammar() + "\n" + "\n".join(rules) + "\n"
    return checked_grammar(text, vocab, param="tools")


def parse_calls(text: str) -> list[tuple[str, dict[str, Any]]] | None:
    """The (name, arguments) pairs of a generated call block; None when `text` is not a
    whole block (generation cut short by max_tokens or a stop sequence)."""
    if not (text.startswith(CALLS_OPEN) and text.endswith(CALLS_CLOSE)):
        return None
    try:
        calls = json.loads(text[len(CALLS_OPEN) - 1 : -len(CALLS_CLOSE) + 1])
    except (ValueError, RecursionError):
        return None
    if not isinstance(calls, list) or not calls:
        return None
    pairs = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return None
        arguments = call.get("arguments")
        if not isinstance(arguments, dict):
            return None
        pairs.append((call["name"], arguments))
    return pairs


def _visit(converter: Any, schema: dict[str, Any], prefix: str, param: str) -> str:
    """The name of the rule for `schema`; its $refs resolve within it (`prefix#/…`)."""
    try:
        resolved = converter.resolve_refs(schema, prefix)
        return str(converter.visit(resolved, f"{prefix}-value"))
    except RecursionError:
        raise InvalidRequest(
            f"{param}: this JSON schema nests too deeply to be enforced by the local engine",
            param=param,
        ) from None
    except Exception as exc:  # the converter raises bare exceptions on schemas it can't express
        raise InvalidRequest(
            f"{param}: this JSON schema cannot be enforced by the local engine: "
            f"{type(exc).__name__}: {exc}",
            param=param,
        ) from None


def _for_tool(exc: InvalidRequest, param: str) -> InvalidRequest:
    """A response-format refusal restated for a tool's parameters."""
    where = exc.param or RESPONSE_PARAM
    if where.startswith(RESPONSE_PARAM):
        where = param + where[len(RESPONSE_PARAM) :]
    message = exc.message.replace(RESPONSE_PARAM, param).replace("response_format:", f"{param}:")
    return InvalidRequest(message, param=where, code=exc.code)


@functools.cache
def _converter_class() -> type[Any]:
    """llama-cpp-python's converter, with each `$ref` given a rule of its own: two tools
    may both define `$defs/Item`, and the stock converter names the rule after the last
    part of the reference only, so the second tool would get the first one's rule.
    (llama_cpp is imported lazily, hence a function.)"""
    from llama_cpp.llama_grammar import SchemaConverter

    class ToolsConverter(SchemaConverter):
        def _resolve_ref(self, ref: str) -> str:
            names: dict[str, str] = self.__dict__.setdefault("_ref_names", {})
            if ref not in names:
                names[ref] = f"sv-ref{len(names)}"
                self._refs_being_resolved.add(ref)
                names[ref] = self.visit(self._refs[ref], names[ref])  # type: ignore[no-untyped-call]
                self._refs_being_resolved.remove(ref)
            return names[ref]

    return ToolsConverter
