"""The `openai` and `mistral` engines against a real second server on loopback.

The upstream is the shared embedded Souverain (it speaks both shapes); a second
Souverain process in front of it is configured with `openai` and `mistral`
deployments only, so every answer here crossed a real HTTP hop.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from mistralai.client import Mistral

from .conftest import Server, free_port, start_server, stop_server

pytestmark = pytest.mark.model
LOCAL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def gateway(embedded: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    def deployment(engine: str, model: str, base: str | None = None) -> dict[str, object]:
        url = base or (embedded.v1 if engine == "openai" else embedded.url)
        return {"engine": engine, "base_url": url, "upstream_model": model,
                "api_key_env": "UPSTREAM_KEY", "connect_timeout_s": 1}  # fmt: skip

    config = {
        "models": [
            {"id": "via-openai", "deployments": [deployment("openai", LOCAL)]},
            {"id": "via-mistral", "deployments": [deployment("mistral", LOCAL)],
             "capabilities": {"completion_fim": True}},
            {"id": "embed-via-openai", "type": "embeddings",
             "deployments": [deployment("openai", "multilingual-e5-small")]},
            {"id": "embed-via-mistral", "type": "embeddings",
             "deployments": [deployment("mistral", "multilingual-e5-small")]},
            {"id": "with-failover",
             "deployments": [deployment("openai", LOCAL, base=dead + "/v1"),
                             deployment("mistral", LOCAL)]},
            {"id": "all-down", "deployments": [deployment("openai", LOCAL, base=dead + "/v1")]},
        ]
    }  # fmt: skip
    server = start_server(
        tmp_path_factory.mktemp("gateway"),
        config,
        env={"UPSTREAM_KEY": embedded.key},
        key="sk-sv-gateway0" + "g" * 32,
    )
    yield server
    stop_server(server)


QUESTION = [{"role": "user", "content": "What is the capital of Germany? One word."}]


@pytest.mark.parametrize("model", ["via-openai", "via-mistral"])
def test_chat_through_an_upstream_matches_the_upstream(
    gateway: Server, embedded: Server, model: str
) -> None:
    direct = openai.OpenAI(base_url=embedded.v1, api_key=embedded.key).chat.completions.create(
        model=LOCAL, messages=QUESTION, max_tokens=12, temperature=0, seed=3
    )
    relayed = openai.OpenAI(base_url=gateway.v1, api_key=gateway.key).chat.completions.create(
        model=model, messages=QUESTION, max_tokens=12, temperature=0, seed=3
    )
    assert relayed.model == model
    assert relayed.choices[0].message.content == direct.choices[0].message.content
    assert relayed.usage is not None and direct.usage is not None
    assert relayed.usage.prompt_tokens == direct.usage.prompt_tokens


@pytest.mark.parametrize("model", ["via-openai", "via-mistral"])
def test_streaming_through_an_upstream(gateway: Server, embedded: Server, model: str) -> None:
    direct = openai.OpenAI(base_url=embedded.v1, api_key=embedded.key).chat.completions.create(
        model=LOCAL, messages=QUESTION, max_tokens=12, temperature=0, seed=3
    )
    stream = openai.OpenAI(base_url=gateway.v1, api_key=gateway.key).chat.completions.create(
        model=model, messages=QUESTION, max_tokens=12, temperature=0, seed=3, stream=True
    )
    chunks = list(stream)
    assert len(chunks) >= 3  # passed through chunk by chunk, not buffered into one
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks)
        == direct.choices[0].message.content
    )
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_mistral_sdk_through_the_mistral_engine(gateway: Server) -> None:
    client = Mistral(api_key=gateway.key, server_url=gateway.url)
    answer = client.chat.complete(model="via-mistral", messages=QUESTION, max_tokens=12)
    assert answer.choices[0].message.content
    events = list(client.chat.stream(model="via-mistral", messages=QUESTION, max_tokens=12))
    assert events[-1].data.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("model", ["embed-via-openai", "embed-via-mistral"])
def test_embeddings_through_an_upstream(gateway: Server, embedded: Server, model: str) -> None:
    texts = ["Rechnung Nr. 42", "facture numéro 42"]
    direct = openai.OpenAI(base_url=embedded.v1, api_key=embedded.key).embeddings.create(
        model="multilingual-e5-small", input=texts
    )
    relayed = openai.OpenAI(base_url=gateway.v1, api_key=gateway.key).embeddings.create(
        model=model, input=texts
    )
    for a, b in zip(direct.data, relayed.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-5)
    assert relayed.usage.prompt_tokens == direct.usage.prompt_tokens


def test_failover_to_the_next_deployment(gateway: Server) -> None:
    client = openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0)
    answer = client.chat.completions.create(model="with-failover", messages=QUESTION, max_tokens=5)
    assert answer.choices[0].message.content
    raw = client.chat.completions.with_raw_response.create(
        model="with-failover", messages=QUESTION, max_tokens=5
    )
    stream = client.chat.completions.create(
        model="with-failover", messages=QUESTION, max_tokens=5, stream=True
    )
    assert list(stream)[-1].choices[0].finish_reason is not None
    assert raw.headers["x-souverain-deployment"].endswith("@mistral")


def test_unreachable_upstream_is_503(gateway: Server) -> None:
    with gateway.client() as client:
        for stream in (False, True):
            response = client.post(
                "/v1/chat/completions",
                json={"model": "all-down", "messages": QUESTION, "stream": stream},
            )
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"]
            assert response.json()["error"]["type"] == "service_unavailable"


def test_upstream_validation_error_is_passed_on_as_400(gateway: Server) -> None:
    too_long = [{"role": "user", "content": "mot " * 12000}]  # past the 8,192-token context
    with gateway.client() as client:
        response = client.post(
            "/v1/chat/completions", json={"model": "via-openai", "messages": too_long}
        )
    assert response.status_code == 400
    assert "context length" in response.json()["error"]["message"]


def test_fim_through_the_mistral_engine_reaches_the_upstream(gateway: Server) -> None:
    # The upstream's model has no FIM tokens, so the upstream refuses: the refusal
    # must come back as a clean 400 from the upstream, proving the call went through.
    with gateway.client() as client:
        response = client.post(
            "/v1/fim/completions", json={"model": "via-mistral", "prompt": "def f(", "suffix": ")"}
        )
    assert response.status_code == 400
    assert "fill-in-the-middle" in response.json()["error"]["message"]
    assert isinstance(httpx.get(gateway.url + "/healthz").json(), dict)
