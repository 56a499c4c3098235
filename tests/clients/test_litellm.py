"""litellm used as an SDK (`completion`, `acompletion`, `text_completion`, `embedding`)."""

from __future__ import annotations

import json
import math
from typing import Any

import litellm
import pytest
from pydantic import BaseModel, Field

from .conftest import Target

pytestmark = pytest.mark.model

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


class Answer(BaseModel):
    answer: str = Field(max_length=60)
    confidence: float = Field(ge=0, le=1)


def settings(target: Target, **extra: Any) -> dict[str, Any]:
    # The `openai/` prefix selects litellm's OpenAI-compatible provider for any model name.
    return {
        "model": f"openai/{target.chat}",
        "api_base": target.v1,
        "api_key": target.key,
        "num_retries": 0,
        "max_tokens": 8,
        **extra,
    }


MESSAGES = [{"role": "user", "content": "What is the capital of France? One word."}]


def test_completion(target: Target) -> None:
    response = litellm.completion(messages=MESSAGES, **settings(target))
    assert response.choices[0].message.content.strip()
    assert 0 < response.usage.completion_tokens <= 8


async def test_acompletion_streamed_with_usage(target: Target) -> None:
    stream = await litellm.acompletion(
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        stream=True,
        stream_options={"include_usage": True},
        **settings(target),
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.strip()
    rebuilt = litellm.stream_chunk_builder(chunks)
    assert rebuilt is not None
    assert rebuilt.usage.completion_tokens == 8  # type: ignore[union-attr]


def test_named_tool_call_streamed(target: Target) -> None:
    response = litellm.completion(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
        **settings(target, max_tokens=32),
    )
    chunks = list(response)
    # Every streamed tool-call delta names its function and carries its id.
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            assert call.id and call.function.name == "get_weather"
    response = litellm.stream_chunk_builder(chunks)
    calls = response.choices[0].message.tool_calls  # type: ignore[union-attr]
    assert [call.function.name for call in calls] == ["get_weather"]
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)


def test_structured_output_from_a_pydantic_model(target: Target) -> None:
    response = litellm.completion(
        messages=[{"role": "user", "content": "Is the sky blue?"}],
        response_format=Answer,
        **settings(target, max_tokens=64),
    )
    answer = Answer.model_validate_json(response.choices[0].message.content)
    assert 0 <= answer.confidence <= 1


def test_text_completion(target: Target) -> None:
    # The `text-completion-openai/` prefix sends the prompt to /v1/completions.
    response = litellm.text_completion(
        prompt="The capital of France is",
        **settings(target, model=f"text-completion-openai/{target.chat}"),
    )
    assert response.choices[0].text.strip()


def test_embedding(target: Target) -> None:
    response = litellm.embedding(
        model=f"openai/{target.embed}",
        input=["Rechnung Nr. 42", "invoice"],
        api_base=target.v1,
        api_key=target.key,
        num_retries=0,
    )
    vectors = [row["embedding"] for row in response.data]
    assert [len(vector) for vector in vectors] == [target.dimensions] * 2
    assert all(math.isfinite(value) for value in vectors[0])
