"""Bad input gets a clear error in the OpenAI/Mistral shape with the right status."""

from __future__ import annotations

import httpx
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from .conftest import Server

pytestmark = pytest.mark.model
CHAT = "smollm2-135m-instruct"


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error  # type: ignore[no-any-return]


def chat_body(**extra: object) -> dict[str, object]:
    return {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4,
        **extra,
    }


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sk-sv-wrong"}, {"Authorization": "Basic abc"},
     {"Authorization": "Bearer " + "sk-sv-test0000" + "x" * 32}],
)  # fmt: skip
def test_401_without_a_valid_key(embedded: Server, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]:
        response = httpx.request(method, embedded.url + path, headers=headers, json=chat_body())
        error = assert_error_shape(response, 401)
        assert error["type"] == "authentication_error"
        assert error["message"] == "missing or invalid API key"  # no hint of which


def test_401_through_both_sdks(embedded: Server) -> None:
    client = openai.OpenAI(base_url=embedded.v1, api_key="sk-sv-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    with pytest.raises(SDKError) as caught:
        Mistral(api_key="sk-sv-nope", server_url=embedded.url).models.list()
    assert caught.value.status_code == 401


def test_404_unknown_model(embedded: Server) -> None:
    client = openai.OpenAI(base_url=embedded.v1, api_key=embedded.key, max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-5")
    with pytest.raises(SDKError) as mistral_caught:
        Mistral(api_key=embedded.key, server_url=embedded.url).embeddings.create(
            model="nope", inputs=["x"]
        )
    assert mistral_caught.value.status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat_body(temperature=5), "temperature"),
        (chat_body(max_tokens=0), "max_tokens"),
        ({"model": CHAT, "messages": []}, "messages"),
        ({"model": CHAT}, "messages"),
        ({"model": CHAT, "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        (chat_body(n=3), "n"),
        (chat_body(response_format={"type": "json_schema"}), "response_format"),
    ],
)
def test_400_invalid_fields(embedded: Server, body: dict[str, object], param: str) -> None:
    with embedded.client() as client:
        error = assert_error_shape(client.post("/v1/chat/completions", json=body), 400)
    assert error["type"] == "invalid_request_error"
    assert str(error["param"]).startswith(param)


def test_400_through_the_openai_sdk(embedded: Server) -> None:
    client = openai.OpenAI(base_url=embedded.v1, api_key=embedded.key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=[], max_tokens=3)
    assert caught.value.param == "messages"


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b"\xff\xfe"])
def test_400_malformed_json(embedded: Server, raw: bytes) -> None:
    with embedded.client() as client:
        response = client.post(
            "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
        )
    assert_error_shape(response, 400)


def test_413_body_over_the_limit(embedded: Server) -> None:
    huge = "x" * (9 * 1024 * 1024)
    with embedded.client() as client:
        assert_error_shape(client.post("/v1/chat/completions", json=chat_body(user=huge)), 413)

        def chunks():  # no Content-Length: the limit must hold on the stream too
            for _ in range(10):
                yield b"x" * (1024 * 1024)

        response = client.post("/v1/embeddings", content=chunks())
        assert_error_shape(response, 413)


def test_a_tool_choice_naming_no_offered_tool_is_refused_clearly(embedded: Server) -> None:
    # The local engine calls tools since issue 13; a choice it cannot honour is a 400.
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object"}},
    }
    choice = {"type": "function", "function": {"name": "get_time"}}
    with embedded.client() as client:
        body = chat_body(tools=[tool], tool_choice=choice)
        error = assert_error_shape(client.post("/v1/chat/completions", json=body), 400)
    assert error["param"] == "tool_choice"
    assert "get_time" in str(error["message"])


def test_image_content_on_a_text_model(embedded: Server) -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                           {"type": "image_url", "image_url": {"url": "data:,"}}]}  # fmt: skip
    with embedded.client() as client:
        body = {"model": CHAT, "messages": [message]}
        error = assert_error_shape(client.post("/v1/chat/completions", json=body), 400)
    assert "image_url" in str(error["message"])


def test_prompt_longer_than_the_context(embedded: Server) -> None:
    long_text = "Souveraineté numérique. " * 3000  # well over 4,096 tokens
    for stream in (False, True):
        with embedded.client() as client:
            response = client.post(
                "/v1/chat/completions",
                json={"model": CHAT, "messages": [{"role": "user", "content": long_text}],
                      "stream": stream},
            )  # fmt: skip
        error = assert_error_shape(response, 400)
        assert error["code"] == "context_length_exceeded"
        assert "maximum context length" in str(error["message"])


def test_wrong_kind_of_model(embedded: Server) -> None:
    with embedded.client() as client:
        response = client.post(
            "/v1/chat/completions", json=chat_body(model="multilingual-e5-small")
        )
        assert_error_shape(response, 400)
        response = client.post("/v1/embeddings", json={"model": CHAT, "input": "x"})
        assert_error_shape(response, 400)
        response = client.post(
            "/v1/embeddings", json={"model": "multilingual-e5-small", "input": []}
        )
        assert_error_shape(response, 400)


def test_unknown_route_and_method(embedded: Server) -> None:
    with embedded.client() as client:
        assert_error_shape(client.get("/v1/nothing-here"), 404)
        assert_error_shape(client.get("/v1/chat/completions"), 405)


def test_health_and_metrics(embedded: Server) -> None:
    assert httpx.get(embedded.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(embedded.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["store"] is True
    with embedded.client() as client:
        client.post("/v1/chat/completions", json=chat_body())
    text = httpx.get(embedded.url + "/metrics").text
    assert (
        'souverain_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}'
        in text
    )
    assert "souverain_http_request_duration_seconds_bucket" in text
    assert f'souverain_tokens_total{{kind="completion",model="{CHAT}"}}' in text
    assert "souverain_queue_depth" in text


def test_metrics_name_the_legacy_completions_and_responses_routes(embedded: Server) -> None:
    with embedded.client() as client:  # 400s: the route is what counts, not the answer
        client.post("/v1/completions", json={"model": CHAT})
        client.get("/v1/responses/resp_nothing")
    text = httpx.get(embedded.url + "/metrics").text
    assert 'method="POST",route="/v1/completions",status="400"' in text
    assert 'method="GET",route="/v1/responses/{id}",status="404"' in text


def test_embeddings_input_limits(embedded: Server) -> None:
    with embedded.client() as client:
        too_long = {"model": "multilingual-e5-small", "input": ["mot " * 600]}
        error = assert_error_shape(client.post("/v1/embeddings", json=too_long), 400)
        assert error["code"] == "context_length_exceeded"
        empty = {"model": "multilingual-e5-small", "input": ["ok", ""]}
        assert (
            assert_error_shape(client.post("/v1/embeddings", json=empty), 400)["param"] == "input"
        )
        tokens = {"model": "multilingual-e5-small", "input": [[1, 2, -3]]}  # ids: cl100k
        assert_error_shape(client.post("/v1/embeddings", json=tokens), 400)
        wrong_type = {"model": "multilingual-e5-small", "input": "x", "input_type": "poem"}
        assert (
            assert_error_shape(client.post("/v1/embeddings", json=wrong_type), 400)["param"]
            == "input_type"
        )


def test_embeddings_input_type_changes_the_prefix(embedded: Server) -> None:
    with embedded.client() as client:

        def embed(input_type: str) -> list[float]:
            body = {"model": "multilingual-e5-small", "input": "Rechnung", "input_type": input_type,
                    "encoding_format": "float"}  # fmt: skip
            return client.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]  # type: ignore[no-any-return]

        assert embed("query") != embed("passage")
        assert embed("passage") == embed("document")
