"""Every field of every request schema, planted with an identifier, through the real gateway.

One base request per endpoint holds every declared field and every nested model of its
schema (a test below fails when the protocol gains a field the base lacks). From it, one
variant per string leaf plants an IBAN there, and one variant per object adds an unknown
field holding it (as a value and as a key). Each variant goes through the gateway to the
`openai` and the `mistral` engine on `RecordingUpstream` (a named fake that records every
body it receives), whole and streamed, with DLP set to pseudonymize: the IBAN must never
reach the upstream as written or with its spaces removed, and nothing may answer a 5xx.
"""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from souverain.protocol.chat import ChatCompletionRequest
from souverain.protocol.embeddings import EmbeddingRequest
from souverain.protocol.fim import FIMCompletionRequest
from souverain.protocol.text_completions import TextCompletionRequest

from .conftest import Server, start_server, stop_server
from .recording_upstream import RecordingUpstream

IBAN = "FR76 3000 6000 0112 3456 7890 189"
COMPACT = IBAN.replace(" ", "")
STRUCTURAL = {"model", "role", "type", "stream"}  # closed vocabularies, checked by the schema

CHAT_BASE: dict[str, Any] = {
    "model": "MODEL",
    "messages": [
        {"role": "system", "content": "Be brief.", "name": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hello"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://img.example/a.png", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "calling",
            "prefix": False,
            "tool_calls": [
                {
                    "id": "call1",
                    "type": "function",
                    "index": 0,
                    "function": {"name": "lookup", "arguments": '{"q": "x", "n": 1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call1", "name": "lookup", "content": '{"r": "y"}'},
        {"role": "user", "content": "Go on"},
    ],
    "frequency_penalty": 0,
    "max_tokens": 8,
    "max_completion_tokens": 8,
    "n": 1,
    "presence_penalty": 0,
    "seed": 1,
    "stop": ["END"],
    "stream": False,
    "stream_options": {"include_usage": True},
    "temperature": 0,
    "top_p": 1,
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "out",
            "description": "the answer",
            "strict": True,
            "schema": {"type": "object", "properties": {"a": {"type": "string", "default": "d"}}},
        },
    },
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "looks up",
                "strict": False,
                "parameters": {
                    "type": "object",
                    "properties": {"q": {"type": "string", "description": "query"}},
                },
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    "parallel_tool_calls": True,
    "logprobs": False,
    "top_logprobs": 0,
    "user": "someone",
    "metadata": {"k": "v"},
    "random_seed": 1,
    "safe_prompt": False,
}
FIM_BASE: dict[str, Any] = {
    "model": "MODEL",
    "prompt": "def f(",
    "suffix": "return 1",
    "temperature": 0,
    "top_p": 1,
    "max_tokens": 8,
    "min_tokens": 0,
    "stream": False,
    "stop": ["\n\n"],
    "random_seed": 1,
    "metadata": {"k": "v"},
}
TEXT_BASE: dict[str, Any] = {
    "model": "MODEL",
    "prompt": "Dear customer,",
    "best_of": 1,
    "echo": False,
    "frequency_penalty": 0,
    "logprobs": None,
    "max_tokens": 8,
    "n": 1,
    "presence_penalty": 0,
    "seed": 1,
    "stop": ["END"],
    "stream": False,
    "stream_options": {"include_usage": True},
    "suffix": "Regards",
    "temperature": 0,
    "top_p": 1,
    "user": "someone",
    "metadata": {"k": "v"},
}
EMBEDDINGS_BASE: dict[str, Any] = {
    "model": "MODEL",
    "input": ["first", "second"],
    "encoding_format": "float",
    "dimensions": 2,
    "user": "someone",
    "output_dimension": 2,
    "output_dtype": "float",
    "metadata": {"k": "v"},
}
# Fields a base leaves out on purpose, and why.
NOT_IN_BASE = {
    "library_ids": "grounding runs in the gateway and never reaches an engine (test_grounding)",
}


def _declared(model: type[BaseModel]) -> Iterator[tuple[type[BaseModel], str]]:
    seen: set[type[BaseModel]] = set()
    todo = [model]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, info in current.model_fields.items():
            yield current, info.alias or name
            todo.extend(_models_in(info.annotation))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found += _models_in(arg)
    return found


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in _keys(item)}
    if isinstance(value, list):
        return {k for item in value for k in _keys(item)}
    return set()


@pytest.mark.parametrize(
    ("schema", "base"),
    [
        (ChatCompletionRequest, CHAT_BASE),
        (FIMCompletionRequest, FIM_BASE),
        (EmbeddingRequest, EMBEDDINGS_BASE),
        (TextCompletionRequest, TEXT_BASE),
    ],
)
def test_the_bases_hold_every_declared_field(schema: type[BaseModel], base: dict[str, Any]) -> None:
    present = _keys(base)
    missing = {
        f"{owner.__name__}.{name}"
        for owner, name in _declared(schema)
        if name not in present and name not in NOT_IN_BASE
    }
    assert not missing, f"add these fields to the field walk's base request: {sorted(missing)}"


def variants(base: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, request) for every string leaf planted, and an unknown field on every object."""

    def walk(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        yield path
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, (*path, index))

    for path in walk(base, ()):
        node = _at(base, path)
        if isinstance(node, str) and not (path and path[-1] in STRUCTURAL):
            where = "/".join(map(str, path))
            yield where, _set(base, path, f"pay {IBAN}")
            if _holds_json(base, path):  # read as the JSON it is, too
                yield f"{where} (JSON)", _set(base, path, json.dumps({"q": f"pay {IBAN}"}))
        elif isinstance(node, dict):
            where = "/".join(map(str, path)) or "(top)"
            yield f"{where}/x_unknown", _set(base, (*path, "x_unknown"), {"iban": IBAN})
            yield f"{where}/<key>", _set(base, (*path, f"k {IBAN}"), 1)


def _holds_json(base: dict[str, Any], path: tuple[Any, ...]) -> bool:
    """Tool-call arguments and tool results: the gateway reads the JSON inside them."""
    if path[-1] == "arguments":
        return True
    is_message = len(path) == 3 and path[0] == "messages" and path[2] == "content"
    return is_message and base["messages"][path[1]]["role"] == "tool"


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node[step]
    return node


def _set(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    planted = copy.deepcopy(base)
    _at(planted, path[:-1])[path[-1]] = value
    return planted


@pytest.fixture(scope="module")
def gateway(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    cloud = upstream.deployment()
    mistral = {**cloud, "engine": "mistral", "base_url": upstream.url.removesuffix("/v1")}
    fim = {"completion_fim": True}
    models = [
        {"id": "chat-openai", "deployments": [{**cloud, "name": "chat-openai"}]},
        {"id": "chat-mistral", "deployments": [{**mistral, "name": "chat-mistral"}]},
        {"id": "fim-openai", "capabilities": fim, "deployments": [{**cloud, "name": "fim-openai"}]},
        {
            "id": "fim-mistral",
            "capabilities": fim,
            "deployments": [{**mistral, "name": "fim-mistral"}],
        },
        {
            "id": "emb-openai",
            "type": "embeddings",
            "deployments": [{**cloud, "name": "emb-openai"}],
        },
    ]
    dlp = {
        "destinations": [{"operators": ["EU Cloud"], "actions": {"*": "pseudonymize"}}],
        "raises": {"*": "confidential"},
    }
    server = start_server(tmp_path_factory.mktemp("field-walk"), {"models": models, "dlp": dlp})
    yield server
    stop_server(server)


CASES = [
    ("/v1/chat/completions", CHAT_BASE, ("chat-openai", "chat-mistral")),
    ("/v1/fim/completions", FIM_BASE, ("fim-openai", "fim-mistral")),
    ("/v1/embeddings", EMBEDDINGS_BASE, ("emb-openai",)),
    # The mistral engine refuses legacy completions (400): checked to send nothing.
    ("/v1/completions", TEXT_BASE, ("chat-openai", "chat-mistral")),
]


@pytest.mark.parametrize(
    ("path", "base", "models"), CASES, ids=["chat", "fim", "embeddings", "completions"]
)
def test_a_planted_identifier_never_leaves_untransformed(
    gateway: Server,
    upstream: RecordingUpstream,
    path: str,
    base: dict[str, Any],
    models: tuple[str, ...],
) -> None:
    leaks, errors, sent = [], [], 0
    with gateway.client() as client:
        for where, planted in variants(base):
            for model in models:
                for stream in (False, True) if path != "/v1/embeddings" else (False,):
                    before = len(upstream.received)
                    body = {**planted, "model": model, "stream": stream}
                    response = client.post(path, json=body)
                    if response.status_code >= 500:
                        errors.append((where, model, stream, response.status_code, response.text))
                    received = json.dumps(upstream.received[before:], ensure_ascii=False)
                    sent += len(upstream.received) - before
                    if IBAN in received or COMPACT in received:
                        leaks.append((where, model, stream))
    assert not errors, errors
    assert not leaks, f"the identifier reached the upstream from: {leaks}"
    assert sent > 0  # the variants did go out (transformed), the check above is not vacuous


def test_images_no_detector_can_read_go_nowhere_but_where_allowed(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": pixel}},
        ],
    }
    before = len(upstream.received)
    with gateway.client() as client:
        response = client.post(
            "/v1/chat/completions", json={"model": "chat-openai", "messages": [message]}
        )
    assert response.status_code == 403, response.text
    assert "image" in response.json()["error"]["message"]
    assert len(upstream.received) == before


def test_an_identifier_in_an_image_url_leaves_transformed(
    gateway: Server, upstream: RecordingUpstream
) -> None:
    url = f"https://img.example/scan.png?account={COMPACT}"
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "read it"},
            {"type": "image_url", "image_url": {"url": url}},
        ],
    }
    with gateway.client() as client:
        response = client.post(
            "/v1/chat/completions", json={"model": "chat-openai", "messages": [message]}
        )
    assert response.status_code == 200, response.text
    sent = upstream.received[-1]["messages"][0]["content"][1]["image_url"]["url"]
    assert COMPACT not in sent and sent.startswith("https://img.example/scan.png?account=⟦")


def test_unknown_fields_are_not_forwarded(gateway: Server, upstream: RecordingUpstream) -> None:
    body = {
        "model": "chat-openai",
        "x_customer": {"note": "hello"},
        "user": "u1",
        "metadata": {"team": "a"},
        "messages": [{"role": "user", "content": "hi", "x_part": "y"}],
    }
    with gateway.client() as client:
        assert client.post("/v1/chat/completions", json=body).status_code == 200
    sent = upstream.received[-1]
    assert not {"x_customer", "user", "metadata"} & set(sent)
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
