"""The official mistralai SDK against the embedded server, unchanged but for the URL."""

from __future__ import annotations

import json

import pytest
from mistralai.client import Mistral

from .conftest import Server

pytestmark = pytest.mark.model
CHAT = "smollm2-135m-instruct"
EMBED = "multilingual-e5-small"


@pytest.fixture(scope="module")
def client(embedded: Server) -> Mistral:
    return Mistral(api_key=embedded.key, server_url=embedded.url)


def test_models(client: Mistral) -> None:
    listed = client.models.list()
    by_id = {model.id: model for model in listed.data or []}
    assert by_id[CHAT].capabilities.completion_chat is True
    assert by_id[EMBED].capabilities.completion_chat is False
    assert by_id[CHAT].max_context_length >= 2048
    one = client.models.retrieve(model_id=CHAT)
    assert one.id == CHAT


def test_chat_complete(client: Mistral) -> None:
    answer = client.chat.complete(
        model=CHAT,
        messages=[{"role": "user", "content": "What is the capital of Italy? One word."}],
        max_tokens=16,
        temperature=0,
        random_seed=7,
    )
    assert answer.choices[0].message.content
    assert "rome" in str(answer.choices[0].message.content).lower()
    assert answer.usage.completion_tokens > 0


def test_chat_stream(client: Mistral) -> None:
    events = list(
        client.chat.stream(
            model=CHAT, messages=[{"role": "user", "content": "Say bonjour."}], max_tokens=12
        )
    )
    chunks = [event.data for event in events]
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks[:-1])
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert "".join(str(c.choices[0].delta.content or "") for c in chunks).strip()


def test_chat_json_schema(client: Mistral) -> None:
    schema = {
        "type": "object",
        "properties": {"invoice_number": {"type": "string", "maxLength": 12},
                       "total_eur": {"type": "number"}},
        "required": ["invoice_number", "total_eur"],
        "additionalProperties": False,
    }  # fmt: skip
    answer = client.chat.complete(
        model=CHAT,
        messages=[{"role": "user", "content": "Invoice F-2026-118, total 1 240,50 EUR. Extract."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "invoice", "schema": schema, "strict": True},
        },
        max_tokens=120,
        temperature=0,
        random_seed=1,
    )
    data = json.loads(str(answer.choices[0].message.content))
    assert set(data) == {"invoice_number", "total_eur"}
    assert isinstance(data["total_eur"], int | float)


def test_embeddings(client: Mistral) -> None:
    result = client.embeddings.create(model=EMBED, inputs=["Bonjour", "Guten Tag"])
    assert result.id
    assert len(result.data) == 2
    assert len(result.data[0].embedding or []) == 384
    assert result.usage.prompt_tokens and result.usage.prompt_tokens > 0
