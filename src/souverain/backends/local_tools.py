"""Tool calls on the local engine: what may be called, how tools reach the prompt, and
how the generated call block becomes OpenAI/Mistral tool calls.

A model this small has no tool-call parser of its own to rely on, so the grammar
(tool_grammar.py) makes every call well formed, and each call's arguments are checked
once more against the tool's full schema (conformance.py), since the grammar enforces
only part of a schema (numeric bounds, formats). Arguments that do not conform are
never sent: the generation is tried again, then fails with a clear error.

Calls go out whole, one entry per call with its id and name, in the same delta that
ends the generation (finish_reason `tool_calls`), as Mistral's API sends them.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import EngineError, InvalidRequest
from ..protocol.chat import ChatCompletionRequest, ChatDelta, ChatMessage, Tool
from ..protocol.common import Usage
from ..protocol.tool_call_stream import new_tool_call_id
from .conformance import violations
from .tool_grammar import CALLS_CLOSE, CALLS_OPEN, parse_calls, tool_parameters

MAX_TOOLS = 128  # OpenAI's limit
MAX_ATTEMPTS = 3  # generations tried before non-conforming arguments are an error
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")  # OpenAI's and Mistral's rule for names
REQUIRED_CHOICES = ("required", "any")  # `any`: Mistral's spelling of `required`


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """The calls a request allows: `tools` as (name, parameters) pairs, in request order."""

    tools: tuple[tuple[str, dict[str, Any]], ...]
    descriptions: tuple[str | None, ...]
    forced: bool  # `required`, `any` or a named function: the answer must be a call
    parallel: bool  # several calls in one answer

    def schema(self, name: str) -> dict[str, Any]:
        return dict(self.tools)[name]


def plan_tools(request: ChatCompletionRequest) -> ToolPlan | None:
    """The calls `request` allows, None when it allows none; InvalidRequest (400) for a
    `tool_choice` or a tool the local engine cannot honour."""
    functions = [tool.function for tool in request.tools or () if isinstance(tool, Tool)]
    choice = request.tool_choice
    if len(functions) > MAX_TOOLS:
        raise InvalidRequest(f"at most {MAX_TOOLS} tools may be given", param="tools")
    named = _named_choice(choice)
    if choice is not None and named is None and choice not in ("auto", "none", *REQUIRED_CHOICES):
        raise InvalidRequest(
            "tool_choice must be 'auto', 'none', 'required', 'any' or "
            "{'type': 'function', 'function': {'name': ...}}",
            param="tool_choice",
        )
    if not functions:
        if choice in REQUIRED_CHOICES or named is not None:
            raise InvalidRequest(
                "tool_choice asks for a call, but no tools are given", param="tool_choice"
            )
        return None
    seen: set[str] = set()
    for index, function in enumerate(functions):
        if not TOOL_NAME.match(function.name):
            raise InvalidRequest(
                f"tools[{index}]: a function name is 1 to 64 letters, digits, '_' or '-'",
                param=f"tools.{index}.function.name",
            )
        if function.name in seen:
            raise InvalidRequest(
                f"tools[{index}]: the function name {function.name!r} is given twice",
                param=f"tools.{index}.function.name",
            )
        seen.add(function.name)
    if named is not None and named not in seen:
        raise InvalidRequest(
            f"tool_choice names the function {named!r}, which is not among the tools",
            param="tool_choice",
        )
    if choice == "none":
        return None
    offered = [f for f in functions if named is None or f.name == named]
    return ToolPlan(
        tools=tuple((f.name, tool_parameters(f.parameters, functions.index(f))) for f in offered),
        descriptions=tuple(f.description for f in offered),
        forced=named is not None or choice in REQUIRED_CHOICES,
        parallel=named is None and request.parallel_tool_calls is not False,
    )


def _named_choice(choice: object) -> str | None:
    if not isinstance(choice, dict):
        return None
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or choice.get("type", "function") != "function":
        raise InvalidRequest(
            "tool_choice must be a string or {'type': 'function', 'function': {'name': ...}}",
            param="tool_choice",
        )
    return name


# ---- the prompt -------------------------------------------------------------------------


def template_messages(
    request: ChatCompletionRequest, plan: ToolPlan | None
) -> list[dict[str, Any]]:
    """The messages as the chat template reads them: calls and results from earlier turns
    written in the model's call format, and the offered tools in the system message."""
    messages = [_as_template_message(message) for message in request.messages]
    if plan is None:
        return messages
    instructions = _tools_prompt(plan)
    if messages and messages[0]["role"] == "system":
        first = messages[0]
        messages[0] = {**first, "content": f"{first['content']}\n\n{instructions}".lstrip()}
    else:
        messages.insert(0, {"role": "system", "content": instructions, "prefix": False})
    return messages


def _as_template_message(message: ChatMessage) -> dict[str, Any]:
    role = "system" if message.role == "developer" else message.role
    content = message.text()
    if message.tool_calls:
        calls = [
            {"name": call.function.name, "arguments": _arguments(call.function.arguments)}
            for call in message.tool_calls
        ]
        block = CALLS_OPEN[:-1] + json.dumps(calls, ensure_ascii=False) + CALLS_CLOSE[1:]
        content = f"{content}\n{block}" if content else block
    if message.role == "tool":
        content = f"<tool_response>\n{content}\n</tool_response>"
    return {"role": role, "content": content, "prefix": message.prefix}


def _arguments(arguments: str | dict[str, Any]) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments  # shown as the client sent it


def _tools_prompt(plan: ToolPlan) -> str:
    listed = [
        {"name": name, "description": description or "", "parameters": parameters}
        for (name, parameters), description in zip(plan.tools, plan.descriptions, strict=True)
    ]
    if plan.forced and len(plan.tools) == 1:
        rule = f"You must call the function {plan.tools[0][0]}."
    elif plan.forced:
        rule = "You must call one or more of these functions."
    else:
        rule = (
            "If a function helps answer the question, call it; "
            "otherwise answer in plain text without calling any."
        )
    how_many = "one or more function calls" if plan.parallel else "exactly one function call"
    return (
        "You are an expert in composing functions. You are given a question and a set of "
        "possible functions. Based on the question, you may need to make "
        f"{how_many} to achieve the purpose. {rule}\n\n"
        "You have access to the following tools:\n"
        f"<tools>{json.dumps(listed, ensure_ascii=False)}</tools>\n\n"
        "To call functions, answer with nothing else than:\n"
        '<tool_call>[{"name": "func_name1", "arguments": {"argument1": "value1"}}]</tool_call>'
    )


# ---- the answer -------------------------------------------------------------------------


async def tool_call_deltas(
    plan: ToolPlan, generate: Callable[[int], AsyncIterator[ChatDelta]]
) -> AsyncIterator[ChatDelta]:
    """The deltas of a generation under the tool grammar: free text is relayed as it
    comes; a call block is held until it ends, checked, and sent as tool calls.
    `generate(attempt)` starts one generation (attempt 0 first, then retries)."""
    spent = Usage()
    for attempt in range(MAX_ATTEMPTS):
        held: list[str] = []
        calling: bool | None = None
        end: ChatDelta | None = None
        deltas = generate(attempt)
        try:
            async for delta in deltas:
                if calling is None and delta.content:
                    calling = delta.content.startswith(CALLS_OPEN[0])
                if delta.finish_reason is not None:
                    end = delta
                    delta.usage = _add(spent, delta.usage)
                if calling:
                    held.append(delta.content or "")
                    continue
                yield delta
        finally:  # a client gone mid-stream stops the generation too
            aclose = getattr(deltas, "aclose", None)
            if aclose is not None:
                await aclose()
        if not calling or end is None:
            return
        calls = parse_calls("".join(held))
        if calls is None:  # cut short by max_tokens or a stop sequence: nothing half-made
            yield ChatDelta(content="", finish_reason=end.finish_reason, usage=end.usage)
            return
        problems = [
            f"{name}: {problem}"
            for name, arguments in calls
            for problem in violations(plan.schema(name), arguments)
        ]
        if not problems:
            yield ChatDelta(
                tool_calls=[_whole_call(position, *call) for position, call in enumerate(calls)],
                finish_reason="tool_calls",
                usage=end.usage,
            )
            return
        spent = end.usage or spent
    raise EngineError(
        f"the model's tool call arguments did not conform to the tool's parameters after "
        f"{MAX_ATTEMPTS} attempts: {problems[0]}"
    )


def _whole_call(position: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": position,
        "id": new_tool_call_id(),
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


def _add(spent: Usage, usage: Usage | None) -> Usage | None:
    """Every attempt's tokens count: they were computed for this request."""
    if usage is None:
        return None
    return Usage(
        spent.prompt_tokens + usage.prompt_tokens,
        spent.completion_tokens + usage.completion_tokens,
    )
