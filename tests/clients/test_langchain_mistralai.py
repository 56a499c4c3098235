"""langchain-mistralai (`ChatMistralAI`, `MistralAIEmbeddings`) against Souverain, unchanged."""

from __future__ import annotations

import math

import pytest
from langchain_mistralai import ChatMistralAI, MistralAIEmbeddings
from pydantic import BaseModel, Field

from .conftest import Target

pytestmark = pytest.mark.model


class Answer(BaseModel):
    """A short answer with a confidence between 0 and 1."""

    answer: str = Field(max_length=60)
    confidence: float = Field(ge=0, le=1)


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def chat(target: Target, max_tokens: int) -> ChatMistralAI:
    # `endpoint` (alias base_url) ends in /v1, like Mistral's https://api.mistral.ai/v1.
    # (`.bind(max_tokens=…)` does not override the constructor's value in this client.)
    return ChatMistralAI(
        model=target.chat,
        endpoint=target.v1,
        api_key=target.key,  # type: ignore[arg-type]
        max_tokens=max_tokens,
        max_retries=0,
        temperature=0,
    )


def test_invoke_and_stream(target: Target) -> None:
    model = chat(target, 8)
    message = model.invoke("What is the capital of France? One word.")
    assert isinstance(message.content, str) and message.content.strip()
    assert message.usage_metadata is not None
    assert 0 < message.usage_metadata["output_tokens"] <= 8
    chunks = list(model.stream("Write a long story about a dragon."))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk  # type: ignore[assignment]
    assert isinstance(total.content, str) and total.content.strip()
    # langchain adds up the usage of every chunk: usage sent twice would read 16.
    assert total.usage_metadata is not None  # type: ignore[attr-defined]
    assert total.usage_metadata["output_tokens"] == 8  # type: ignore[attr-defined]


def test_tool_call_streamed_is_one_call(target: Target) -> None:
    # tool_choice "any" is Mistral's "required". langchain-mistralai turns each streamed
    # tool-call delta into a call of its own: fragments would become several broken calls.
    with_tools = chat(target, 32).bind_tools([get_weather], tool_choice="any")
    chunks = list(with_tools.stream("What is the weather in Paris?"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk  # type: ignore[assignment]
    calls = total.tool_calls  # type: ignore[attr-defined]
    assert [call["name"] for call in calls] == ["get_weather"]
    assert isinstance(calls[0]["args"]["city"], str)
    assert not total.invalid_tool_calls  # type: ignore[attr-defined]


def test_structured_output_through_a_tool(target: Target) -> None:
    # ChatMistralAI's default method is function_calling (a forced tool call).
    structured = chat(target, 64).with_structured_output(Answer)
    answer = structured.invoke("Is the sky blue? Answer with a confidence.")
    assert isinstance(answer, Answer)
    assert 0 <= answer.confidence <= 1


def test_embeddings(target: Target) -> None:
    embeddings = MistralAIEmbeddings(
        model=target.embed,
        endpoint=target.v1,
        api_key=target.key,
        max_retries=0,  # type: ignore[arg-type]
    )
    vectors = embeddings.embed_documents(["Rechnung Nr. 42", "invoice number 42"])
    query = embeddings.embed_query("invoice")
    assert [len(vector) for vector in [*vectors, query]] == [target.dimensions] * 3
    assert all(math.isfinite(value) for value in query)
