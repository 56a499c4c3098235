"""The openai SDK's Responses API (`client.responses`) against Souverain, unchanged."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel, Field

from .conftest import Target

pytestmark = pytest.mark.model

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


class City(BaseModel):
    name: str = Field(max_length=40)
    population: int = Field(ge=0)


@pytest.fixture(scope="module")
def client(target: Target) -> openai.OpenAI:
    return openai.OpenAI(base_url=target.v1, api_key=target.key, max_retries=0)


def test_text_input_with_instructions(client: openai.OpenAI, target: Target) -> None:
    response = client.responses.create(
        model=target.chat,
        instructions="Answer in one word.",
        input="What is the capital of France?",
        max_output_tokens=16,
        temperature=0,
    )
    assert response.status in ("completed", "incomplete")
    assert response.output_text.strip()
    assert response.usage is not None
    assert 0 < response.usage.output_tokens <= 16
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_stream_has_typed_events_and_one_usage(client: openai.OpenAI, target: Target) -> None:
    events = list(
        client.responses.create(
            model=target.chat,
            input=[{"role": "user", "content": "Name a fruit."}],
            max_output_tokens=16,
            stream=True,
        )
    )
    types = [event.type for event in events]
    assert types[0] == "response.created"
    # Completed, or incomplete when the 16 tokens cut the answer (as OpenAI ends it).
    assert types[-1] in ("response.completed", "response.incomplete")
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert deltas
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "".join(deltas)
    assert final.usage is not None and 0 < final.usage.output_tokens <= 16


def test_function_tool_call_has_parsable_arguments(client: openai.OpenAI, target: Target) -> None:
    response = client.responses.create(
        model=target.chat,
        input="What is the weather in Paris?",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=64,
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].call_id
    assert isinstance(json.loads(calls[0].arguments)["city"], str)
    # The tool's answer goes back as a function_call_output, and the model answers in text.
    follow_up = client.responses.create(
        model=target.chat,
        previous_response_id=response.id,
        input=[
            {
                "type": "function_call_output",
                "call_id": calls[0].call_id,
                "output": '{"temperature_c": 21}',
            }
        ],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="none",
        max_output_tokens=16,
    )
    assert follow_up.output_text.strip()


def test_structured_output_with_parse(client: openai.OpenAI, target: Target) -> None:
    response = client.responses.parse(
        model=target.chat,
        input="Describe the city of Lyon.",
        text_format=City,
        max_output_tokens=64,
    )
    city = response.output_parsed
    assert isinstance(city, City)
    assert city.population >= 0 and len(city.name) <= 40


def test_previous_response_id_carries_the_conversation(
    client: openai.OpenAI, target: Target
) -> None:
    first = client.responses.create(
        model=target.chat, input="My name is Ada.", max_output_tokens=16, store=True
    )
    assert client.responses.retrieve(first.id).id == first.id
    second = client.responses.create(
        model=target.chat,
        previous_response_id=first.id,
        input="What is my name?",
        max_output_tokens=16,
    )
    assert second.previous_response_id == first.id
    # The earlier turn is part of the prompt: the second prompt is longer than its own text.
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens
