"""pydantic-ai agents (Chat Completions and Responses models) against Souverain, unchanged."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field
from pydantic_ai import Agent, NativeOutput, ToolOutput
from pydantic_ai.models import Model
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.settings import ModelSettings

from .conftest import Target

pytestmark = pytest.mark.model


class Answer(BaseModel):
    answer: str = Field(max_length=60)
    confidence: float = Field(ge=0, le=1)


@pytest.fixture(params=["chat", "responses"])
def model(request: pytest.FixtureRequest, target: Target) -> Model:
    # A custom base_url goes through the provider; the model class picks the API.
    provider = OpenAIProvider(base_url=target.v1, api_key=target.key)
    if request.param == "chat":
        return OpenAIChatModel(target.chat, provider=provider)
    return OpenAIResponsesModel(target.chat, provider=provider)


def limits(max_tokens: int) -> ModelSettings:
    return ModelSettings(max_tokens=max_tokens, temperature=0)


async def test_run_stream_counts_usage_once(model: Model) -> None:
    agent = Agent(model, model_settings=limits(8))
    async with agent.run_stream("Write a long story about a dragon.") as result:
        text = "".join([delta async for delta in result.stream_text(delta=True)])
    assert text.strip()
    # pydantic-ai adds up the usage of every chunk: usage sent twice would read 16.
    assert result.usage.output_tokens == 8  # a property on streamed results


async def test_output_function_is_called_as_a_tool(model: Model) -> None:
    cities: list[str] = []

    def record_city(city: str) -> str:
        """Record the city the user asked about."""
        cities.append(city)
        return city

    agent = Agent(model, output_type=ToolOutput(record_city), model_settings=limits(64))
    result = await agent.run("What is the weather in Paris?")
    assert cities and isinstance(cities[0], str)
    assert result.output == cities[-1]


async def test_structured_output(model: Model) -> None:
    # Chat model: pydantic-ai's default tool output (a forced tool call). Responses model:
    # NativeOutput, i.e. `text.format` json_schema.
    native = isinstance(model, OpenAIResponsesModel)
    output_type = NativeOutput(Answer) if native else Answer
    agent = Agent(model, output_type=output_type, model_settings=limits(64), retries=0)
    result = await agent.run("Is the sky blue? Answer with a confidence.")
    assert isinstance(result.output, Answer)
    assert 0 <= result.output.confidence <= 1
