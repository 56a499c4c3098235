"""The official openai SDK against the embedded server, unchanged but for the base URL."""

from __future__ import annotations

import json
import math

import openai
import pytest

from .conftest import Server

pytestmark = pytest.mark.model
CHAT = "smollm2-135m-instruct"
EMBED = "multilingual-e5-small"


@pytest.fixture(scope="module")
def client(embedded: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=embedded.v1, api_key=embedded.key, max_retries=0)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {CHAT, EMBED} <= ids
    model = client.models.retrieve(CHAT)
    assert model.id == CHAT
    assert model.owned_by


def test_alias_resolves_to_the_model(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=5
    )
    assert answer.model == CHAT


def test_chat_completion(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=CHAT,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France? Answer in one word."},
        ],
        max_tokens=20,
        temperature=0,
    )
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert "paris" in (choice.message.content or "").lower()
    assert choice.finish_reason in ("stop", "length")
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 10
    assert 0 < answer.usage.completion_tokens <= 20
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_max_tokens_is_honoured(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_tokens=7,
    )
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 7


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    def sample() -> str | None:
        return (
            client.chat.completions.create(
                model=CHAT,
                messages=[{"role": "user", "content": "Name a colour."}],
                max_tokens=12,
                temperature=1.0,
                seed=1234,
            )
            .choices[0]
            .message.content
        )

    assert sample() == sample()


def test_stop_sequence(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        max_tokens=40,
        temperature=0,
        stop=["5"],
    )
    content = answer.choices[0].message.content or ""
    assert "5" not in content and "6" not in content
    assert answer.choices[0].finish_reason == "stop"


def test_streaming_shape(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Say hello to Marie."}],
        max_tokens=16,
        stream=True,
    )
    chunks = list(stream)
    assert len(chunks) >= 2
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({chunk.id for chunk in chunks}) == 1
    # finish_reason is null on every chunk but the last, which carries usage too.
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.choices[0].finish_reason in ("stop", "length")
    assert last.usage is not None and last.usage.completion_tokens > 0
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text.strip()


def test_streaming_usage_chunk_only_when_asked(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert chunks[-2].choices[0].finish_reason is not None


def test_json_object_mode_parses(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=CHAT,
        messages=[
            {"role": "system", "content": "You reply with JSON only."},
            {
                "role": "user",
                "content": "Return a JSON object with the keys name and color for a cat.",
            },
        ],
        response_format={"type": "json_object"},
        max_tokens=200,
        temperature=0,
    )
    assert answer.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(answer.choices[0].message.content or ""), dict)


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "city": {"type": "string", "enum": ["Paris", "Berlin", "Rome"]},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_is_enforced(client: openai.OpenAI, stream: bool) -> None:
    request = dict(
        model=CHAT,
        messages=[{"role": "user", "content": "Invent a person who lives in Europe."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON, "strict": True},
        },
        max_tokens=120,
        temperature=0.8,
    )
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **request))  # type: ignore[call-overload]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(**request).choices[0].message.content or ""  # type: ignore[call-overload]
    person = json.loads(text)
    assert set(person) == {"name", "age", "city"}
    assert isinstance(person["name"], str) and len(person["name"]) <= 24
    assert isinstance(person["age"], int) and 0 <= person["age"] <= 130
    assert person["city"] in ("Paris", "Berlin", "Rome")


def test_embeddings_default_base64_and_float(client: openai.OpenAI) -> None:
    # The openai SDK asks for base64 by default and decodes it.
    texts = [
        "Le chat dort sur le canapé.",
        "Die Katze schläft auf dem Sofa.",
        "Quarterly VAT return",
    ]
    result = client.embeddings.create(model=EMBED, input=texts)
    vectors = [item.embedding for item in result.data]
    assert [item.index for item in result.data] == [0, 1, 2]
    assert all(len(v) == 384 for v in vectors)
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-3) for v in vectors)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    # The French and German sentences mean the same; the third is unrelated.
    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2]) + 0.05
    assert result.usage.prompt_tokens > 10

    as_float = client.embeddings.create(model=EMBED, input=texts[0], encoding_format="float")
    assert as_float.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)


def test_json_schema_bounds_are_enforced_not_refused(client: openai.OpenAI) -> None:
    # Issue 13 item 5: pydantic's Field(ge=0) is everyday structured output; it was a 400.
    schema = {"type": "object", "properties": {"price": {"type": "number", "minimum": 0}},
              "required": ["price"], "additionalProperties": False}  # fmt: skip
    answer = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "A price?"}],
        max_tokens=40,
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
    )
    price = json.loads(answer.choices[0].message.content or "")["price"]
    assert isinstance(price, int | float) and price >= 0
