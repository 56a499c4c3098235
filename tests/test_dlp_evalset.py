"""The whole DLP evaluation set through the gateway: no labelled value ever reaches the upstream.

The set is bench/dlp_dataset.py's (700 generated documents in seven languages, each labelled
value with its type: IBANs, cards, national ids, VAT numbers, e-mails, phones, IP addresses,
secrets), the one bench/dlp_eval.py scores. Every document goes out as chat (whole and
streamed), as the arguments of a tool call and a tool result sent back, as the prompt and
suffix of a FIM request (whole and streamed), and as embedding input, to deployments whose rule is `pseudonymize`, `redact` or `block`. The upstream is
`RecordingUpstream`, a named fake that records every body and echoes the last user message.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import openai
import pytest

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

BATCH = 25  # documents per request
_SEPARATORS = re.compile(r"[\s.\-/()]")


Doc = dict[str, Any]


@pytest.fixture(scope="module")
def labelled() -> list[Doc]:
    """The evaluation set's documents that hold at least one labelled value."""
    path = Path(__file__).resolve().parents[1] / "bench" / "dlp_dataset.py"
    spec = importlib.util.spec_from_file_location("dlp_dataset", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        docs: list[Doc] = module.to_json(module.build())["docs"]
    finally:
        del sys.modules[spec.name]
    return [doc for doc in docs if doc["entities"]]


@pytest.fixture(scope="module")
def batches(labelled: list[Doc]) -> list[list[Doc]]:
    return [labelled[i : i + BATCH] for i in range(0, len(labelled), BATCH)]


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    cloud = upstream.deployment()  # the operator is set per action below
    models: list[Doc] = []
    for action in ("pseudonymize", "redact", "block"):
        models.append({"id": f"chat-{action}", "deployments": [{**cloud, "name": f"chat-{action}", "operator": action}]})  # fmt: skip
        models.append({"id": f"fim-{action}", "capabilities": {"completion_fim": True},
                       "deployments": [{**cloud, "name": f"fim-{action}", "operator": action}]})  # fmt: skip
        models.append({"id": f"emb-{action}", "type": "embeddings", "deployments": [{**cloud, "name": f"emb-{action}", "operator": action}]})  # fmt: skip
    rules = [{"operators": [a], "actions": {"*": a}} for a in ("pseudonymize", "redact", "block")]
    # Secrets would raise the request to "restricted", which the sovereignty policy keeps
    # off any cloud: here every finding raises it to "confidential", so the DLP rule decides.
    dlp = {"destinations": rules, "raises": {"*": "confidential"}}
    server = start_server(tmp_path_factory.mktemp("dlp-evalset"), {"models": models, "dlp": dlp})
    yield server
    stop_server(server)


def _client(gateway: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def assert_no_value_left(bodies: list[Doc], docs: list[Doc]) -> None:
    """No labelled value in any string the upstream received, as written or without its
    separators (long values only: short digit runs can meet by chance once compacted)."""
    assert bodies, "the upstream received nothing"
    sent = "\x00".join(s for body in bodies for s in _strings(body))
    compact_sent = _SEPARATORS.sub("", sent)
    leaked = []
    for doc in docs:
        for entity in doc["entities"]:
            value = entity["value"]
            compact = _SEPARATORS.sub("", value)
            if value in sent or (len(compact) >= 12 and compact in compact_sent):
                leaked.append(f"{doc['id']} {entity['type']}")
    assert not leaked, f"{len(leaked)} labelled values reached the upstream: {leaked[:10]}"


def _tool_history(doc: Doc, n: int) -> list[Doc]:
    """A call whose arguments hold the document, then its result: both go back upstream."""
    call = {"id": f"call_{n}", "type": "function",
            "function": {"name": "archive", "arguments": json.dumps({"text": doc["text"]})}}  # fmt: skip
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"call_{n}", "content": doc["text"]},
    ]


ECHO_TOOL = {"type": "function", "function": {"name": "echo", "parameters": {"type": "object"}}}


@pytest.mark.parametrize("action", ["pseudonymize", "redact"])
def test_chat_whole_and_streamed(
    gateway: Server, upstream: RecordingUpstream, batches: list[list[Doc]], action: str
) -> None:
    client, before = _client(gateway), len(upstream.received)
    for batch in batches:
        messages: list[Any] = [{"role": "user", "content": doc["text"]} for doc in batch]
        answer = client.chat.completions.create(model=f"chat-{action}", messages=messages)
        stream = client.chat.completions.create(
            model=f"chat-{action}", messages=messages, stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        if action == "pseudonymize":  # the echo of the last document, restored
            assert answer.choices[0].message.content == batch[-1]["text"]
            assert streamed == batch[-1]["text"]
        else:
            assert streamed == answer.choices[0].message.content != batch[-1]["text"]
    assert_no_value_left(upstream.received[before:], [d for b in batches for d in b])


@pytest.mark.parametrize("action", ["pseudonymize", "redact"])
def test_tool_calls(
    gateway: Server, upstream: RecordingUpstream, batches: list[list[Doc]], action: str
) -> None:
    client, before = _client(gateway), len(upstream.received)
    for batch in batches:
        messages: list[Any] = [{"role": "user", "content": "Archive these documents."}]
        for n, doc in enumerate(batch):
            messages += _tool_history(doc, n)
        messages.append({"role": "user", "content": batch[0]["text"]})
        answer = client.chat.completions.create(
            model=f"chat-{action}", messages=messages, tools=[ECHO_TOOL]
        )
        call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
        arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
        assert (arguments == {"text": batch[0]["text"]}) is (action == "pseudonymize")
    assert_no_value_left(upstream.received[before:], [d for b in batches for d in b])


@pytest.mark.parametrize("action", ["pseudonymize", "redact"])
def test_embeddings(
    gateway: Server, upstream: RecordingUpstream, batches: list[list[Doc]], action: str
) -> None:
    client, before = _client(gateway), len(upstream.received)
    for batch in batches:
        result = client.embeddings.create(
            model=f"emb-{action}", input=[doc["text"] for doc in batch], encoding_format="float"
        )
        assert len(result.data) == len(batch)
    assert_no_value_left(upstream.received[before:], [d for b in batches for d in b])


@pytest.mark.parametrize("action", ["pseudonymize", "redact"])
def test_fim_whole_and_streamed(
    gateway: Server, upstream: RecordingUpstream, labelled: list[Doc], action: str
) -> None:
    before = len(upstream.received)
    with gateway.client() as http:
        for doc, after in pairwise(labelled):  # prompt and suffix
            body = {"model": f"fim-{action}", "prompt": doc["text"], "suffix": after["text"]}
            whole = http.post("/v1/fim/completions", json=body)
            assert whole.status_code == 200, whole.text
            echoed = whole.json()["choices"][0]["message"]["content"]
            assert (echoed == doc["text"]) is (action == "pseudonymize")
            with http.stream("POST", "/v1/fim/completions", json={**body, "stream": True}) as s:
                assert s.status_code == 200
                events = [line[6:] for line in s.iter_lines() if line.startswith("data: {")]
            streamed = "".join(
                json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events
            )
            assert streamed == echoed
    assert_no_value_left(upstream.received[before:], labelled)


def test_block_sends_nothing_at_all(
    gateway: Server, upstream: RecordingUpstream, labelled: list[Doc]
) -> None:
    before = len(upstream.received)
    refused: set[int] = set()
    with gateway.client() as http:
        for doc in labelled:  # one document per request: each must be refused on its own
            for body in (
                {"model": "chat-block", "messages": [{"role": "user", "content": doc["text"]}]},
                {"model": "chat-block", "stream": True,
                 "messages": [{"role": "user", "content": "go"}, *_tool_history(doc, 0)]},
                {"model": "emb-block", "input": [doc["text"]]},
                {"model": "fim-block", "prompt": doc["text"], "suffix": "}"},
            ):  # fmt: skip
                path = {"input": "/v1/embeddings", "prompt": "/v1/fim/completions"}
                path = next((p for k, p in path.items() if k in body), "/v1/chat/completions")
                response = http.post(path, json=body)
                refused.add(response.status_code)
                assert not any(e["value"] in response.text for e in doc["entities"])
    assert refused == {403}
    assert len(upstream.received) == before
