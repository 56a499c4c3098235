"""llama-index (`OpenAILike`, `OpenAIEmbedding`) against Souverain, unchanged."""

from __future__ import annotations

import math

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai_like import OpenAILike
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


def llm(target: Target, *, chat: bool, max_tokens: int = 8) -> OpenAILike:
    return OpenAILike(
        model=target.chat,
        api_base=target.v1,
        api_key=target.key,
        max_tokens=max_tokens,
        is_chat_model=chat,
        is_function_calling_model=chat,
        context_window=4096,
        max_retries=0,
        temperature=0,
    )


def test_chat_and_stream_chat(target: Target) -> None:
    model = llm(target, chat=True)
    messages = [ChatMessage(role="user", content="What is the capital of France? One word.")]
    answer = model.chat(messages)
    assert (answer.message.content or "").strip()
    deltas = [part.delta or "" for part in model.stream_chat(messages)]
    assert "".join(deltas).strip()


def test_complete_and_stream_complete_use_the_legacy_endpoint(target: Target) -> None:
    # is_chat_model=False (OpenAILike's default) sends prompts to /v1/completions.
    model = llm(target, chat=False)
    answer = model.complete("The capital of France is")
    assert answer.text.strip()
    deltas = [part.delta or "" for part in model.stream_complete("Once upon a time")]
    assert "".join(deltas).strip()


def test_required_tool_call(target: Target) -> None:
    model = llm(target, chat=True, max_tokens=32)
    tool = FunctionTool.from_defaults(fn=get_weather)
    response = model.chat_with_tools(
        [tool], user_msg="What is the weather in Paris?", tool_required=True
    )
    calls = model.get_tool_calls_from_response(response, error_on_no_tool_call=True)
    assert [call.tool_name for call in calls] == ["get_weather"]
    assert isinstance(calls[0].tool_kwargs["city"], str)


def test_structured_predict(target: Target) -> None:
    model = llm(target, chat=True, max_tokens=64)
    answer = model.structured_predict(Answer, PromptTemplate("Is the sky {colour}?"), colour="blue")
    assert isinstance(answer, Answer)
    assert 0 <= answer.confidence <= 1


def test_openai_embedding_with_another_model_name(target: Target) -> None:
    # `model_name` lifts OpenAIEmbedding's check that the model is one of OpenAI's.
    embedding = OpenAIEmbedding(
        model_name=target.embed, api_base=target.v1, api_key=target.key, max_retries=0
    )
    vectors = embedding.get_text_embedding_batch(["Rechnung Nr. 42", "invoice number 42"])
    query = embedding.get_query_embedding("invoice")
    assert [len(vector) for vector in [*vectors, query]] == [target.dimensions] * 3
    assert all(math.isfinite(value) for value in query)
