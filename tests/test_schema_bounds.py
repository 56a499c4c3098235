"""JSON schemas with bounds on the local engine: every answer conforms, or a clear error.

Issue 13, item 5: `minimum`/`maximum` (pydantic `Field(ge=0)`, `confloat`) and other
keywords the grammar converter ignores were a 400, which broke `.parse()` in the openai
and mistralai SDKs (and instructor, langchain, openai-agents) for everyday models. Now the
grammar enforces what it can (numeric ranges included), the answer is checked against the
client's schema, retried, and refused with a 422 `output_not_conforming` when no try
conforms. The model tests talk to the session's embedded server through the real SDKs
and check every answer with jsonschema here, independently of the server's own check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import jsonschema
import openai
import pytest
from mistralai.client import Mistral
from pydantic import BaseModel, Field, StringConstraints, confloat

from souverain.backends.conformance import violations
from souverain.backends.json_schema import RANGE_MARKER, enforceable_schema
from souverain.backends.numeric_grammar import integer_rule, number_rule
from souverain.backends.structured import OutputNotConforming, conforming
from souverain.errors import InvalidRequest
from souverain.protocol.chat import ChatDelta
from souverain.protocol.common import Usage

from .conftest import Server

CHAT = "smollm2-135m-instruct"


# ---- the schemas clients send (pydantic, as the SDKs turn models into schemas) ----------


class Line(BaseModel):
    product: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    quantity: int = Field(ge=1, le=1000)
    unit_price: float = Field(ge=0, le=10_000)


class Order(BaseModel):
    order_id: uuid.UUID
    placed_on: dt.date
    status: Literal["new", "paid", "shipped"]
    lines: list[Line] = Field(min_length=1, max_length=3)
    discount: confloat(ge=0, le=1)  # type: ignore[valid-type]
    note: str | None = None


class Contact(BaseModel):
    name: Annotated[str, StringConstraints(max_length=30)]
    # pydantic's EmailStr needs the email-validator package; the schema is the same
    email: str = Field(json_schema_extra={"format": "email"})
    age: int = Field(ge=18, lt=120)
    updated_at: dt.datetime


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The schema as openai's `.parse()` sends it: every property required, closed objects."""
    schema = model.model_json_schema()

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def assert_conforms(schema: dict[str, Any], value: Any) -> None:
    """jsonschema itself (not the server's wrapper), formats asserted; date-time by hand,
    since jsonschema's own date-time check needs a package the project does not ship."""
    checker = jsonschema.FormatChecker(formats=("date", "uuid", "email"))
    jsonschema.Draft202012Validator(schema, format_checker=checker).validate(value)

    def date_times(node: Any, here: Any) -> None:
        if isinstance(node, dict) and isinstance(here, dict):
            for name, sub in node.get("properties", {}).items():
                if name in here:
                    if sub.get("format") == "date-time":
                        dt.datetime.fromisoformat(here[name])
                    if sub.get("format") == "email":  # jsonschema only looks for an "@"
                        assert re.fullmatch(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+", here[name])
                    date_times(sub, here[name])

    date_times(schema, value)


# ---- conformance.violations ---------------------------------------------------------------


ORDER = strict_schema(Order)
GOOD_ORDER = {
    "order_id": "123e4567-e89b-12d3-a456-426614174000",
    "placed_on": "2024-02-29",
    "status": "paid",
    "lines": [{"product": "tea", "quantity": 3, "unit_price": 2.5}],
    "discount": 0.1,
    "note": None,
}


def test_a_conforming_value_has_no_violations() -> None:
    assert violations(ORDER, GOOD_ORDER) == []
    assert_conforms(ORDER, GOOD_ORDER)


@pytest.mark.parametrize(
    ("change", "where", "what"),
    [
        ({"discount": 1.5}, "$.discount", "maximum"),
        ({"discount": -0.1}, "$.discount", "minimum"),
        ({"placed_on": "2023-02-29"}, "$.placed_on", "'date'"),  # no 29 February in 2023
        ({"order_id": "123e4567e89b12d3a456426614174000"}, "$.order_id", "'uuid'"),
        ({"status": "lost"}, "$.status", "is not one of"),
        ({"lines": []}, "$.lines", "should be non-empty"),
        ({"lines": [{"product": "", "quantity": 0, "unit_price": 1}]}, "$.lines[0].", "minimum"),
        ({"lines": [{"product": "x", "quantity": 2, "unit_price": 1, "extra": 1}]},
         "$.lines[0]", "additional properties"),
        ({"note": 3}, "$.note", "is not valid under any"),
        ({"surprise": True}, "$", "'surprise' unexpected"),
    ],
)  # fmt: skip
def test_each_violation_names_its_json_path(change: dict[str, Any], where: str, what: str) -> None:
    found = violations(ORDER, {**GOOD_ORDER, **change})
    assert any(message.startswith(where) and what in message for message in found), found


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": "string", "format": "email"}, "ada.lovelace@example.org", "ada@example"),
        ({"type": "string", "format": "date-time"}, "2024-05-01T10:20:30.5+02:00",
         "2024-05-01 10:20"),
        ({"type": "string", "format": "time"}, "23:59:60Z", "24:00:00Z"),
        ({"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}$"}, "FR76", "fr76"),
        ({"type": "string", "minLength": 2, "maxLength": 3}, "abc", "abcd"),
        ({"type": "integer", "multipleOf": 7}, 49, 50),
        ({"type": "integer", "exclusiveMinimum": 0}, 1, 0),
        ({"type": "array", "uniqueItems": True}, [1, 2], [1, 1]),
        ({"type": "integer"}, 3, True),  # a boolean is not an integer
    ],
)  # fmt: skip
def test_keywords_and_formats_are_asserted(schema: dict[str, Any], good: Any, bad: Any) -> None:
    assert violations(schema, good) == []
    assert violations(schema, bad) != []


def test_an_invalid_schema_is_a_400() -> None:
    with pytest.raises(InvalidRequest, match="not valid"):
        violations({"type": "decimal"}, 1)
    with pytest.raises(InvalidRequest):
        enforceable_schema({"type": "object", "properties": {"a": {"minimum": "zero"}}})


def test_a_hostile_pattern_cannot_hang_the_check() -> None:
    # catastrophic backtracking for Python's `re`; `regex` runs it under a timeout
    schema = {"type": "array", "items": {"type": "string", "pattern": "^(x+x+)+y$"}}
    started = time.monotonic()
    found = violations(schema, ["x" * 3000] * 100)
    assert time.monotonic() - started < 10  # a bound on a hang (minutes with `re`), not a speed
    assert found and "could not be checked" in found[0]  # fail closed, never "conforms"
    assert len(found) <= 20
    started = time.monotonic()
    keys = {"patternProperties": {"^(a|aa)+$": {"type": "integer"}}}
    found = violations(keys, {"a" * 3000 + "b": 1, "a": 2})
    assert time.monotonic() - started < 10
    assert found and all("could not be checked" in message for message in found)
    assert violations(keys, {"aaa": 1, "b": "x"}) == []
    assert violations(keys, {"aaa": "x"})[0].startswith("$.aaa")


# ---- the grammar's version of a schema ----------------------------------------------------


def gbnf_regex(rule: str) -> re.Pattern[str]:
    """The rules numeric_grammar.py writes use literals, classes, groups, `|` and `?`:
    the same language as a Python regex, for checking them by brute force."""
    parts, index = [], 0
    while index < len(rule):
        char = rule[index]
        if char == '"':
            end = rule.index('"', index + 1)
            parts.append(re.escape(rule[index + 1 : end]))
            index = end + 1
        elif char == "[":
            end = rule.index("]", index)
            parts.append(rule[index : end + 1])
            index = end + 1
        else:
            parts.append("" if char == " " else char)
            index += 1
    return re.compile("".join(parts) + r"\Z")


@pytest.mark.parametrize(
    ("low", "high"),
    [(0, 130), (1, 1000), (-4, 99_999), (-250, -7), (18, 119), (0, None), (None, 0),
     (7, 7), (95, 105), (None, None), (-1000, 1000)],
)  # fmt: skip
def test_integer_ranges_are_exact(low: int | None, high: int | None) -> None:
    rule = integer_rule(low, high)
    assert rule is not None
    matches = gbnf_regex(rule)
    for number in range(-2000, 2000):
        inside = (low is None or number >= low) and (high is None or number <= high)
        assert bool(matches.match(str(number))) == inside, number
    for spelling in ("-0", "007", "+5", "1.0", "1e3", ""):
        assert not matches.match(spelling)
    assert integer_rule(5, 4) is None


def test_number_ranges_hold_sign_integer_part_and_top() -> None:
    unit = gbnf_regex(number_rule(0.0, 1.0) or "")
    assert all(unit.match(s) for s in ("0", "0.5", "0.999999", "1", "1.000"))
    assert not any(unit.match(s) for s in ("1.5", "-0.1", "2", "0.1234567", "1e0"))
    negative = gbnf_regex(number_rule(-10.0, -2.5) or "")
    assert negative.match("-3.25") and not negative.match("3.25")
    assert not negative.match("-11")


def test_bounds_become_grammar_rules_instead_of_a_400() -> None:
    """Before issue 13 each of these was a 400 naming the keyword."""
    relaxed = enforceable_schema(ORDER)
    line = relaxed["$defs"]["Line"]["properties"]
    assert line["quantity"]["const"] == f"{RANGE_MARKER}/integer/1/1000"
    assert line["unit_price"]["const"] == f"{RANGE_MARKER}/number/0/10000"
    assert relaxed["properties"]["discount"]["const"] == f"{RANGE_MARKER}/number/0/1"
    contact = enforceable_schema(strict_schema(Contact))["properties"]
    assert contact["age"]["const"] == f"{RANGE_MARKER}/integer/18/119"  # lt=120
    assert contact["email"]["pattern"].startswith("^")  # format email: a pattern subset
    # keywords the grammar cannot express are left to the check after generation
    loose = enforceable_schema(
        {"type": "array", "items": {"type": "integer", "multipleOf": 3}, "uniqueItems": True}
    )
    assert loose == {"type": "array", "items": {"type": "integer"}}
    # a property named like a keyword is data, not a keyword
    named = {"type": "object", "properties": {"minimum": {"type": "string"}}}
    assert enforceable_schema(named) == named


@pytest.mark.parametrize(
    ("pattern", "spelled", "sample"),
    [
        ("^[a-z.\\-]+\\.fr$", "^[a-z.\\x2D]+[\\x2E]fr$", "a.b-c.fr"),
        ("^https?:\\/\\/x$", "^https?:[\\x2F][\\x2F]x$", "https://x"),
        ("^\\(1\\)\\\\$", "^\\(1\\)\\\\$", "(1)\\"),  # escapes both already read
    ],
)
def test_escaped_punctuation_is_spelled_for_the_grammar(
    pattern: str, spelled: str, sample: str
) -> None:
    assert enforceable_schema({"type": "string", "pattern": pattern})["pattern"] == spelled
    assert re.fullmatch(pattern, sample) and re.fullmatch(spelled, sample)  # same language


@pytest.mark.model
def test_every_rewritten_schema_builds_a_grammar_llama_cpp_accepts() -> None:
    """`\\.` in a pattern (as in every email or domain pattern) used to be a 400: the
    converter copied the escape, which GBNF does not know."""
    from llama_cpp import Llama

    from souverain.backends.grammar import response_grammar
    from souverain.backends.local_llama import embedded_gguf_path

    vocab = Llama(str(embedded_gguf_path()), vocab_only=True, verbose=False)._model.vocab
    schemas = [
        ORDER, strict_schema(Contact),
        {"type": "string", "pattern": "^[a-z0-9._%+\\-]+@[a-z0-9.\\-]+\\.[a-z]{2,}$"},
        {"type": "number", "exclusiveMinimum": -1e300, "maximum": 1e300},
        {"type": "integer", "minimum": -(10**20)},
        {"type": "array", "items": {"type": "integer", "minimum": 5, "maximum": 5}},
    ]  # fmt: skip
    for schema in schemas:
        grammar = response_grammar(schema, vocab)
        assert RANGE_MARKER not in grammar._grammar


# ---- the retry loop, with a scripted generator (a named fake: no model) ------------------


def scripted(*answers: tuple[str, str]) -> Any:
    """generate(attempt) for `conforming`: answer `attempt` as (text, finish_reason)."""
    calls: list[int] = []

    async def generate(attempt: int) -> AsyncIterator[ChatDelta]:
        calls.append(attempt)
        text, finish = answers[attempt]
        yield ChatDelta(content=text[: len(text) // 2])
        yield ChatDelta(content=text[len(text) // 2 :])
        yield ChatDelta(finish_reason=finish, usage=Usage(10, 5))  # type: ignore[arg-type]

    generate.calls = calls  # type: ignore[attr-defined]
    return generate


async def collect(schema: dict[str, Any], generate: Any) -> list[ChatDelta]:
    return [delta async for delta in conforming(schema, generate)]


SCORE = {"type": "object", "properties": {"score": {"type": "integer", "multipleOf": 5}},
         "required": ["score"]}  # fmt: skip


def test_a_try_that_does_not_conform_is_retried_and_never_shown() -> None:
    generate = scripted(('{"score": 3}', "stop"), ('{"score": 15}', "stop"))
    deltas = asyncio.run(collect(SCORE, generate))
    assert "".join(d.content or "" for d in deltas) == '{"score": 15}'
    assert generate.calls == [0, 1]
    assert deltas[-1].usage == Usage(20, 10)  # both tries counted


def test_no_conforming_try_is_a_422_and_a_cut_answer_is_not_retried() -> None:
    generate = scripted(*[('{"score": 3}', "stop")] * 3)
    with pytest.raises(OutputNotConforming) as caught:
        asyncio.run(collect(SCORE, generate))
    assert caught.value.status_code == 422 and caught.value.code == "output_not_conforming"
    assert "$.score" in caught.value.message and generate.calls == [0, 1, 2]
    cut = scripted(('{"sco', "length"))
    with pytest.raises(OutputNotConforming, match="max_tokens") as caught:
        asyncio.run(collect(SCORE, cut))
    assert caught.value.param == "max_tokens" and cut.calls == [0]


# ---- through a real server, with the SDKs --------------------------------------------------


@pytest.fixture(scope="module")
def client(embedded: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=embedded.v1, api_key=embedded.key, max_retries=0)


def ask(model: type[BaseModel]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You answer with JSON only."},
        {"role": "user", "content": f"Give an example {model.__name__.lower()} as JSON."},
    ]


@pytest.mark.model
@pytest.mark.parametrize("model", [Order, Contact])
@pytest.mark.parametrize("seed", [1])
def test_openai_parse_with_bounds_formats_and_nesting(
    client: openai.OpenAI, model: type[BaseModel], seed: int
) -> None:
    try:
        answer = client.chat.completions.parse(
            model=CHAT, messages=ask(model), response_format=model,  # type: ignore[arg-type]
            max_tokens=250, temperature=0.7, seed=seed,
        )  # fmt: skip
    except openai.UnprocessableEntityError as exc:  # allowed: the clear refusal
        assert exc.body["code"] == "output_not_conforming"  # type: ignore[index]
        return
    message = answer.choices[0].message
    assert isinstance(message.parsed, model)  # pydantic accepted it
    assert_conforms(strict_schema(model), json.loads(message.content or ""))


@pytest.mark.model
def test_mistral_parse_with_bounds(embedded: Server) -> None:
    with Mistral(api_key=embedded.key, server_url=embedded.url) as mistral:
        answer = mistral.chat.parse(
            response_format=Contact, model=CHAT, messages=ask(Contact),  # type: ignore[arg-type]
            max_tokens=200, temperature=0.5, random_seed=3,
        )  # fmt: skip
    choice = (answer.choices or [])[0]
    assert isinstance(choice.message.parsed, Contact)  # type: ignore[union-attr]
    assert_conforms(strict_schema(Contact), json.loads(str(choice.message.content)))  # type: ignore[union-attr]


@pytest.mark.model
def test_a_stream_with_a_schema_is_released_only_once_it_conforms(client: openai.OpenAI) -> None:
    schema = strict_schema(Contact)
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "contact", "schema": schema, "strict": True},
    }
    stream = client.chat.completions.create(
        model=CHAT, messages=ask(Contact), stream=True, max_tokens=200, seed=5,
        stream_options={"include_usage": True}, response_format=response_format,  # type: ignore[arg-type]
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert_conforms(schema, json.loads(text))
    assert [c for c in chunks if c.usage][-1].usage.completion_tokens > 0  # type: ignore[union-attr]


UNREACHABLE = {  # a multiple of 7919 below a million, as one integer: about 1 in 7919
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 999_999, "multipleOf": 7919}},
    "required": ["n"],
    "additionalProperties": False,
}


@pytest.mark.model
@pytest.mark.parametrize("stream", [False, True])
def test_a_constraint_the_grammar_cannot_hold_gives_a_conforming_answer_or_a_422(
    embedded: Server, stream: bool
) -> None:
    body = {
        "model": CHAT, "messages": [{"role": "user", "content": "A number?"}], "max_tokens": 20,
        "stream": stream, "temperature": 1.0,
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "n", "schema": UNREACHABLE, "strict": True}},
    }  # fmt: skip
    with embedded.client() as http:
        response = http.post("/v1/chat/completions", json=body)
    if response.status_code == 200:  # a conforming answer is allowed, never another one
        text = response.text if stream else response.json()["choices"][0]["message"]["content"]
        if stream:
            frames = [line[6:] for line in text.splitlines() if line.startswith("data: {")]
            text = "".join(
                (json.loads(f)["choices"] or [{}])[0].get("delta", {}).get("content") or ""
                for f in frames
            )
        assert_conforms(UNREACHABLE, json.loads(text))
        return
    assert response.status_code == 422, response.text  # before any byte of a stream
    error = response.json()["error"]
    assert error["code"] == "output_not_conforming"
    assert error["param"] == "response_format.json_schema.schema"
    assert "$.n" in error["message"] and "3 tries" in error["message"]


@pytest.mark.model
def test_an_answer_cut_by_max_tokens_is_refused_not_returned(client: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.parse(
            model=CHAT, messages=ask(Order), response_format=Order, max_tokens=5
        )
    assert caught.value.body["code"] == "output_not_conforming"  # type: ignore[index]
    assert caught.value.body["param"] == "max_tokens"  # type: ignore[index]


@pytest.mark.model
def test_an_invalid_schema_is_a_400_over_http(embedded: Server) -> None:
    body = {
        "model": CHAT, "messages": [{"role": "user", "content": "Hi"}],
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "decimal"}}}}},
    }  # fmt: skip
    with embedded.client() as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "response_format.json_schema.schema"
