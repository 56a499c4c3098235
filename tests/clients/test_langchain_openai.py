"""langchain-openai (`ChatOpenAI`, `OpenAIEmbeddings`) against Souverain, unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
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


def chat(target: Target, max_tokens: int) -> ChatOpenAI:
    return ChatOpenAI(
        model=target.chat,
        base_url=target.v1,
        api_key=target.key,  # type: ignore[arg-type]
        max_tokens=max_tokens,  # sent as max_completion_tokens
        max_retries=0,
        temperature=0,
        stream_usage=True,
    )


def test_invoke_and_stream_add_up_to_the_real_usage(target: Target) -> None:
    model = chat(target, 8)
    message = model.invoke("What is the capital of France? One word.")
    assert isinstance(message.content, str) and message.content.strip()
    assert message.usage_metadata is not None
    assert 0 < message.usage_metadata["output_tokens"] <= 8
    chunks = list(model.stream("Write a long story about a dragon."))
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk  # type: ignore[assignment]
    assert isinstance(total.content, str) and total.content.strip()
    # langchain sums the usage of every chunk: usage sent twice would read 16 of 8 tokens.
    assert total.usage_metadata is not None  # type: ignore[attr-defined]
    assert total.usage_metadata["output_tokens"] == 8  # type: ignore[attr-defined]


def test_streamed_tool_call_arrives_whole(target: Target) -> None:
    with_tools = chat(target, 32).bind_tools([get_weather], tool_choice="get_weather")
    chunks = list(with_tools.stream("What is the weather in Paris?"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk  # type: ignore[assignment]
    calls = total.tool_calls  # type: ignore[attr-defined]
    assert [call["name"] for call in calls] == ["get_weather"]
    assert isinstance(calls[0]["args"]["city"], str)
    assert calls[0]["id"]


def test_structured_output_with_json_schema(target: Target) -> None:
    # with_structured_output's default method in langchain-openai 1.x is json_schema.
    structured = chat(target, 64).with_structured_output(Answer)
    answer = structured.invoke("Is the sky blue? Answer with a confidence.")
    assert isinstance(answer, Answer)
    assert 0 <= answer.confidence <= 1


def test_embeddings_with_default_settings(target: Target, tiktoken_cache: Path) -> None:
    # Defaults: tiktoken splits the text and the request carries cl100k token ids.
    embeddings = OpenAIEmbeddings(
        model=target.embed,
        base_url=target.v1,
        api_key=target.key,
        max_retries=0,  # type: ignore[arg-type]
    )
    vectors = embeddings.embed_documents(["Rechnung Nr. 42", "invoice number 42"])
    query = embeddings.embed_query("invoice")
    assert [len(vector) for vector in [*vectors, query]] == [target.dimensions] * 3
    assert all(math.isfinite(value) for value in query)
    raw = OpenAIEmbeddings(
        model=target.embed,
        base_url=target.v1,
        api_key=target.key,  # type: ignore[arg-type]
        max_retries=0,
        check_embedding_ctx_length=False,
    ).embed_query("invoice")
    # Token ids and plain text are the same input: the same vector, give or take rounding.
    assert max(abs(a - b) for a, b in zip(raw, query, strict=True)) < 1e-3
