"""Data-loss prevention end to end: what the upstream received, and what the client got.

The upstream is `RecordingUpstream` (tests/recording_upstream.py), a fake that records
every body and echoes the user's text back, so that restoration is visible.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

IBAN = "FR76 3000 6000 0112 3456 7890 189"
EMAIL = "jeanne.dupont@example.fr"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PROMPT = f"Virement depuis {IBAN}, confirmation à {EMAIL} s'il vous plaît."


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    eu = upstream.deployment()
    config = {
        "models": [
            {"id": "cloud", "deployments": [{**eu, "name": "eu-cloud"}]},
            {"id": "cloud-redact", "deployments": [{**eu, "name": "redactor", "operator": "Redactor"}]},
            {"id": "emb", "type": "embeddings", "deployments": [{**eu, "name": "eu-embed"}]},
        ],
        "dlp": {"destinations": [{"operators": ["Redactor"], "actions": {"*": "redact"}},
                                 {"jurisdictions": ["on-prem"], "actions": {"*": "allow"}}]},
    }  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("dlp-gw"), config)
    yield server
    stop_server(server)


def client(gateway: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0)


def test_pseudonymized_for_the_upstream_restored_for_the_client(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    before = len(upstream.received)
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="cloud", messages=[{"role": "user", "content": PROMPT}]
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == PROMPT  # the echo, restored
    sent = json.dumps(upstream.received[before:], ensure_ascii=False)
    assert IBAN not in sent and IBAN.replace(" ", "") not in sent and EMAIL not in sent
    assert "⟦IBAN_" in sent and "⟦EMAIL_" in sent
    assert raw.headers["x-souverain-classification"] == "confidential"  # raised by the IBAN


def test_streamed_answers_are_restored_across_chunks(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    before = len(upstream.received)
    stream = client(gateway).chat.completions.create(
        model="cloud", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == PROMPT
    assert IBAN not in upstream.seen()[len(json.dumps(upstream.received[:before])) :]


def test_placeholders_are_stable_within_a_conversation(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    before = len(upstream.received)
    for _ in range(2):
        client(gateway).chat.completions.create(
            model="cloud", messages=[{"role": "user", "content": f"IBAN {IBAN}"}]
        )
    first, second = (body["messages"][0]["content"] for body in upstream.received[before:])
    assert first == second and "⟦IBAN_" in first


def test_tool_call_arguments_are_restored(gateway: Server, upstream: RecordingUpstream) -> None:
    tool = {"type": "function", "function": {"name": "echo", "parameters": {"type": "object"}}}
    answer = client(gateway).chat.completions.create(
        model="cloud", messages=[{"role": "user", "content": PROMPT}], tools=[tool]
    )
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == {"text": PROMPT}  # type: ignore[union-attr]
    assert EMAIL not in json.dumps(upstream.received[-1])


def test_tool_call_arguments_sent_back_are_scanned_too(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    messages = [
        {"role": "user", "content": "Call the tool."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "pay", "arguments": json.dumps({"iban": IBAN})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": f"sent to {EMAIL}"},
        {"role": "user", "content": "Thanks"},
    ]  # fmt: skip
    client(gateway).chat.completions.create(model="cloud", messages=messages)  # type: ignore[arg-type]
    sent = json.dumps(upstream.received[-1], ensure_ascii=False)
    assert IBAN not in sent and EMAIL not in sent


def test_embeddings_never_carry_the_values(gateway: Server, upstream: RecordingUpstream) -> None:
    client(gateway).embeddings.create(model="emb", input=[PROMPT, "rien"], encoding_format="float")
    sent = json.dumps(upstream.received[-1], ensure_ascii=False)
    assert IBAN not in sent and EMAIL not in sent and "rien" in sent


def test_redacting_destination(gateway: Server, upstream: RecordingUpstream) -> None:
    answer = client(gateway).chat.completions.create(
        model="cloud-redact", messages=[{"role": "user", "content": PROMPT}]
    )
    assert "[IBAN]" in (answer.choices[0].message.content or "")  # redacted: nothing to restore
    assert IBAN not in json.dumps(upstream.received[-1], ensure_ascii=False)


@pytest.mark.parametrize("stream", [False, True])
def test_secrets_are_never_sent(gateway: Server, upstream: RecordingUpstream, stream: bool) -> None:
    before = len(upstream.received)
    with gateway.client() as http:
        body = {
            "model": "cloud",
            "messages": [{"role": "user", "content": f"my key is {AWS_KEY}"}],
            "stream": stream,
        }
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 403
    assert AWS_KEY not in response.text  # the refusal names categories, never values
    assert len(upstream.received) == before  # nothing left
