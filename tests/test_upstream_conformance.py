"""Structured output from upstream engines is held to the client's schema, as the local one is.

Issue 13, item 5: an `openai` or `mistral` deployment's answer to a request with a json_schema
`response_format` (or a call to a `strict` tool) is checked with the local engine's
`violations` before it reaches the client: retried on the upstream, then refused with a 422
`output_not_conforming`; streams are held until the answer conforms
(backends/answer_conformance.py).

The upstream is `RecordingUpstream` (a named fake: a real HTTP server on loopback) scripted
to answer `{"n": -5}` for a schema with `minimum: 0`, then a conforming `{"n": 5}`; the
clients are the openai and mistralai SDKs against a real `souverain serve`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import MistralError

from souverain.backends.answer_conformance import checked_stream, checked_unary
from souverain.backends.base import Backend
from souverain.backends.structured import OutputNotConforming
from souverain.config import DeploymentConfig, ModelConfig
from souverain.protocol.chat import ChatCompletionRequest, ChatDelta, Completion
from souverain.protocol.common import Usage

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 0}},
    "required": ["n"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA, "strict": True}}  # fmt: skip
WRONG, RIGHT = '{"n": -5}', '{"n": 5}'
SHORT_TOOL = {  # the recording upstream calls it with {"text": <its answer>}
    "type": "function",
    "function": {
        "name": "echo",
        "parameters": {"type": "object", "properties": {"text": {"type": "string", "maxLength": 5}},
                       "required": ["text"], "additionalProperties": False},
    },
}  # fmt: skip
EMAIL_SCHEMA = {
    "type": "object",
    "properties": {"to": {"type": "string", "format": "email"}},
    "required": ["to"],
}


@pytest.fixture(scope="module")
def gateway(upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # fmt: skip
    cloud = upstream.deployment()
    mistral = {**cloud, "engine": "mistral", "base_url": upstream.url.removesuffix("/v1")}
    models = [
        {"id": "cloud", "deployments": [{**cloud, "name": "cloud"}]},
        {"id": "cloud-mistral", "deployments": [{**mistral, "name": "cloud-mistral"}]},
        {
            "id": "cloud-dlp",
            "deployments": [{**cloud, "name": "cloud-dlp", "operator": "pseudonymize"}],
        },
    ]
    dlp = {"destinations": [{"operators": ["pseudonymize"], "actions": {"*": "pseudonymize"}}],
           "raises": {"*": "confidential"}}  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("upstream-conformance"), {"models": models, "dlp": dlp})  # fmt: skip
    yield server
    stop_server(server)


@pytest.fixture
def client(gateway: Server, upstream: RecordingUpstream) -> Iterator[openai.OpenAI]:
    upstream.answers.clear()
    upstream.received.clear()
    with openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0) as sdk:
        yield sdk
    upstream.answers.clear()


def ask(**extra: Any) -> dict[str, Any]:
    return {"model": "cloud", "messages": [{"role": "user", "content": "A number?"}],
            "response_format": RESPONSE_FORMAT, "seed": 7, **extra}  # fmt: skip


# ---- whole answers -------------------------------------------------------------------------


def test_a_non_conforming_answer_is_retried_then_refused(
    client: openai.OpenAI, upstream: RecordingUpstream
) -> None:
    upstream.answers[:] = [WRONG] * 3
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(**ask())
    body: dict[str, Any] = caught.value.body  # type: ignore[assignment]
    assert body["code"] == "output_not_conforming"
    assert body["param"] == "response_format.json_schema.schema"
    assert "$.n" in body["message"] and "minimum" in body["message"]
    assert "3 tries" in body["message"]
    assert len(upstream.received) == 3  # the first try and two retries, no more
    # Each retry asks differently: another seed, some temperature (a greedy upstream
    # would otherwise give the same answer again).
    assert [sent.get("seed") for sent in upstream.received] == [7, 8, 9]
    assert [sent.get("temperature") for sent in upstream.received] == [None, 0.7, 0.7]


def test_a_conforming_retry_is_the_answer_and_every_try_is_counted(
    client: openai.OpenAI, upstream: RecordingUpstream
) -> None:
    upstream.answers[:] = [WRONG, RIGHT]
    answer = client.chat.completions.create(**ask())
    assert answer.choices[0].message.content == RIGHT
    assert len(upstream.received) == 2
    assert answer.usage is not None  # the upstream reports 10 + 5 per try
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (20, 10)


def test_the_mistral_engine_and_sdk_get_the_same_rule(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    upstream.received.clear()
    upstream.answers[:] = [WRONG] * 3
    with Mistral(api_key=gateway.key, server_url=gateway.url) as mistral:
        with pytest.raises(MistralError) as caught:  # HTTPValidationError, for a 422
            mistral.chat.complete(
                model="cloud-mistral", messages=[{"role": "user", "content": "A number?"}],
                response_format=RESPONSE_FORMAT, random_seed=3,  # type: ignore[arg-type]
            )  # fmt: skip
        assert caught.value.status_code == 422
        assert "output_not_conforming" in caught.value.body
        assert [sent.get("random_seed") for sent in upstream.received] == [3, 4, 5]
        upstream.answers[:] = [RIGHT]
        answer = mistral.chat.complete(
            model="cloud-mistral", messages=[{"role": "user", "content": "A number?"}],
            response_format=RESPONSE_FORMAT,  # type: ignore[arg-type]
        )  # fmt: skip
    assert answer.choices[0].message.content == RIGHT  # type: ignore[union-attr]


def test_without_a_schema_nothing_is_held_or_retried(
    client: openai.OpenAI, upstream: RecordingUpstream
) -> None:
    for response_format in ({"type": "json_object"}, {"type": "text"}, None):
        upstream.answers[:] = [WRONG]
        extra = {} if response_format is None else {"response_format": response_format}
        answer = client.chat.completions.create(
            model="cloud", messages=[{"role": "user", "content": "A number?"}], **extra
        )
        assert answer.choices[0].message.content == WRONG
    assert len(upstream.received) == 3  # one call each


def test_an_invalid_schema_is_a_400_before_the_upstream_is_called(
    client: openai.OpenAI, upstream: RecordingUpstream
) -> None:
    broken = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "decimal"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**ask(response_format=broken))
    assert caught.value.body["param"] == "response_format.json_schema.schema"  # type: ignore[index]
    assert upstream.received == []


def test_the_answer_is_checked_as_the_client_gets_it_after_dlp_restored_it(
    client: openai.OpenAI, upstream: RecordingUpstream
) -> None:
    # The upstream sees (and echoes) a placeholder for the address, which is no e-mail
    # address; the client gets the address back, which is. Checked before restoring, this
    # answer would be refused.
    text = json.dumps({"to": "marie.curie@example.fr"})
    answer = client.chat.completions.create(
        model="cloud-dlp", messages=[{"role": "user", "content": text}],
        response_format={"type": "json_schema",  # type: ignore[typeddict-item]
                         "json_schema": {"name": "mail", "schema": EMAIL_SCHEMA, "strict": True}},
    )  # fmt: skip
    assert "marie.curie" not in upstream.seen()  # pseudonymized on the way out
    assert json.loads(answer.choices[0].message.content or "") == {"to": "marie.curie@example.fr"}
    assert len(upstream.received) == 1


# ---- strict tools ----------------------------------------------------------------------------


def test_a_strict_tool_call_is_held_to_its_parameters(
    client: openai.OpenAI, upstream: RecordingUpstream
) -> None:
    strict = {**SHORT_TOOL, "function": {**SHORT_TOOL["function"], "strict": True}}
    upstream.answers[:] = ["far too long", "ok"]
    answer = client.chat.completions.create(
        model="cloud", messages=[{"role": "user", "content": "Echo."}], tools=[strict]  # type: ignore[list-item]
    )  # fmt: skip
    calls = answer.choices[0].message.tool_calls or []
    assert [json.loads(call.function.arguments) for call in calls] == [{"text": "ok"}]  # type: ignore[union-attr]
    assert len(upstream.received) == 2
    upstream.answers[:] = ["far too long"] * 3
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(
            model="cloud", messages=[{"role": "user", "content": "Echo."}], tools=[strict]  # type: ignore[list-item]
        )  # fmt: skip
    assert caught.value.body["param"] == "tools"  # type: ignore[index]
    assert "tool call 'echo'" in caught.value.body["message"]  # type: ignore[index]
    # Not strict: no promise was asked for, the call goes to the client as it came.
    upstream.answers[:] = ["far too long"]
    answer = client.chat.completions.create(
        model="cloud", messages=[{"role": "user", "content": "Echo."}], tools=[SHORT_TOOL]  # type: ignore[list-item]
    )  # fmt: skip
    arguments = (answer.choices[0].message.tool_calls or [])[0].function.arguments  # type: ignore[union-attr]
    assert json.loads(arguments) == {"text": "far too long"}


# ---- streams ---------------------------------------------------------------------------------


def test_a_held_stream_is_released_once_it_conforms(
    client: openai.OpenAI, upstream: RecordingUpstream
) -> None:
    upstream.answers[:] = [WRONG, RIGHT]
    stream = client.chat.completions.create(
        **ask(stream=True, stream_options={"include_usage": True})
    )
    chunks = list(stream)  # the SDK read a whole, valid SSE stream up to [DONE]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == RIGHT  # never a byte of the wrong try
    carrying = [c.usage for c in chunks if c.usage]
    assert len(carrying) == 1 and carrying[0].completion_tokens == 10  # both tries, once
    assert chunks[-1].choices == []  # include_usage: on the usage-only chunk
    assert len(upstream.received) == 2


def test_a_stream_that_never_conforms_is_a_422_before_any_byte(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    upstream.received.clear()
    upstream.answers[:] = [WRONG] * 3
    with gateway.client() as http:
        response = http.post("/v1/chat/completions", json=ask(stream=True))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "output_not_conforming" and "$.n" in error["message"]
    assert len(upstream.received) == 3


def test_the_responses_api_gets_the_same_rule(
    client: openai.OpenAI, upstream: RecordingUpstream
) -> None:
    text_format = {"format": {"type": "json_schema", "name": "n", "schema": SCHEMA, "strict": True}}
    upstream.answers[:] = [WRONG, RIGHT]
    response = client.responses.create(model="cloud", input="A number?", text=text_format)  # type: ignore[arg-type]
    assert response.output_text == RIGHT
    upstream.answers[:] = [WRONG] * 3
    with pytest.raises(openai.UnprocessableEntityError):
        client.responses.create(model="cloud", input="A number?", text=text_format)  # type: ignore[arg-type]


# ---- the rule itself, on scripted tries ------------------------------------------------------


UPSTREAM = DeploymentConfig(engine="openai", base_url="http://127.0.0.1:9/v1")  # never called
BACKEND = Backend(ModelConfig(id="m", deployments=(UPSTREAM,)), UPSTREAM)


def chat_request(**extra: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "?"}],
            "response_format": RESPONSE_FORMAT,
            **extra,
        }
    )


def test_a_try_cut_at_max_tokens_is_not_retried() -> None:
    tries: list[ChatCompletionRequest] = []

    async def cut(request: ChatCompletionRequest) -> Completion:
        tries.append(request)
        return Completion(content='{"n": ', finish_reason="length", usage=Usage(3, 4))

    with pytest.raises(OutputNotConforming) as caught:
        asyncio.run(checked_unary(BACKEND, chat_request(max_tokens=4), cut))
    assert caught.value.param == "max_tokens" and len(tries) == 1


def test_a_tool_turn_is_not_held_to_the_response_format() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "other", "arguments": "{}"}}

    async def tool_turn(request: ChatCompletionRequest) -> AsyncIterator[ChatDelta]:
        yield ChatDelta(tool_calls=[{"index": 0, **call}], finish_reason="tool_calls")

    async def collect() -> list[ChatDelta]:
        return [delta async for delta in checked_stream(BACKEND, chat_request(), tool_turn)]

    deltas = asyncio.run(collect())
    assert deltas[0].tool_calls and deltas[0].tool_calls[0]["function"]["name"] == "other"


def test_an_engine_that_checks_itself_is_left_to_it() -> None:
    class SelfChecking(Backend):
        checks_structured_output = True

    calls: list[ChatCompletionRequest] = []

    async def wrong(request: ChatCompletionRequest) -> Completion:
        calls.append(request)
        return Completion(content=WRONG)

    engine = SelfChecking(ModelConfig(id="m", deployments=(UPSTREAM,)), UPSTREAM)
    assert asyncio.run(checked_unary(engine, chat_request(), wrong)).content == WRONG
    assert len(calls) == 1


def test_strict_arguments_given_as_an_object_are_checked_too() -> None:
    strict = {**SHORT_TOOL, "function": {**SHORT_TOOL["function"], "strict": True}}
    request = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "?"}], "tools": [strict]}
    )

    async def as_object(request: ChatCompletionRequest) -> Completion:
        call = {"id": "c1", "type": "function",
                "function": {"name": "echo", "arguments": {"text": "far too long"}}}  # fmt: skip
        return Completion(tool_calls=[call], finish_reason="tool_calls")

    with pytest.raises(OutputNotConforming) as caught:
        asyncio.run(checked_unary(BACKEND, request, as_object))
    assert caught.value.param == "tools" and "$.text" in caught.value.message
