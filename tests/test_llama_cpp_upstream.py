"""The `openai` engine against a server we did not write: llama.cpp's Python server.

It has its quirks (FACTS.md): no usage when streaming, 500 on bad JSON, models without
`type`. Souverain must smooth them over for its own clients. The server and the gateway
relaying to it (`llama_gateway`, model `small`) are the session's shared ones (conftest.py).
"""

from __future__ import annotations

import openai
import pytest
from mistralai.client import Mistral

from .conftest import Server

pytestmark = pytest.mark.model


def test_models_parse_in_the_mistral_sdk_even_if_the_upstream_lacks_type(
    llama_gateway: Server,
) -> None:
    models = Mistral(api_key=llama_gateway.key, server_url=llama_gateway.url).models.list()
    assert [m.id for m in models.data or []] == ["small"]


def test_chat_and_stream(llama_gateway: Server) -> None:
    client = openai.OpenAI(base_url=llama_gateway.v1, api_key=llama_gateway.key, max_retries=0)
    messages = [{"role": "user", "content": "Name a fruit."}]
    answer = client.chat.completions.create(model="small", messages=messages, max_tokens=8)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    chunks = list(
        client.chat.completions.create(model="small", messages=messages, max_tokens=8, stream=True)  # type: ignore[arg-type]
    )
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    # The upstream sends no usage when streaming: Souverain still reports an estimate.
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_fim_through_the_completions_endpoint(llama_gateway: Server) -> None:
    client = Mistral(api_key=llama_gateway.key, server_url=llama_gateway.url)
    answer = client.fim.complete(
        model="small", prompt="def add(a, b):\n    return", suffix="\n", max_tokens=8
    )
    assert answer.choices[0].message.content
    events = list(client.fim.stream(model="small", prompt="The capital of France is", max_tokens=5))
    assert events[-1].data.choices[0].finish_reason in ("stop", "length")


def test_empty_messages_are_refused_here_not_passed_on(llama_gateway: Server) -> None:
    # llama.cpp's server accepts an empty list; Souverain refuses it before any byte leaves.
    with llama_gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "small", "messages": []})
    assert response.status_code == 400
