"""What every stream looks like to a client, whatever the engine and with DLP on or off.

Two promises, checked over real HTTP against `souverain serve`:

* usage appears exactly once: on the usage-only chunk (`choices: []`) when
  `stream_options.include_usage` is set (OpenAI's spec; clients that add chunks up count it
  once), else on the last content chunk (Mistral's habit);
* a tool call reaches the client whole, in one delta: id, type, name and complete arguments
  (Mistral's shape, which OpenAI clients accept too). The mistralai SDK rejects a fragment
  without a name; langchain-mistralai splits one call into several.

The `openai` and `mistral` engines run against `RecordingUpstream` (a named fake) that
streams tool calls as OpenAI servers do, in name-less argument fragments; the embedded engine
makes its own calls (grammar-constrained; `tool_choice` required so that the tiny model calls).
DLP pseudonymizes on the deployments whose operator is `pseudonymize` (and on the embedded
`smollm2-dlp`), and the prompt holds an e-mail address, so a placeholder goes out and comes
back split across fragments. The matrix: 3 engines x DLP pseudonymizing or not x
include_usage on or off x text or tool calls; each cell has a test below.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from mistralai.client import Mistral

from souverain.dlp.restore import restore_stream
from souverain.dlp.transform import Pseudonymizer
from souverain.errors import EngineError
from souverain.protocol.chat import ChatDelta, Completion
from souverain.protocol.common import Usage
from souverain.protocol.tool_call_stream import whole_tool_calls

from .conftest import Server
from .recording_upstream import RecordingUpstream

EMAIL = "marie.curie@example.fr"
PROMPT = f"Write to {EMAIL} about the invoice."
TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("send_mail", "log_event")
]
MAIL_TOOL = {  # one bounded argument: the grammar ends the call well within max_tokens
    "type": "function",
    "function": {
        "name": "send_mail",
        "description": "Send an e-mail to an address.",
        "parameters": {"type": "object", "properties": {"to": {"type": "string", "maxLength": 60}}, "required": ["to"]},
    },
}  # fmt: skip
UPSTREAM_MODELS = [f"{engine}-{dlp}" for engine in ("openai", "mistral") for dlp in ("pseudonymize", "allow")]  # fmt: skip
MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")


@pytest.fixture(scope="module")
def upstream(relay_upstream: RecordingUpstream) -> RecordingUpstream:
    """The session's recording upstream, the one behind `gateway` (conftest.py)."""
    return relay_upstream


@pytest.fixture(scope="module")
def gateway(relay_gateway: Server) -> Server:
    """The session's relay gateway (conftest.py relay_config): one process for every module
    that relays to the recording upstream."""
    return relay_gateway


@pytest.fixture(scope="module")
def embedded_dlp(relay_gateway: Server) -> Server:
    """The embedded model with DLP pseudonymizing even on-prem (`smollm2-dlp`): the restorer
    in the stream. The relay gateway serves it too."""
    return relay_gateway


def sse_chunks(server: Server, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks of one stream as a client reads them, up to `[DONE]` (which must come)."""
    chunks: list[dict[str, Any]] = []
    with (
        server.client() as client,
        # A tool call is held until whole: on a crowded 2-core machine the embedded model's
        # first byte can come after the client's default 120 s.
        client.stream(
            "POST", "/v1/chat/completions", json={**body, "stream": True}, timeout=600
        ) as response,  # fmt: skip
    ):
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                return chunks
            chunks.append(json.loads(line[6:]))
    raise AssertionError("the stream ended without [DONE]")


def assert_usage_once(chunks: list[dict[str, Any]], *, include_usage: bool) -> None:
    carrying = [i for i, chunk in enumerate(chunks) if chunk.get("usage")]
    assert carrying == [len(chunks) - 1], f"usage on chunks {carrying} of {len(chunks)}"
    last = chunks[-1]
    assert last["usage"]["total_tokens"] > 0
    if include_usage:
        assert last["choices"] == []  # the usage-only chunk, after the finish
        assert chunks[-2]["choices"][0]["finish_reason"] is not None
    else:
        assert last["choices"][0]["finish_reason"] is not None


def assert_whole_tool_calls(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every tool call in one delta, complete; the calls in order."""
    calls = []
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or ():
                assert call["id"] and call["type"] == "function", call
                assert call["function"]["name"], call
                json.loads(call["function"]["arguments"])  # complete: it parses
                calls.append(call)
    assert [call["index"] for call in calls] == list(range(len(calls)))
    assert len({call["id"] for call in calls}) == len(calls)
    return calls


# ---- usage ----------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("model", UPSTREAM_MODELS)
def test_usage_once_through_upstream_engines(
    gateway: Server, model: str, include_usage: bool
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
            "stream_options": {"include_usage": include_usage}}  # fmt: skip
    chunks = sse_chunks(gateway, body)
    assert_usage_once(chunks, include_usage=include_usage)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == PROMPT  # restored where DLP pseudonymized it


@pytest.mark.parametrize("include_usage", [True, False])
def test_usage_once_on_the_embedded_engine(
    embedded: Server, embedded_dlp: Server, include_usage: bool
) -> None:
    for server, model in ((embedded, "smollm2"), (embedded_dlp, "smollm2-dlp")):
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": 8, "stream_options": {"include_usage": include_usage}}  # fmt: skip
        assert_usage_once(sse_chunks(server, body), include_usage=include_usage)


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("model", UPSTREAM_MODELS)
def test_tool_call_streams_through_upstream_engines(
    gateway: Server, model: str, include_usage: bool
) -> None:
    """Both promises in one stream: usage once, and each call whole (restored where DLP
    pseudonymized it), for each engine, DLP on and off, include_usage on and off."""
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "tools": TOOLS,
            "stream_options": {"include_usage": include_usage}}  # fmt: skip
    chunks = sse_chunks(gateway, body)
    assert_usage_once(chunks, include_usage=include_usage)
    calls = assert_whole_tool_calls(chunks)
    assert [call["function"]["name"] for call in calls] == ["send_mail", "log_event"]
    assert all(json.loads(call["function"]["arguments"]) == {"text": PROMPT} for call in calls)


@pytest.mark.parametrize("include_usage", [True, False])
def test_tool_call_streams_on_the_embedded_engine(
    embedded: Server, embedded_dlp: Server, include_usage: bool
) -> None:
    """The embedded engine's own calls (grammar-constrained), DLP off and pseudonymizing."""
    for server, model in ((embedded, "smollm2"), (embedded_dlp, "smollm2-dlp")):
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                "tools": [MAIL_TOOL], "tool_choice": "required", "max_tokens": 120,
                "stream_options": {"include_usage": include_usage}}  # fmt: skip
        chunks = sse_chunks(server, body)
        assert_usage_once(chunks, include_usage=include_usage)
        calls = assert_whole_tool_calls(chunks)
        assert [call["function"]["name"] for call in calls] == ["send_mail"], calls
        assert "\u27e6" not in calls[0]["function"]["arguments"]  # no placeholder left over
        final = chunks[-2 if include_usage else -1]["choices"][0]
        assert final["finish_reason"] == "tool_calls"


def test_mistral_sdk_parses_the_embedded_engines_tool_call_chunks(
    embedded: Server, embedded_dlp: Server
) -> None:
    for server, model in ((embedded, "smollm2"), (embedded_dlp, "smollm2-dlp")):
        client = Mistral(api_key=server.key, server_url=server.url)
        events = list(
            client.chat.stream(
                model=model,
                messages=[{"role": "user", "content": PROMPT}],
                tools=[MAIL_TOOL],  # type: ignore[list-item]
                tool_choice="any",
                max_tokens=120,
            )
        )
        calls = [c for event in events for c in event.data.choices[0].delta.tool_calls or ()]
        assert [call.function.name for call in calls] == ["send_mail"]
        json.loads(str(calls[0].function.arguments))
        assert events[-1].data.usage is not None and events[-1].data.usage.total_tokens


def test_openai_sdk_counts_usage_once(gateway: Server, embedded: Server) -> None:
    """As langchain-openai and pydantic-ai do: add up the usage of every chunk."""
    targets = [(gateway, model) for model in UPSTREAM_MODELS] + [(embedded, "smollm2")]
    for server, model in targets:
        client = openai.OpenAI(base_url=server.v1, api_key=server.key, max_retries=0)
        for include_usage in (True, False):
            stream = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=8,
                stream=True, stream_options={"include_usage": include_usage},
            )  # fmt: skip
            usages = [chunk.usage for chunk in stream if chunk.usage is not None]
            assert len(usages) == 1, (model, include_usage, usages)


# ---- tool calls -----------------------------------------------------------------------


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
def test_tool_calls_reach_the_client_whole(
    gateway: Server, upstream: RecordingUpstream, model: str
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "tools": TOOLS}
    before = len(upstream.received)
    chunks = sse_chunks(gateway, body)
    calls = assert_whole_tool_calls(chunks)
    assert [call["function"]["name"] for call in calls] == ["send_mail", "log_event"]
    assert [call["id"] for call in calls] == ["call_1", "call_2"]  # the engine's ids kept
    for call in calls:  # the placeholder, split across fragments, restored
        assert json.loads(call["function"]["arguments"]) == {"text": PROMPT}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    sent = json.dumps(upstream.received[before:], ensure_ascii=False)
    assert (EMAIL in sent) == model.endswith("allow")


def test_tool_calls_without_engine_ids_get_mistral_ids(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    upstream.tool_call_ids = False
    try:
        for model in UPSTREAM_MODELS:
            body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "tools": TOOLS}  # fmt: skip
            calls = assert_whole_tool_calls(sse_chunks(gateway, body))
            assert len(calls) == 2
            assert all(MISTRAL_ID.fullmatch(call["id"]) for call in calls), calls
    finally:
        upstream.tool_call_ids = True


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
def test_mistral_sdk_parses_every_tool_call_chunk(gateway: Server, model: str) -> None:
    client = Mistral(api_key=gateway.key, server_url=gateway.url)
    events = list(
        client.chat.stream(
            model=model,
            messages=[{"role": "user", "content": PROMPT}],
            tools=TOOLS,  # type: ignore[arg-type]
        )
    )
    calls = [call for event in events for call in event.data.choices[0].delta.tool_calls or ()]
    assert [call.function.name for call in calls] == ["send_mail", "log_event"]
    for call in calls:
        assert json.loads(str(call.function.arguments)) == {"text": PROMPT}


@pytest.mark.parametrize("model", UPSTREAM_MODELS)
def test_openai_sdk_assembles_the_same_calls(gateway: Server, model: str) -> None:
    client = openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0)
    with client.chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        tools=TOOLS,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [call.function.name for call in calls] == ["send_mail", "log_event"]  # type: ignore[union-attr]
    assert all(json.loads(call.function.arguments) == {"text": PROMPT} for call in calls)  # type: ignore[union-attr]


# ---- the assembler and the restorer, unit by unit ---------------------------------------


async def _deltas(*deltas: ChatDelta) -> AsyncIterator[ChatDelta]:
    for delta in deltas:
        yield delta


async def _collect(stream: AsyncIterator[ChatDelta]) -> list[ChatDelta]:
    return [delta async for delta in stream]


def _calls(deltas: list[ChatDelta]) -> list[dict[str, Any]]:
    return [call for delta in deltas for call in delta.tool_calls or ()]


async def test_fragments_become_one_call_per_index_content_unheld() -> None:
    out = await _collect(
        whole_tool_calls(
            _deltas(
                ChatDelta(content="Let me"),
                ChatDelta(
                    tool_calls=[
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x"'}}
                    ]
                ),
                ChatDelta(tool_calls=[{"index": 0, "function": {"arguments": ": 1}"}}]),
                ChatDelta(tool_calls=[{"index": 1, "function": {"name": "g"}}]),
                ChatDelta(content=" check."),
                ChatDelta(finish_reason="tool_calls", usage=Usage(3, 4)),
            )
        )
    )
    assert out[0].content == "Let me" and out[0].tool_calls is None
    assert _calls(out[:2]) == [
        {
            "index": 0,
            "id": "a",
            "type": "function",
            "function": {"name": "f", "arguments": '{"x": 1}'},
        }
    ]  # complete as soon as the next index starts
    assert out[2].content == " check."
    last = out[-1]
    assert last.finish_reason == "tool_calls" and last.usage == Usage(3, 4)
    (g,) = last.tool_calls or []
    assert g["index"] == 1 and g["function"] == {"name": "g", "arguments": "{}"}
    assert MISTRAL_ID.fullmatch(g["id"])


async def test_mistral_whole_calls_pass_unchanged_even_without_index() -> None:
    """Mistral sends calls whole, `index` optional; two may share one delta."""
    whole = [
        {"id": "AAAAAAAA1", "function": {"name": "f", "arguments": {"q": "é"}}},
        {"id": "BBBBBBBB2", "function": {"name": "g", "arguments": "{}"}},
    ]
    out = await _collect(
        whole_tool_calls(
            _deltas(ChatDelta(tool_calls=whole), ChatDelta(finish_reason="tool_calls"))
        )
    )
    assert [(c["index"], c["id"], c["function"]["name"]) for c in _calls(out)] == [
        (0, "AAAAAAAA1", "f"),
        (1, "BBBBBBBB2", "g"),
    ]
    assert json.loads(_calls(out)[0]["function"]["arguments"]) == {"q": "é"}
    again = await _collect(whole_tool_calls(_deltas(*out)))  # applying it twice changes nothing
    assert _calls(again) == _calls(out)


async def test_a_stream_cut_before_its_finish_still_delivers_complete_calls() -> None:
    out = await _collect(
        whole_tool_calls(
            _deltas(
                ChatDelta(
                    tool_calls=[
                        {"index": 0, "id": "z", "function": {"name": "f", "arguments": "{}"}}
                    ]
                )
            )
        )
    )
    assert [c["id"] for c in _calls(out)] == ["z"]


async def test_a_call_without_a_name_is_an_engine_error() -> None:
    stream = whole_tool_calls(
        _deltas(
            ChatDelta(tool_calls=[{"index": 0, "function": {"arguments": "{}"}}]),
            ChatDelta(finish_reason="tool_calls"),
        )
    )
    with pytest.raises(EngineError):
        await _collect(stream)


async def test_a_fragment_for_a_call_already_sent_is_an_engine_error() -> None:
    stream = whole_tool_calls(
        _deltas(
            ChatDelta(
                tool_calls=[{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]
            ),
            ChatDelta(
                tool_calls=[{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]
            ),
            ChatDelta(tool_calls=[{"index": 0, "function": {"arguments": "}"}}]),
        )
    )
    with pytest.raises(EngineError):
        await _collect(stream)


async def test_restore_stream_restores_whole_arguments_from_split_placeholders() -> None:
    p = Pseudonymizer(b"0123456789abcdef0123")
    original = 'jo"e@ex.fr'
    placeholder = p.placeholder("email", original)
    arguments = json.dumps({"to": placeholder, "n": 1}, ensure_ascii=False)
    fragments = [
        ChatDelta(tool_calls=[{"index": 0, "function": {"arguments": arguments[i : i + 2]}}])
        for i in range(0, len(arguments), 2)
    ]
    head = {"index": 0, "id": "c", "type": "function", "function": {"name": "mail", "arguments": ""}}  # fmt: skip
    fragments.insert(0, ChatDelta(tool_calls=[head]))
    out = await _collect(
        restore_stream(
            _deltas(*fragments, ChatDelta(finish_reason="tool_calls")), {placeholder: original}
        )
    )
    (call,) = _calls(out)
    assert call["id"] == "c" and call["function"]["name"] == "mail"
    assert json.loads(call["function"]["arguments"]) == {"to": original, "n": 1}
    completion = Completion()
    for delta in out:
        completion.add(delta)
    assert json.loads(completion.tool_calls[0]["function"]["arguments"])["to"] == original
