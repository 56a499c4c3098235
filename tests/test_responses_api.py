"""`/v1/responses` end to end: the official openai and mistralai SDKs over loopback.

Most tests go through an `openai` deployment to `RecordingUpstream` (tests/recording_upstream.py,
a named fake that records every body and echoes the last user message, and answers with a
tool call when given tools), so that what left the gateway can be checked exactly; the
ones marked `model` run on the embedded SmolLM2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import count
from typing import Any

import httpx
import openai
import pytest
from mistralai.client import Mistral
from pydantic import BaseModel, Field

from .conftest import ADMIN_KEY, Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

IBAN = "FR76 3000 6000 0112 3456 7890 189"
PROMPT = f"Virement depuis {IBAN} s'il vous plaît."
ECHO_TOOL = {
    "type": "function",
    "name": "echo",
    "description": "Repeat the text",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
}
_names = count()


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    eu = upstream.deployment()
    config = {
        "models": [
            {"id": "cloud", "deployments": [{**eu, "name": "eu-cloud"}]},
            {"id": "cloud-redact", "deployments": [{**eu, "name": "redactor", "operator": "Redactor"}]},
        ],
        "dlp": {"destinations": [{"operators": ["Redactor"], "actions": {"*": "redact"}}]},
    }  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("responses-gw"), config)
    yield server
    stop_server(server)


def admin(gateway: Server, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(gateway.url + path, json=body, timeout=30,
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
    assert answer.status_code in (200, 201), answer.text
    return answer.json()  # type: ignore[no-any-return]


def user_key(gateway: Server, tenant: str, **key: Any) -> str:
    """A key of a new user in `tenant` (created on first use)."""
    httpx.post(gateway.url + "/admin/v1/tenants", json={"name": tenant}, timeout=30,
               headers={"Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
    name = f"u{next(_names)}"
    user = admin(gateway, "/admin/v1/users", {"name": name, "role": "developer", "tenant": tenant})
    created = admin(gateway, "/admin/v1/keys",
                    {"name": name, "user_id": user["id"], "tenant": tenant, **key})  # fmt: skip
    return str(created["key"])


def sdk(gateway: Server, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=key or gateway.key, max_retries=0)


def last_sent(upstream: RecordingUpstream) -> dict[str, Any]:
    return upstream.received[-1]


# ---- text, instructions, retrieve -------------------------------------------------------


def test_text_input_with_instructions(gateway: Server, upstream: RecordingUpstream) -> None:
    client = sdk(gateway)
    response = client.responses.create(
        model="cloud", input="Bonjour", instructions="Be brief.", max_output_tokens=30,
        temperature=0.5, top_p=0.9,
    )  # fmt: skip
    assert response.status == "completed" and response.object == "response"
    assert response.output_text == "Bonjour"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (10, 5)
    assert response.usage.total_tokens == 15
    sent = last_sent(upstream)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Bonjour"},
    ]
    assert (sent["temperature"], sent["top_p"]) == (0.5, 0.9)
    assert 30 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))
    again = client.responses.retrieve(response.id)
    assert again.output_text == "Bonjour" and again.id == response.id
    items = client.responses.input_items.list(response.id)
    assert [item.type for item in items.data] == ["message"]
    assert items.data[0].content[0].text == "Bonjour"  # type: ignore[union-attr]


def test_message_items_and_content_parts(gateway: Server, upstream: RecordingUpstream) -> None:
    sdk(gateway).responses.create(
        model="cloud",
        input=[
            {"role": "developer", "content": "Réponds en français."},
            {"role": "user", "content": [{"type": "input_text", "text": "Un"},
                                         {"type": "input_text", "text": " deux"}]},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "Trois"}]},
            {"role": "user", "content": "Quatre"},
        ],
    )  # fmt: skip
    assert last_sent(upstream)["messages"] == [
        {"role": "developer", "content": "Réponds en français."},
        {"role": "user", "content": "Un deux"},
        {"role": "assistant", "content": "Trois"},
        {"role": "user", "content": "Quatre"},
    ]


# ---- streaming ------------------------------------------------------------------------


def test_stream_events_parse_in_the_sdk(gateway: Server) -> None:
    text = "Le chat dort sur le canapé."
    with sdk(gateway).responses.stream(model="cloud", input=text) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]  # fmt: skip
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]  # fmt: skip
    assert kinds.count("response.output_text.delta") > 2  # relayed as it came, not at once
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == text == final.output_text
    assert final.usage is not None and final.usage.output_tokens == 5
    assert sdk(gateway).responses.retrieve(final.id).output_text == text  # stored


def test_stream_frames_name_their_type_and_end_without_done(gateway: Server) -> None:
    request = {"model": "cloud", "input": "Salut", "stream": True}
    with httpx.stream("POST", gateway.v1 + "/responses", json=request, timeout=30,
                      headers={"Authorization": f"Bearer {gateway.key}"}) as answer:  # fmt: skip
        assert answer.headers["content-type"].startswith("text/event-stream")
        body = answer.read().decode()
    frames = [frame for frame in body.split("\n\n") if frame]
    for frame in frames:
        event_line, data_line = frame.split("\n")
        assert event_line.removeprefix("event: ") == json.loads(data_line[6:])["type"]
    assert "[DONE]" not in body


# ---- chains and stored responses ------------------------------------------------------


def test_previous_response_id_continues_the_conversation(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    client = sdk(gateway)
    first = client.responses.create(model="cloud", input="premier", instructions="Sois bref.")
    second = client.responses.create(model="cloud", input="second", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    # The first turn's input and output, then the new input; instructions are not carried.
    assert last_sent(upstream)["messages"] == [
        {"role": "user", "content": "premier"},
        {"role": "assistant", "content": "premier"},
        {"role": "user", "content": "second"},
    ]
    client.responses.create(model="cloud", input="troisième", previous_response_id=second.id)
    contents = [m["content"] for m in last_sent(upstream)["messages"]]
    assert contents == ["premier", "premier", "second", "second", "troisième"]


def test_store_false_is_not_kept(gateway: Server) -> None:
    client = sdk(gateway)
    response = client.responses.create(model="cloud", input="éphémère", store=False)
    assert response.to_dict()["store"] is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="cloud", input="suite", previous_response_id=response.id)


def test_erasing_a_subject_deletes_its_stored_responses(gateway: Server) -> None:
    client = sdk(gateway)
    theirs = client.responses.create(model="cloud", input="bonjour", user="erase-me@example.eu")
    others = client.responses.create(model="cloud", input="bonjour", user="keep-me@example.eu")
    erased = admin(gateway, "/admin/v1/audit/erase", {"subject": "erase-me@example.eu"})
    assert erased["stored_responses_deleted"] == 1
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(theirs.id)
    assert client.responses.retrieve(others.id).id == others.id


def test_delete_then_retrieve_is_404(gateway: Server) -> None:
    client = sdk(gateway)
    response = client.responses.create(model="cloud", input="à effacer")
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)


def _error(answer: httpx.Response, response_id: str) -> dict[str, Any]:
    error: dict[str, Any] = answer.json()["error"]
    return {**error, "message": error["message"].replace(response_id, "ID")}


def test_another_owners_response_reads_as_missing(gateway: Server) -> None:
    """Another tenant's response, or another user's in the same tenant, is a 404 exactly
    like an id that never existed: the same status and the same error body."""
    acme = user_key(gateway, "acme")
    mine = sdk(gateway, acme).responses.create(model="cloud", input="secret d'acme")
    missing = "resp_" + "0" * 32
    for other in (user_key(gateway, "globex"), user_key(gateway, "acme")):
        auth = {"Authorization": f"Bearer {other}"}
        for method, path, body in [
            ("GET", "/responses/{}", None),
            ("GET", "/responses/{}/input_items", None),
            ("DELETE", "/responses/{}", None),
            ("POST", "/responses", {"model": "cloud", "input": "x", "previous_response_id": "{}"}),
        ]:
            answers = []
            for response_id in (mine.id, missing):
                data = json.loads(json.dumps(body).replace("{}", response_id)) if body else None
                answer = httpx.request(method, gateway.v1 + path.format(response_id), json=data,
                                       headers=auth, timeout=30)  # fmt: skip
                assert answer.status_code == 404, (method, path, answer.text)
                answers.append(_error(answer, response_id))
            assert answers[0] == answers[1]
    assert sdk(gateway, acme).responses.retrieve(mine.id).output_text == "secret d'acme"


def test_a_key_scoped_to_other_endpoints_is_refused(gateway: Server) -> None:
    chat_only = user_key(gateway, "acme", endpoints=["chat"])
    with pytest.raises(openai.PermissionDeniedError):
        sdk(gateway, chat_only).responses.create(model="cloud", input="Bonjour")
    scoped = user_key(gateway, "acme", endpoints=["responses"])
    assert sdk(gateway, scoped).responses.create(model="cloud", input="Oui").output_text == "Oui"


def test_usage_and_audit_name_the_responses_endpoint(gateway: Server) -> None:
    """The turn is a pipeline call like any other: a usage row and an audit leaf."""
    key = user_key(gateway, "usage-check")
    sdk(gateway, key).responses.create(model="cloud", input="Compte-moi")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    deadline = time.monotonic() + 30
    while True:  # usage rows are written in batches, shortly after the call
        rows = httpx.get(gateway.url + "/admin/v1/usage", headers=headers, timeout=30,
                         params={"group_by": "tenant,endpoint"}).json()["data"]  # fmt: skip
        ours = [r for r in rows if r["tenant"] == "usage-check"]
        if ours or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(r["endpoint"], r["requests"]) for r in ours] == [("responses", 1)]
    leaves = httpx.get(gateway.url + "/admin/v1/audit/leaves", headers=headers, timeout=30,
                       params={"limit": "1000"}).json()["data"]  # fmt: skip
    assert any(leaf["leaf"].get("endpoint") == "responses" for leaf in leaves), leaves[-1]


# ---- function tools -------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_function_tool_round_trip(
    gateway: Server, upstream: RecordingUpstream, stream: bool
) -> None:
    client = sdk(gateway)
    options: dict[str, Any] = {"model": "cloud", "tools": [ECHO_TOOL], "tool_choice": "auto"}
    if stream:
        with client.responses.stream(input="Quel temps ?", **options) as events:
            seen = list(events)
            first = events.get_final_response()
        done = [e for e in seen if e.type == "response.function_call_arguments.done"]
        assert len(done) == 1 and done[0].name == "echo"  # type: ignore[union-attr]
    else:
        first = client.responses.create(input="Quel temps ?", **options)
    sent_tools = last_sent(upstream)["tools"]
    assert sent_tools[0]["function"]["name"] == "echo"
    assert sent_tools[0]["function"]["parameters"] == ECHO_TOOL["parameters"]
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "echo" and json.loads(call.arguments) == {"text": "Quel temps ?"}
    assert call.call_id
    second = client.responses.create(
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Soleil"}],
        previous_response_id=first.id,
        **options,
    )
    messages = last_sent(upstream)["messages"]
    assert messages[-2]["role"] == "assistant"
    assert messages[-2]["tool_calls"][0]["id"] == call.call_id
    assert messages[-2]["tool_calls"][0]["function"]["name"] == "echo"
    assert messages[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "Soleil"}
    assert second.status == "completed"


def test_tool_choice_names_a_function(gateway: Server, upstream: RecordingUpstream) -> None:
    sdk(gateway).responses.create(model="cloud", input="Go", tools=[ECHO_TOOL],
                                  tool_choice={"type": "function", "name": "echo"})  # fmt: skip
    assert last_sent(upstream)["tool_choice"] == {"type": "function", "function": {"name": "echo"}}


def test_text_format_json_schema_becomes_response_format(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}  # fmt: skip
    sdk(gateway).responses.create(
        model="cloud", input='{"city": "Lyon"}',
        text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},
    )  # fmt: skip
    sent = last_sent(upstream)["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"] == schema and sent["json_schema"]["name"] == "place"


# ---- data-loss prevention -------------------------------------------------------------


def test_dlp_pseudonymizes_every_turn_and_the_level_only_rises(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    client = sdk(gateway)
    before = len(upstream.received)
    raw = client.responses.with_raw_response.create(model="cloud", input=PROMPT)
    first = raw.parse()
    assert first.output_text == PROMPT  # the echo, restored for the client
    assert raw.headers["x-souverain-classification"] == "confidential"  # raised by the IBAN
    raw = client.responses.with_raw_response.create(
        model="cloud", input="Merci", previous_response_id=first.id
    )
    # Nothing in this turn's own input is sensitive: the chain's level is a claim on it.
    assert raw.headers["x-souverain-classification"] == "confidential"
    sent = json.dumps(upstream.received[before:], ensure_ascii=False)
    assert IBAN not in sent and IBAN.replace(" ", "") not in sent
    assert "⟦IBAN_" in sent
    assert client.responses.retrieve(first.id).output_text == PROMPT


def test_a_key_below_the_chains_level_can_neither_read_nor_continue_it(gateway: Server) -> None:
    """Two keys of one user: the one capped at `internal` owns the confidential response
    too, but may not read it back or continue it (403), as it may not send such data."""
    user = admin(gateway, "/admin/v1/users", {"name": f"u{next(_names)}", "role": "developer"})
    keys = [
        admin(gateway, "/admin/v1/keys", {"name": f"k{next(_names)}", "user_id": user["id"],
                                          **cap})["key"]
        for cap in ({}, {"max_classification": "internal"})
    ]  # fmt: skip
    secret = sdk(gateway, keys[0]).responses.create(model="cloud", input=PROMPT)
    capped = sdk(gateway, keys[1])
    with pytest.raises(openai.PermissionDeniedError):
        capped.responses.retrieve(secret.id)
    with pytest.raises(openai.PermissionDeniedError):
        capped.responses.create(model="cloud", input="Et alors ?", previous_response_id=secret.id)
    harmless = capped.responses.create(model="cloud", input="Bonjour")
    assert capped.responses.retrieve(harmless.id).output_text == "Bonjour"
    assert sdk(gateway, keys[0]).responses.retrieve(harmless.id).id == harmless.id  # same owner


def test_dlp_restores_a_streamed_answer(gateway: Server, upstream: RecordingUpstream) -> None:
    """The echo comes back in 3-character chunks, so pseudonyms are split across deltas."""
    before = len(upstream.received)
    with sdk(gateway).responses.stream(model="cloud", input=PROMPT) as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert deltas == PROMPT == final.output_text
    assert IBAN not in json.dumps(upstream.received[before:], ensure_ascii=False)


def test_dlp_redacting_destination(gateway: Server, upstream: RecordingUpstream) -> None:
    answer = sdk(gateway).responses.create(model="cloud-redact", input=PROMPT)
    assert "[IBAN]" in answer.output_text
    assert IBAN not in json.dumps(last_sent(upstream), ensure_ascii=False)


PLANTED: list[dict[str, Any]] = [
    {"input": "x", "instructions": f"Compte {IBAN}"},
    {"input": [{"role": "user", "content": [{"type": "input_text", "text": IBAN}]}]},
    {"input": [{"role": "assistant", "content": [{"type": "output_text", "text": IBAN}]},
               {"role": "user", "content": "x"}]},
    {"input": [{"role": "user", "content": "x"},
               {"type": "function_call", "call_id": "c1", "name": "pay",
                "arguments": json.dumps({"iban": IBAN})},
               {"type": "function_call_output", "call_id": "c1", "output": f"payé {IBAN}"}]},
    {"input": "x", "tools": [{**ECHO_TOOL, "description": f"Pays {IBAN}"}]},
    {"input": "x", "metadata": {"note": IBAN}},
    {"input": "x", "user": IBAN},
]  # fmt: skip


@pytest.mark.parametrize("fields", PLANTED)
def test_no_field_carries_an_identifier_upstream(
    gateway: Server, upstream: RecordingUpstream, fields: dict[str, Any]
) -> None:
    before = len(upstream.received)
    answer = httpx.post(gateway.v1 + "/responses", json={"model": "cloud", **fields},
                        headers={"Authorization": f"Bearer {gateway.key}"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    sent = json.dumps(upstream.received[before:], ensure_ascii=False)
    assert len(upstream.received) == before + 1
    assert IBAN not in sent and IBAN.replace(" ", "") not in sent


# ---- bad input -----------------------------------------------------------------------

BAD: list[tuple[dict[str, Any], str | None]] = [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tools": [{"type": "function"}]}, "tools[0].name"),
    ({"tools": [ECHO_TOOL, ECHO_TOOL]}, "tools[1]"),
    ({"background": True}, "background"),
    ({"reasoning": {"effort": "high"}}, "reasoning"),
    ({"include": ["file_search_call.results"]}, "include"),
    ({"truncation": "auto"}, "truncation"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"input": []}, "input"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"type": "teleport"}]}, None),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0]"),
    ({"input": [{"role": "wizard", "content": "x"}]}, None),
    ({"input": 42}, None),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"text": {"format": {"type": "json_schema", "name": "x"}}}, None),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"temperature": 9}, "temperature"),
    ({"previous_response_id": ""}, "previous_response_id"),
    ({"model": "no-such-model"}, "model"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "param"), BAD)
def test_bad_input_is_a_400_naming_the_parameter(
    gateway: Server, fields: dict[str, Any], param: str | None
) -> None:
    body = {"model": "cloud", "input": "x", **fields}
    answer = httpx.post(gateway.v1 + "/responses", json=body,
                        headers={"Authorization": f"Bearer {gateway.key}"}, timeout=30)  # fmt: skip
    expected = 404 if param == "model" else 400
    assert answer.status_code == expected, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error


def test_not_json_and_unknown_ids(gateway: Server) -> None:
    headers = {"Authorization": f"Bearer {gateway.key}"}
    answer = httpx.post(gateway.v1 + "/responses", content=b"{nope", headers=headers)
    assert answer.status_code == 400
    answer = httpx.get(gateway.v1 + "/responses/" + "r" * 5000, headers=headers)
    assert answer.status_code == 404
    answer = httpx.get(gateway.v1 + "/responses/x/input_items?order=sideways", headers=headers)
    assert answer.status_code == 404  # the response is looked up first
    answer = httpx.get(gateway.v1 + "/responses/x", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401


def test_input_items_pages(gateway: Server) -> None:
    client = sdk(gateway)
    words = ["un", "deux", "trois"]
    response = client.responses.create(
        model="cloud", input=[{"role": "user", "content": word} for word in words]
    )
    listed = client.responses.input_items.list(response.id, order="asc", limit=2)
    assert [item.content[0].text for item in listed.data] == ["un", "deux"]  # type: ignore[union-attr]
    assert listed.has_more is True
    everything = list(client.responses.input_items.list(response.id, order="desc", limit=1))
    assert [item.content[0].text for item in everything] == ["trois", "deux", "un"]  # type: ignore[union-attr]


# ---- the mistralai SDK ----------------------------------------------------------------


def test_mistralai_sdk_create_and_tools(gateway: Server) -> None:
    client = Mistral(api_key=gateway.key, server_url=gateway.url)
    answer = client.responses.create(model="cloud", input="Bonjour Mistral")
    assert answer.output[0].type == "message"
    assert answer.output[0].content[0].text == "Bonjour Mistral"  # type: ignore[union-attr]
    assert answer.usage is not None and answer.usage.total_tokens == 15  # type: ignore[union-attr]
    called = client.responses.create(model="cloud", input="Appelle", tools=[ECHO_TOOL])  # type: ignore[list-item]
    assert called.output[0].type == "function_call"
    assert called.output[0].name == "echo"  # type: ignore[union-attr]


def test_mistralai_sdk_stream(gateway: Server) -> None:
    client = Mistral(api_key=gateway.key, server_url=gateway.url)
    frames = list(client.responses.create(model="cloud", input="Flux Mistral", stream=True))
    kinds = [frame.data.type for frame in frames]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(f.data.delta for f in frames if f.data.type == "response.output_text.delta")  # type: ignore[union-attr]
    assert text == "Flux Mistral"


def test_a_failed_stream_event_parses_in_both_sdks() -> None:
    """`response.failed` cannot be provoked through the echoing upstream mid-stream; the
    event our builder makes is checked against both SDKs' own models instead."""
    from mistralai.client.models import ResponsesFailedEvent
    from openai.types.responses import ResponseFailedEvent

    from souverain.agents.events import ResponseEvents
    from souverain.errors import EngineError
    from souverain.protocol.responses import ResponsesRequest, response_object

    request = ResponsesRequest(model="m", input="x")

    def render(*args: Any) -> dict[str, Any]:
        status, output, usage, error, reason = args
        return response_object(request, response_id="resp_1", created_at=1, model="m",
                               status=status, output=output, usage=usage, error=error,
                               incomplete_reason=reason)  # fmt: skip

    events = ResponseEvents(render)
    started = events.start() + events.text("msg_1", "Bon")
    failed = events.fail(EngineError("the upstream went away"))[-1]
    assert failed["sequence_number"] == len(started)
    mistral = ResponsesFailedEvent.model_validate(failed)
    assert mistral.response.error.message == "the upstream went away"  # type: ignore[union-attr]
    openai_event = ResponseFailedEvent.model_validate(failed)
    assert openai_event.response.status == "failed"


# ---- the embedded model ---------------------------------------------------------------

CHAT = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def local(embedded: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=embedded.v1, api_key=embedded.key, max_retries=0)


@pytest.mark.model
def test_embedded_model_create_stream_and_chain(local: openai.OpenAI) -> None:
    first = local.responses.create(model=CHAT, input="Say hello.", max_output_tokens=8)
    assert first.status in ("completed", "incomplete") and first.output_text
    assert first.usage is not None and 0 < first.usage.output_tokens <= 8
    events = list(local.responses.create(model=CHAT, input="And again.", max_output_tokens=8,
                                         previous_response_id=first.id, stream=True))  # fmt: skip
    # Cut by max_output_tokens, a stream ends with `response.incomplete`, as OpenAI's does.
    assert events[-1].type in ("response.completed", "response.incomplete")
    final = events[-1].response  # type: ignore[union-attr]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text and final.previous_response_id == first.id
    assert final.usage is not None and final.usage.input_tokens > first.usage.input_tokens


class City(BaseModel):
    # Bounded, so the grammar bounds them too: unbounded, the 135M model once wrote digits
    # until max_output_tokens cut the JSON (a 422, rightly).
    name: str = Field(max_length=40)
    population: int = Field(ge=0, le=100_000_000)


@pytest.mark.model
def test_embedded_model_parse_with_text_format(local: openai.OpenAI) -> None:
    parsed = local.responses.parse(
        model=CHAT, input="Name a city in France and its population.", text_format=City,
        max_output_tokens=200,
    )  # fmt: skip
    assert isinstance(parsed.output_parsed, City)


@pytest.mark.model
def test_embedded_model_mistralai_sdk(embedded: Server) -> None:
    client = Mistral(api_key=embedded.key, server_url=embedded.url)
    answer = client.responses.create(model=CHAT, input="Bonjour", max_output_tokens=6)
    assert answer.output[0].type == "message"
