"""No `response_format` can crash or hang the local engine (issue 12, item 1).

Each schema below once killed `souverain serve` (llama.cpp failed to parse the grammar
and the null grammar was dereferenced: SIGSEGV) or held a worker in native code for
minutes per token. Through a real server on the embedded model, each must now be a 400
naming the keyword, and the same process must answer a normal request afterwards. The
server is this module's own, so that a crash here cannot take down the shared one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Server, start_server, stop_server
from .test_ocr_documents import INVOICE, data_url, text_pdf

pytestmark = pytest.mark.model
CHAT = "smollm2-135m-instruct"
SCHEMA = "response_format.json_schema.schema"


def nested_alternatives(depth: int) -> dict[str, Any]:
    """Two array branches at each of `depth` levels, through $ref: a small schema whose
    grammar keeps 2**depth parses alive while the model writes `[[[[`."""
    defs: dict[str, Any] = {f"a{depth}": {"type": "string", "maxLength": 3}}

    def two_arrays(level: int) -> dict[str, Any]:
        array = {"type": "array", "items": {"$ref": f"#/$defs/a{level}"}, "minItems": 1}
        return {"anyOf": [array, dict(array)]}

    for level in range(depth - 1, 0, -1):
        defs[f"a{level}"] = two_arrays(level + 1)
    return {"$defs": defs, **two_arrays(1)}


CRASHING = [  # (schema, the param the 400 names); the comment says what it did before
    ({"type": "string", "maxLength": 2000}, f"{SCHEMA}.maxLength"),  # SIGSEGV
    ({"type": "object", "properties": {"note": {"type": "string", "maxLength": 5000}}},
     f"{SCHEMA}.properties.note.maxLength"),  # SIGSEGV
    ({"type": "array", "items": {"type": "integer"}, "maxItems": 2500}, f"{SCHEMA}.maxItems"),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 10**7}, f"{SCHEMA}.minItems"),
    ({"type": "string", "pattern": "^[a-z]{1,2001}$"}, f"{SCHEMA}.pattern"),  # SIGSEGV
    ({"type": "string", "pattern": "^a{100000000}$"}, f"{SCHEMA}.pattern"),  # 100 MB literal
    ({"enum": []}, f"{SCHEMA}.enum"),  # SIGSEGV: an empty grammar
    ({"anyOf": []}, f"{SCHEMA}.anyOf"),  # SIGSEGV
    ({"type": "string", "pattern": "^[0-9]\\d$"}, SCHEMA),  # SIGSEGV: GBNF has no \d
    ({"type": "string", "pattern": "^(a?){300}a{300}$"}, f"{SCHEMA}.pattern"),  # hung
    ({"type": "string", "pattern": "^([a-z]{0,3}){100}$"}, f"{SCHEMA}.pattern"),  # hung
    ({"type": "string", "pattern": "^((a{1,10}){1,10}){30,100}$"}, f"{SCHEMA}.pattern"),
    (nested_alternatives(16), f"{SCHEMA}.anyOf"),  # minutes per token
    ({"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}},
     f"{SCHEMA}.properties.a.$ref"),
    # SIGABRT: a grammar that parses but leads the model into a dead end (no character
    # can follow), where llama.cpp throws through C and the process aborts
    ({"type": "string", "pattern": "^x[b-a]$"}, f"{SCHEMA}.pattern"),
    ({"type": "string", "pattern": "^[^\\x01-\\U0010FFFE]$"}, f"{SCHEMA}.pattern"),
    ({"type": "string", "pattern": "^a\\x00$"}, f"{SCHEMA}.pattern"),  # \x00: NUL, spelled
    # (a raw NUL anywhere in a body is refused before any engine; test_schema_limits.py
    # checks the local engine's own refusal of NUL in const, enum and property names)
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("grammar-limits"))
    yield server
    stop_server(server)


def chat(server: Server, **extra: Any) -> httpx.Response:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    with server.client() as client:
        return client.post("/v1/chat/completions", json={**body, **extra}, timeout=60)


def assert_alive(server: Server) -> None:
    assert server.process.poll() is None, server.log.read_text()[-2000:]
    assert chat(server).status_code == 200


@pytest.mark.parametrize(("schema", "param"), CRASHING)
@pytest.mark.parametrize("stream", [False, True])
def test_a_schema_past_the_bounds_is_a_400_and_the_server_lives(
    server: Server, schema: dict[str, Any], param: str, stream: bool
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    # room for the model to reach a dead end: two tokens stopped before it
    response = chat(server, response_format=fmt, stream=stream, max_tokens=16)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert_alive(server)


def test_schemas_within_the_bounds_still_work(server: Server) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 1000},
            "iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}([A-Z0-9]{4}){2,7}$"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 1000},
            "note": {"anyOf": [{"type": "string", "maxLength": 20}, {"type": "null"}]},
        },
        "required": ["name", "iban"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    answer = chat(server, response_format=fmt)
    # Accepted: two tokens cannot hold a conforming object, so the answer is the clear
    # "cut by max_tokens" refusal (backends/structured.py), never a 400 on the schema.
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("output_not_conforming", "max_tokens")
    assert chat(server, response_format={"type": "json_object"}).status_code == 200


def test_ocr_document_annotation_names_its_own_field(server: Server) -> None:
    document = {"type": "document_url", "document_url": data_url(text_pdf([INVOICE]), "application/pdf")}  # fmt: skip
    for schema, param in [CRASHING[1], CRASHING[6], CRASHING[9]]:
        body = {
            "model": "souverain-ocr",
            "document": document,
            "document_annotation_format": {
                "type": "json_schema",
                "json_schema": {"name": "invoice", "schema": schema},
            },
        }
        with server.client() as client:
            response = client.post("/v1/ocr", json=body, timeout=60)
        assert response.status_code == 400, response.text
        expected = "document_annotation_format" + param.removeprefix("response_format")
        assert response.json()["error"]["param"] == expected
        assert_alive(server)
