"""openai-agents (`Agent` + `Runner`) on Chat Completions and on Responses, against Souverain.

Tracing is off (`set_tracing_disabled`), so nothing is sent to OpenAI's trace service.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIProvider,
    RunConfig,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI
from pydantic import BaseModel, Field

from .conftest import Target

pytestmark = pytest.mark.model


class Answer(BaseModel):
    answer: str = Field(max_length=60)
    confidence: float = Field(ge=0, le=1)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.fixture(scope="module", autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)
    yield


@pytest.fixture(params=["chat-completions", "responses"])
def setup(request: pytest.FixtureRequest, target: Target) -> tuple[object, RunConfig]:
    """An agent's model and run config for one API: the chat model explicitly, or the
    default (Responses) model through a provider that points at Souverain."""
    client = AsyncOpenAI(base_url=target.v1, api_key=target.key, max_retries=0)
    if request.param == "chat-completions":
        return OpenAIChatCompletionsModel(model=target.chat, openai_client=client), RunConfig()
    provider = OpenAIProvider(openai_client=client, use_responses=True)
    return target.chat, RunConfig(model_provider=provider)


def agent(setup: tuple[object, RunConfig], max_tokens: int, **extra: object) -> Agent:  # type: ignore[type-arg]
    model, _ = setup
    settings = ModelSettings(max_tokens=max_tokens, temperature=0)
    return Agent(
        name="helper",
        instructions="Be brief.",
        model=model,  # type: ignore[arg-type]
        model_settings=settings,
        **extra,
    )  # type: ignore[arg-type]


async def test_run_streamed(setup: tuple[object, RunConfig]) -> None:
    # On Responses, openai-agents fails a run whose answer hits max_output_tokens
    # (`response.incomplete` is terminal for it): leave room for a whole short answer.
    budget = 8 if isinstance(setup[0], OpenAIChatCompletionsModel) else 64
    prompt = "Reply with one word: name a fruit."
    result = Runner.run_streamed(agent(setup, budget), prompt, run_config=setup[1])
    kinds = {event.type async for event in result.stream_events()}
    assert "raw_response_event" in kinds
    assert isinstance(result.final_output, str) and result.final_output.strip()
    assert 0 < result.context_wrapper.usage.output_tokens <= budget


async def test_required_function_tool_runs(setup: tuple[object, RunConfig]) -> None:
    helper = agent(setup, 32, tools=[get_weather], tool_use_behavior="stop_on_first_tool")
    helper.model_settings = helper.model_settings.resolve(ModelSettings(tool_choice="required"))
    result = await Runner.run(helper, "What is the weather in Paris?", run_config=setup[1])
    assert isinstance(result.final_output, str) and result.final_output.startswith("sunny in ")


async def test_structured_output(setup: tuple[object, RunConfig]) -> None:
    helper = agent(setup, 64, output_type=Answer)
    result = await Runner.run(helper, "Is the sky blue?", run_config=setup[1])
    assert isinstance(result.final_output, Answer)
    assert 0 <= result.final_output.confidence <= 1
