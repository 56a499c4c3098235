"""What the `openai` engine sends, spelled so every OpenAI-compatible server obeys it.

Found by the client tests against llama.cpp's server (tests/clients/): it ignores
`max_completion_tokens` (langchain-openai and pydantic-ai send only that, so answers ran to
the whole context), fails on `tool_choice: "required"`, refuses an assistant turn whose
content is an explicit null next to its tool calls, and answers 500 to a json_schema
response format (it reads json_object with a schema, or a GBNF grammar that keeps numeric
bounds: `json_schema_as`). The recording upstream
(tests/recording_upstream.py) shows the bodies as sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
OTHER = {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    config = {
        "models": [
            {"id": "plain", "deployments": [{**upstream.deployment(), "name": "plain"}]},
            {"id": "reasoning", "deployments": [
                {**upstream.deployment(), "name": "reasoning",
                 "max_tokens_field": "max_completion_tokens"}]},
            {"id": "llamacpp", "deployments": [
                {**upstream.deployment(), "name": "llamacpp", "json_schema_as": "json_object"}]},
            {"id": "grammar", "deployments": [
                {**upstream.deployment(), "name": "grammar", "json_schema_as": "grammar"}]},
        ],
        "dlp": {"enabled": False},
    }  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("openai-body"), config)
    yield server
    stop_server(server)


def sent(gateway: Server, upstream: RecordingUpstream, **request: Any) -> dict[str, Any]:
    before = len(upstream.received)
    client = openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0)
    request.setdefault("messages", [{"role": "user", "content": "hello"}])
    client.chat.completions.create(**request)
    (body,) = upstream.received[before:]
    return body


@pytest.mark.parametrize("given", ["max_tokens", "max_completion_tokens"])
def test_the_output_limit_goes_out_under_the_name_the_deployment_reads(
    gateway: Server, upstream: RecordingUpstream, given: str
) -> None:
    plain = sent(gateway, upstream, model="plain", **{given: 7})
    assert plain["max_tokens"] == 7 and "max_completion_tokens" not in plain
    reasoning = sent(gateway, upstream, model="reasoning", **{given: 7})
    assert reasoning["max_completion_tokens"] == 7 and "max_tokens" not in reasoning


def test_required_with_one_tool_is_sent_as_that_named_tool(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    one = sent(gateway, upstream, model="plain", tools=[TOOL], tool_choice="required")
    assert one["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    two = sent(gateway, upstream, model="plain", tools=[TOOL, OTHER], tool_choice="required")
    assert two["tool_choice"] == "required"  # no single name says "one of these"


def test_an_assistant_turn_of_tool_calls_only_is_sent_with_empty_content(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    call = {"id": "abc123XYZ", "type": "function",
            "function": {"name": "lookup", "arguments": "{}"}}  # fmt: skip
    messages = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "abc123XYZ", "content": "42"},
    ]
    body = sent(gateway, upstream, model="plain", tools=[TOOL], messages=messages)
    assistant = body["messages"][1]
    assert assistant["content"] == "" and assistant["tool_calls"][0]["id"] == "abc123XYZ"
    assert body["messages"][2]["content"] == "42"


def test_a_json_schema_goes_out_as_the_deployment_spells_it(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    # The echo conforms: an answer that did not would be retried (answer_conformance.py).
    upstream.answers[:] = ['{"a": 1}'] * 3
    plain = sent(gateway, upstream, model="plain", response_format=fmt)
    assert plain["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": schema},
    }
    llamacpp = sent(gateway, upstream, model="llamacpp", response_format=fmt)
    assert llamacpp["response_format"] == {"type": "json_object", "schema": schema}
    grammar = sent(gateway, upstream, model="grammar", response_format=fmt)
    assert "response_format" not in grammar
    assert "root ::=" in grammar["grammar"]


def test_a_grammar_keeps_the_numeric_bounds_llama_cpp_would_drop(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    """`json_schema_as: grammar` sends the local engine's GBNF: the bounded integer admits
    exactly 1..12, where llama.cpp's own converter writes any integer."""
    month = {"type": "integer", "minimum": 1, "maximum": 12}
    schema = {"type": "object", "properties": {"m": month}, "required": ["m"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    upstream.answers[:] = ['{"m": 7}']
    text = sent(gateway, upstream, model="grammar", response_format=fmt)["grammar"]
    assert "integral-part" not in text, text  # no rule for any integer
    assert '"12"' in text and '"13"' not in text, text


@pytest.mark.parametrize("stream", [False, True])
def test_a_forced_call_is_asked_for_by_grammar_and_comes_back_as_that_call(
    gateway: Server, upstream: RecordingUpstream, stream: bool
) -> None:
    """On a `grammar` deployment the call's arguments are written under the local engine's
    grammar (llama.cpp's own drops bounds) and the text comes back as the one call."""
    month = {"type": "integer", "minimum": 1, "maximum": 12}
    tool = {"type": "function", "function": {
        "name": "set_month", "description": "Set the month.",
        "parameters": {"type": "object", "properties": {"m": month}, "required": ["m"]}}}  # fmt: skip
    upstream.answers[:] = ['{"m": 7}']
    before = len(upstream.received)
    client = openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0)
    request: dict[str, Any] = {
        "model": "grammar",
        "messages": [{"role": "user", "content": "July"}],
        "tools": [tool],
        "tool_choice": "required",
    }
    if stream:
        chunks = list(client.chat.completions.create(**request, stream=True))
        calls = [
            c for chunk in chunks if chunk.choices for c in chunk.choices[0].delta.tool_calls or ()
        ]
        finish = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1]
        name, arguments = calls[0].function.name, calls[0].function.arguments  # type: ignore[union-attr]
        assert len(calls) == 1 and calls[0].id
    else:
        answer = client.chat.completions.create(**request).choices[0]
        finish = answer.finish_reason
        (call,) = answer.message.tool_calls or ()
        name, arguments = call.function.name, call.function.arguments  # type: ignore[union-attr]
    assert (name, arguments, finish) == ("set_month", '{"m": 7}', "tool_calls")
    (body,) = upstream.received[before:]
    assert "tools" not in body and "tool_choice" not in body
    assert '"12"' in body["grammar"] and "integral-part" not in body["grammar"]
    assert "set_month" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": "July"}
