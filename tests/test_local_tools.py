"""Tool calls on the embedded model (issue 13, items 3 and 4), through real HTTP with the
official openai and mistralai SDKs as clients, against the session's `souverain serve`.

What is asserted is what a client relies on, whatever the 135M model chooses to say:
every call names an offered function, its arguments parse and conform to the function's
schema (checked here with jsonschema, independently of the server), streamed calls come
whole with an id and a name, and a forced choice is obeyed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from mistralai.client import Mistral

from souverain.backends.local_tools import plan_tools, template_messages
from souverain.backends.tool_grammar import parse_calls
from souverain.errors import InvalidRequest
from souverain.protocol.chat import ChatCompletionRequest

from .conftest import Server
from .test_grammar_limits import CRASHING, SCHEMA

CHAT = "smollm2-135m-instruct"
RULES = 143  # lines of system prompt: with the tools, ~4,700 prompt tokens
MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}\Z")

BOOKING = {
    "type": "object",
    "properties": {
        "guest": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 40},
                "tier": {"enum": ["basic", "gold", "platinum"]},
            },
            "required": ["name", "tier"],
            "additionalProperties": False,
        },
        "nights": {"type": "integer", "minimum": 1, "maximum": 14},
        "room": {"type": "string", "enum": ["single", "double", "suite"]},
        "extras": {"type": "array", "items": {"enum": ["breakfast", "parking"]}, "maxItems": 2},
    },
    "required": ["guest", "nights", "room"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}


def tool(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    function = {"name": name, "description": description, "parameters": parameters}
    return {"type": "function", "function": function}


TOOLS = [
    tool("get_weather", "Current weather in a city", WEATHER),
    tool("book_room", "Book a hotel room", BOOKING),
]
SCHEMAS = {"get_weather": WEATHER, "book_room": BOOKING}
ASK = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
BOOK = [{"role": "user", "content": "Book a double room for Alice (gold) for 3 nights."}]


def named(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def assert_conforming(calls: list[Any]) -> None:
    """Each call (an SDK object) is whole and its arguments follow its tool's schema."""
    assert calls
    for call in calls:
        assert MISTRAL_ID.match(call.id), call.id
        arguments = call.function.arguments
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        jsonschema.validate(arguments, SCHEMAS[call.function.name])


@pytest.fixture(scope="module")
def oa(embedded: Server) -> openai.OpenAI:
    return openai.OpenAI(api_key=embedded.key, base_url=embedded.v1, max_retries=0, timeout=900)


@pytest.fixture(scope="module")
def mistral(embedded: Server) -> Mistral:
    return Mistral(api_key=embedded.key, server_url=embedded.url)


def complete(oa: openai.OpenAI, messages: list[Any], **extra: Any) -> Any:
    """One non-streamed answer; no seed, so that the cached prompt prefix is reused."""
    body: dict[str, Any] = {"model": CHAT, "messages": messages, "tools": TOOLS, "max_tokens": 80}
    return oa.chat.completions.create(**{**body, **extra}).choices[0]


HISTORY = [
    *ASK,
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "wEaTh3r01", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
    {"role": "tool", "tool_call_id": "wEaTh3r01", "name": "get_weather",
     "content": json.dumps({"temperature": 18, "sky": "sunny"})},
]  # fmt: skip


# ---- forced choices (the grammar guarantees them, whatever the model prefers) ----------


@pytest.mark.model
def test_named_function_is_called_with_conforming_nested_arguments(oa: openai.OpenAI) -> None:
    choice = complete(oa, BOOK, tool_choice=named("book_room"))
    assert choice.finish_reason == "tool_calls"
    assert [call.function.name for call in choice.message.tool_calls] == ["book_room"]
    assert_conforming(choice.message.tool_calls)


@pytest.mark.model
def test_required_and_parallel_off_give_exactly_one_call(oa: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Weather in Paris, Rome and Oslo?"}]
    choice = complete(oa, messages, tool_choice="required", parallel_tool_calls=False)
    assert choice.finish_reason == "tool_calls"
    assert len(choice.message.tool_calls) == 1
    assert_conforming(choice.message.tool_calls)


@pytest.mark.model
def test_parallel_on_allows_several_calls(oa: openai.OpenAI) -> None:
    messages = [
        *HISTORY,
        {"role": "assistant", "content": "It is sunny in Paris."},
        {"role": "user", "content": "Now the weather in Rome and in Oslo?"},
    ]
    choice = complete(oa, messages, tool_choice="required", parallel_tool_calls=True)
    assert 1 <= len(choice.message.tool_calls) <= 16
    assert_conforming(choice.message.tool_calls)
    ids = [call.id for call in choice.message.tool_calls]
    assert len(set(ids)) == len(ids)


@pytest.mark.model
def test_mistral_any_streams_whole_calls(mistral: Mistral) -> None:
    """Mistral's `any` (= required); its SDK rejects a call chunk without a name."""
    calls, finish, usage = [], None, []
    for event in mistral.chat.stream(
        model=CHAT,
        messages=ASK,
        tools=TOOLS,
        tool_choice="any",
        max_tokens=80,  # type: ignore[arg-type]
    ):
        for item in event.data.choices:
            calls.extend(item.delta.tool_calls or ())
            finish = item.finish_reason or finish
        if event.data.usage is not None:
            usage.append(event.data.usage)
    assert finish == "tool_calls"
    assert_conforming(calls)
    assert len(usage) == 1 and usage[0].completion_tokens > 0


@pytest.mark.model
def test_openai_stream_sends_each_call_whole(oa: openai.OpenAI) -> None:
    stream = oa.chat.completions.create(
        model=CHAT, messages=BOOK, tools=TOOLS, tool_choice="required", max_tokens=80,  # type: ignore[arg-type]
        stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    calls, finish, usage = [], None, []
    for chunk in stream:
        if chunk.usage is not None:
            usage.append(chunk.usage)
        for item in chunk.choices:
            for call in item.delta.tool_calls or ():
                assert call.id and call.function and call.function.name
                json.loads(call.function.arguments or "")  # whole, not a fragment
                calls.append(call)
            finish = item.finish_reason or finish
    assert finish == "tool_calls"
    assert len(usage) == 1
    assert_conforming(calls)
    assert [call.index for call in calls] == list(range(len(calls)))


# ---- auto and none ----------------------------------------------------------------------


@pytest.mark.model
def test_auto_gives_text_or_conforming_calls(oa: openai.OpenAI) -> None:
    choice = complete(oa, BOOK, tool_choice="auto", max_tokens=48)
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        assert_conforming(choice.message.tool_calls)
    else:
        assert choice.finish_reason in ("stop", "length")
        assert choice.message.content and not choice.message.content.startswith("<")


@pytest.mark.model
def test_streamed_auto_relays_text_or_whole_calls(oa: openai.OpenAI) -> None:
    stream = oa.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Say hello to Anna."}], tools=TOOLS,  # type: ignore[arg-type]
        max_tokens=40, stream=True,
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    assert text or calls
    if calls:
        assert_conforming(calls)


@pytest.mark.model
def test_tool_result_round_trip_and_none(oa: openai.OpenAI, mistral: Mistral) -> None:
    """An earlier call and its result in the history; `none`: a text answer comes back."""
    final = complete(oa, HISTORY, tool_choice="none", max_tokens=16)
    assert final.finish_reason in ("stop", "length")
    assert final.message.content and not final.message.tool_calls
    answer = mistral.chat.complete(
        model=CHAT, messages=HISTORY, tools=TOOLS, tool_choice="none", max_tokens=16,  # type: ignore[arg-type]
    )  # fmt: skip
    assert answer.choices[0].message.content
    assert not answer.choices[0].message.tool_calls


# ---- refusals ---------------------------------------------------------------------------


def post(server: Server, **body: Any) -> httpx.Response:
    body = {"model": CHAT, "messages": ASK, "max_tokens": 8, **body}
    with server.client() as client:
        return client.post("/v1/chat/completions", json=body, timeout=120)


@pytest.mark.model
def test_unknown_named_function_is_a_400(oa: openai.OpenAI, mistral: Mistral) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        complete(oa, ASK, tool_choice=named("launch_rockets"))
    assert caught.value.body["param"] == "tool_choice"  # type: ignore[index]
    assert "launch_rockets" in caught.value.message


@pytest.mark.model
def test_hostile_tool_schemas_are_400s_and_the_server_lives(embedded: Server) -> None:
    """Every schema that once crashed or hung the engine as a response format, as a tool's
    parameters: a 400 naming the keyword inside `tools.1.function.parameters`."""
    for schema, param in CRASHING:
        parameters = {"type": "object", "properties": {"x": schema}, "required": ["x"]}
        evil = tool("evil", "", parameters)
        keyword = param.removeprefix(SCHEMA)
        for stream in (False, True):
            response = post(embedded, tools=[TOOLS[0], evil], tool_choice="required", stream=stream)
            assert response.status_code == 400, (schema, response.text)
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error"
            if keyword:
                assert error["param"].startswith(
                    f"tools.1.function.parameters.properties.x{keyword}"
                )
            else:
                assert error["param"].startswith("tools.1.function.parameters"), error
    assert embedded.process.poll() is None
    assert post(embedded, max_tokens=1).status_code == 200


@pytest.mark.model
@pytest.mark.parametrize(
    ("tools", "choice", "param"),
    [
        (TOOLS, "sometimes", "tool_choice"),
        (TOOLS, {"type": "function"}, "tool_choice"),
        (None, "required", "tool_choice"),
        ([TOOLS[0], TOOLS[0]], "auto", "tools.1.function.name"),
        ([{"type": "function", "function": {"name": "a b"}}], "auto", "tools.0.function.name"),
        ([{"type": "function", "function": {"name": "s", "parameters": {"type": "string"}}}],
         "auto", "tools.0.function.parameters.type"),
        ([{"type": "function", "function": {"name": "s", "parameters": {"type": "object", "properties": {"a": {"type": 5}}}}}],
         "auto", "tools.0.function.parameters"),
    ],
)  # fmt: skip
def test_bad_tools_are_400s(embedded: Server, tools: Any, choice: Any, param: str) -> None:
    response = post(embedded, tools=tools, tool_choice=choice)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith(param)


# ---- item 4: an agent's first request fits ----------------------------------------------


def agent_tools() -> list[dict[str, Any]]:
    """Ten tools shaped like a coding agent's (bash, files, search, todo...)."""
    text = {"type": "string", "description": "A path or a text."}
    specs = {
        "bash": {"command": text, "timeout": {"type": "integer", "description": "Seconds."}},
        "read_file": {"path": text, "offset": {"type": "integer"}, "limit": {"type": "integer"}},
        "write_file": {"path": text, "content": text, "overwrite": {"type": "boolean"}},
        "search_replace": {"file_path": text, "content": text},
        "grep": {"pattern": text, "path": text, "max_matches": {"type": "integer"}},
        "list_dir": {"path": text},
        "todo": {"action": {"enum": ["read", "write"]},
                 "todos": {"type": "array", "items": {"type": "object", "properties": {
                     "id": {"type": "string"}, "content": text,
                     "status": {"enum": ["pending", "in_progress", "completed"]}}}}},
        "ask_user": {"question": text},
        "web_fetch": {"url": text},
        "task": {"description": text, "agent": {"enum": ["explore", "plan"]}},
    }  # fmt: skip
    return [
        {"type": "function", "function": {
            "name": name, "description": f"The {name} tool. " + "Use it with care. " * 20,
            "parameters": {"type": "object", "properties": props, "required": list(props)[:1]}}}
        for name, props in specs.items()
    ]  # fmt: skip


@pytest.mark.model
def test_an_agent_sized_first_request_is_accepted(oa: openai.OpenAI) -> None:
    rules = "\n".join(
        f"{n}. Read the files before you change them; keep each change small and tested."
        for n in range(1, RULES)
    )
    system = f"You are a coding agent working in a repository.\n{rules}"
    slow = oa.with_options(timeout=1200)  # ~4,700 prompt tokens on 2 shared cores
    answer = slow.chat.completions.create(
        model=CHAT, tools=agent_tools(), max_tokens=1,  # type: ignore[arg-type]
        messages=[{"role": "system", "content": system},
                  {"role": "user", "content": "List the files in the current directory."}],
    )  # fmt: skip
    assert 4500 <= answer.usage.prompt_tokens <= 6000, answer.usage
    assert answer.choices[0].finish_reason in ("stop", "length", "tool_calls")


@pytest.mark.model
def test_models_list_the_trained_context(oa: openai.OpenAI, mistral: Mistral) -> None:
    model = mistral.models.retrieve(model_id=CHAT)
    assert model.max_context_length == 8192
    assert model.capabilities.function_calling is True


# ---- units: no model needed -------------------------------------------------------------


def request(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": CHAT, "messages": ASK, **body})


def test_plan_follows_tool_choice() -> None:
    assert plan_tools(request()) is None
    assert plan_tools(request(tools=TOOLS, tool_choice="none")) is None
    auto = plan_tools(request(tools=TOOLS))
    assert auto is not None and not auto.forced and auto.parallel
    assert [name for name, _ in auto.tools] == ["get_weather", "book_room"]
    for forced in ("required", "any"):
        plan = plan_tools(request(tools=TOOLS, tool_choice=forced, parallel_tool_calls=False))
        assert plan is not None and plan.forced and not plan.parallel
    one = plan_tools(request(tools=TOOLS, tool_choice=named("book_room")))
    assert one is not None and one.forced and [n for n, _ in one.tools] == ["book_room"]
    with pytest.raises(InvalidRequest) as caught:
        plan_tools(request(tools=TOOLS, tool_choice=named("nope")))
    assert caught.value.param == "tool_choice"


def test_history_renders_calls_and_results() -> None:
    history = request(
        messages=[
            *ASK,
            {"role": "assistant", "tool_calls": [{"id": "abcdefghi", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
            {"role": "tool", "tool_call_id": "abcdefghi", "content": "18 degrees"},
        ],
        tools=TOOLS,
    )  # fmt: skip
    rendered = template_messages(history, plan_tools(history))
    assert rendered[0]["role"] == "system" and "<tools>" in rendered[0]["content"]
    assert '"name": "book_room"' in rendered[0]["content"]
    call = rendered[2]["content"]
    assert parse_calls(call) == [("get_weather", {"city": "Paris", "unit": "celsius"})]
    assert rendered[3] == {
        "role": "tool", "content": "<tool_response>\n18 degrees\n</tool_response>", "prefix": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["", "<tool_call>[", '<tool_call>[{"name": "a", "arguments": {}}', "hello",
     '<tool_call>[{"name": "a", "arguments": 3}]</tool_call>', "<tool_call>[]]</tool_call>"],
)  # fmt: skip
def test_unfinished_blocks_are_not_calls(text: str) -> None:
    assert parse_calls(text) is None
