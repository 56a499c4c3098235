"""The `openai` engine against a server we did not write: llama.cpp's Python server.

It has its quirks (FACTS.md): no usage when streaming, 500 on bad JSON, models without
`type`. Souverain must smooth them over for its own clients.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from mistralai.client import Mistral

from souverain.backends.local_llama import embedded_gguf_path

from .conftest import Server, free_port, start_server, stop_server

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()),
         "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "1"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(log.read_text())
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def gateway(llama_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    deployment = {"engine": "openai", "base_url": llama_server + "/v1", "upstream_model": "smollm2"}
    config = {"models": [{"id": "small", "deployments": [deployment],
                          "capabilities": {"completion_fim": True, "function_calling": False}}]}  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("gw-llama"), config)
    yield server
    stop_server(server)


def test_models_parse_in_the_mistral_sdk_even_if_the_upstream_lacks_type(gateway: Server) -> None:
    models = Mistral(api_key=gateway.key, server_url=gateway.url).models.list()
    assert [m.id for m in models.data or []] == ["small"]


def test_chat_and_stream(gateway: Server) -> None:
    client = openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0)
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


def test_fim_through_the_completions_endpoint(gateway: Server) -> None:
    client = Mistral(api_key=gateway.key, server_url=gateway.url)
    answer = client.fim.complete(
        model="small", prompt="def add(a, b):\n    return", suffix="\n", max_tokens=8
    )
    assert answer.choices[0].message.content
    events = list(client.fim.stream(model="small", prompt="The capital of France is", max_tokens=5))
    assert events[-1].data.choices[0].finish_reason in ("stop", "length")


def test_empty_messages_are_refused_here_not_passed_on(gateway: Server) -> None:
    # llama.cpp's server accepts an empty list; Souverain refuses it before any byte leaves.
    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "small", "messages": []})
    assert response.status_code == 400
